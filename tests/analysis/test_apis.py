"""Which APIs a step calls (`autodurable._analysis._apis`): what limits on APIs
match, from the analyser's plan; and the warning for a limit key that matches
nothing."""

from __future__ import annotations

import textwrap

from autodurable._analysis import analyse_sources
from autodurable._analysis._apis import PlanApis, step_apis, unmatched_keys
from autodurable._core._limits import key_matches

CLIENTS = """
import openai
llm = openai.OpenAI()
"""

APP = """
import requests
import stripe
from clients import llm

def summarize(text):
    reply = llm.chat.completions.create(model="m", messages=[text])
    return reply.choices[0].message.content

def charge(amount):
    return stripe.Charge.create(amount=amount)

def enrich(text):
    page = requests.get(text).text
    return summarize(page)

def crawl(urls):
    out = []
    for url in urls:
        page = requests.get(url)
        out.append(llm.embeddings.create(input=page.text, model="e"))
    return out
"""


def plan():
    sources = {
        "clients": ("clients.py", textwrap.dedent(CLIENTS)),
        "app": ("app.py", textwrap.dedent(APP)),
    }
    return analyse_sources(sources)


def test_a_step_calls_its_own_apis_and_those_of_the_project_functions_it_calls():
    found = plan()
    assert step_apis(found, "app", "summarize", "app:summarize") == (
        "openai.OpenAI.chat.completions.create",
    )
    assert step_apis(found, "app", "charge", "app:charge") == ("stripe.Charge.create",)
    # `enrich` runs `summarize` inside itself: its calls are enrich's too, and so is
    # the project function by its dotted name (a limit may name it).
    enrich = step_apis(found, "app", "enrich", "app:enrich")
    assert enrich[0] == "requests.get"
    assert enrich[-2:] == ("app.summarize", "openai.OpenAI.chat.completions.create")


def test_a_site_of_inline_workflow_code_calls_only_its_own_apis():
    found = plan()
    crawl = found.function("app:crawl")
    assert crawl is not None and crawl.style == "inline"
    names = [site.name for site in crawl.sites]
    assert names == ["crawl:requests.get", "crawl:openai.OpenAI.embeddings.create"]
    # The thunk is a lambda of the module; an awaited site's is a helper's of
    # autodurable.inline, found by the site's name in any module.
    lambda_name = "crawl.<locals>.<lambda>"
    assert step_apis(found, "app", lambda_name, names[1]) == ("openai.OpenAI.embeddings.create",)
    assert step_apis(found, "autodurable.inline", "run_astep.<locals>.attempt", names[0]) == (
        "requests.get",
    )
    assert step_apis(found, "elsewhere", "f", "nothing:here") == ()


def test_the_resolver_makes_its_plan_once():
    made = []

    def make():
        made.append(1)
        return plan()

    resolver = PlanApis(make)
    assert resolver("app", "charge", "app:charge") == ("stripe.Charge.create",)
    assert resolver("app", "summarize", "s") == ("openai.OpenAI.chat.completions.create",)
    assert made == [1]


def test_keys_match_a_name_and_every_name_under_it():
    assert key_matches("openai.*", "openai.OpenAI.chat.completions.create")
    assert key_matches("openai", "openai.OpenAI")
    assert key_matches("stripe.Charge.create", "stripe.Charge.create")
    assert not key_matches("stripe.Charge.create", "stripe.Charge.retrieve")
    assert not key_matches("openai.*", "openaix.call")  # a prefix of names, not of letters
    assert key_matches("*", "requests.get")


def test_a_key_that_matches_no_api_is_named_with_the_closest_ones():
    found = plan()
    assert unmatched_keys(["openai.*", "stripe.Charge.create", "app.summarize"], (), found) == []
    (message,) = unmatched_keys(["opnai.*"], (), found)
    assert "'opnai.*'" in message and "openai" in message and "no step waits" in message
    (message,) = unmatched_keys(["acme.billing"], (), found)
    assert "closest" not in message
    # The project's own io entries count.
    assert unmatched_keys(["acme.billing.*"], ("acme",), found) == []
