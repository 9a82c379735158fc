"""HTTP clients: requests, httpx, aiohttp and urllib, however the client reaches the call.

Clients are created at module level, passed as parameters (annotated or not),
kept in attributes set from ``__init__`` parameters, returned by factories,
getters, ``functools.lru_cache`` builders and dict caches.
"""

# ruff: noqa: UP037, UP045

from __future__ import annotations

import functools
import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import aiohttp
import httpx
import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    from httpx import AsyncClient
    from requests import Session

API_ROOT = "https://api.example.com/v2"
session = requests.Session()
session.headers["User-Agent"] = "billing-sync/1.4"
http = httpx.Client(base_url=API_ROOT, timeout=10.0)
async_http = httpx.AsyncClient(base_url=API_ROOT, timeout=10.0)
_clients: dict[str, httpx.Client] = {}


# --- module-level clients and module functions -------------------------------


def fetch_invoice(invoice_id: str) -> dict[str, Any]:  # expect: step
    response = requests.get(f"{API_ROOT}/invoices/{invoice_id}", timeout=5)
    response.raise_for_status()
    return response.json()


def post_event(name: str, payload: dict[str, Any]) -> None:  # expect: step
    requests.post(f"{API_ROOT}/events", json={"name": name, **payload}, timeout=5)


def list_customers(page: int = 1) -> list[dict[str, Any]]:  # expect: step
    return session.get(f"{API_ROOT}/customers", params={"page": page}).json()["data"]


def get_account(account_id: str) -> dict[str, Any]:  # expect: step
    return http.get(f"/accounts/{account_id}").json()


def download_report(url: str) -> bytes:  # expect: step
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def send_form(url: str, fields: dict[str, str]) -> int:  # expect: step
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request) as response:
        return response.status


def get_json_urllib(url: str) -> Any:  # expect: step
    with urllib.request.urlopen(url) as resp:
        return json.load(resp)


def call(method: str, path: str, **kwargs: Any) -> requests.Response:  # expect: step
    return session.request(method, f"{API_ROOT}{path}", **kwargs)


def get_with_retry(url: str, attempts: int = 3) -> requests.Response:  # expect: step
    for attempt in range(attempts):
        try:
            return session.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(2**attempt)
    raise RuntimeError(f"giving up on {url}")


async def fetch_rates(currency: str) -> dict[str, float]:  # expect: step
    response = await async_http.get("/rates", params={"base": currency})
    return response.json()["rates"]


# --- clients as parameters ----------------------------------------------------


def get_json(client: httpx.Client, path: str) -> Any:  # expect: step
    return client.get(path).raise_for_status().json()


def put_json(session, url, body):  # expect: step
    response = session.put(url, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def fetch_profile(client: Optional[httpx.Client], user_id: str) -> dict[str, Any]:  # expect: step
    client = client or http
    return client.get(f"/users/{user_id}").json()


def fetch_settings(client: httpx.Client | None = None) -> dict[str, Any]:  # expect: step
    if client is None:
        client = httpx.Client(base_url=API_ROOT)
    return client.get("/settings").json()


def fetch_flags(session: Session) -> dict[str, bool]:  # expect: step
    return session.get(f"{API_ROOT}/flags").json()


def fetch_quota(session: "requests.Session", team: str) -> int:  # expect: step
    return int(session.get(f"{API_ROOT}/teams/{team}/quota").json()["remaining"])


async def fetch_async(client: AsyncClient, path: str) -> Any:  # expect: step
    response = await client.get(path)
    return response.json()


async def fetch_page(session: aiohttp.ClientSession, url: str) -> str:  # expect: step
    async with session.get(url) as response:
        return await response.text()


async def post_async(client, path, body):  # expect: step
    response = await client.post(path, json=body)
    response.raise_for_status()
    return response.json()


# --- factories, getters, caches ------------------------------------------------


def make_session(token: str) -> requests.Session:  # expect: plain
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    s.mount("https://", HTTPAdapter(max_retries=3))
    return s


@functools.lru_cache(maxsize=1)
def default_client() -> httpx.Client:  # expect: plain
    return httpx.Client(base_url=API_ROOT, headers={"Accept": "application/json"})


def client_for(tenant: str) -> httpx.Client:  # expect: plain
    if tenant not in _clients:
        _clients[tenant] = httpx.Client(base_url=f"https://{tenant}.example.com")
    return _clients[tenant]


def fetch_tenant_usage(tenant: str) -> dict[str, Any]:  # expect: step
    return client_for(tenant).get("/usage").json()


def fetch_plans() -> list[dict[str, Any]]:  # expect: step
    client = default_client()
    return client.get("/plans").json()


def fetch_me(token: str) -> dict[str, Any]:  # expect: step
    s = make_session(token)
    return s.get(f"{API_ROOT}/me").json()


# --- clients held in attributes ------------------------------------------------


class GitHubClient:
    def __init__(self, session: requests.Session, token: str) -> None:  # expect: plain
        self.session = session
        self.session.headers["Authorization"] = f"token {token}"

    def repo(self, name: str) -> dict[str, Any]:  # expect: step
        return self.session.get(f"https://api.github.com/repos/{name}").json()

    def open_issue(self, name: str, title: str, body: str = "") -> int:  # expect: step
        url = f"https://api.github.com/repos/{name}/issues"
        return self.session.post(url, json={"title": title, "body": body}).json()["number"]

    def stars(self, names: list[str]) -> dict[str, int]:  # expect: workflow
        return {name: self.repo(name)["stargazers_count"] for name in names}

    @staticmethod
    def issue_url(name: str, number: int) -> str:  # expect: plain
        return f"https://github.com/{name}/issues/{number}"


class WeatherService:
    def __init__(self, client=None):  # expect: plain
        self.client = client or httpx.Client(base_url="https://weather.example.com")

    def current(self, city):  # expect: step
        return self.client.get("/current", params={"q": city}).json()

    def forecast_summary(self, city):  # expect: workflow
        data = self.current(city)
        return f"{city}: {data['temp_c']} C, {data['sky']}"


class Integrations:
    def __init__(self, token: str) -> None:  # expect: plain
        self._token = token
        self._http: httpx.Client | None = None

    def http(self) -> httpx.Client:  # expect: plain
        if self._http is None:
            self._http = httpx.Client(headers=auth_headers(self._token), timeout=5)
        return self._http

    def webhook(self, url: str, event: dict[str, Any]) -> int:  # expect: step
        return self.http().post(url, json=event).status_code

    def broadcast(self, urls: list[str], event: dict[str, Any]) -> list[int]:  # expect: workflow
        return [self.webhook(url, event) for url in urls]


@dataclass
class ApiDeps:
    http: httpx.Client
    base: str = API_ROOT


def ping(deps: ApiDeps) -> bool:  # expect: step
    return deps.http.get(f"{deps.base}/health").status_code == 200


# --- plain helpers -------------------------------------------------------------


def build_query(filters: dict[str, str]) -> str:  # expect: plain
    return urllib.parse.urlencode(sorted(filters.items()))


def auth_headers(token: str) -> dict[str, str]:  # expect: plain
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def parse_invoice(payload: dict[str, Any]) -> tuple[str, int]:  # expect: plain
    return payload["id"], int(payload["amount_cents"])


def next_link(response: requests.Response) -> str | None:  # expect: plain
    return response.links.get("next", {}).get("url")


def raise_for_problem(response: httpx.Response) -> None:  # expect: plain
    if response.is_error:
        problem = response.json() if "json" in response.headers.get("content-type", "") else {}
        raise httpx.HTTPStatusError(
            problem.get("title", "error"), request=response.request, response=response
        )


# --- workflows -----------------------------------------------------------------


def sync_invoices(ids: list[str]) -> int:  # expect: workflow
    total = 0
    for invoice_id in ids:
        _, amount = parse_invoice(fetch_invoice(invoice_id))
        total += amount
    post_event("invoices.synced", {"count": len(ids), "total": total})
    return total


def all_customers() -> list[dict[str, Any]]:  # expect: workflow
    customers, page = [], 1
    while batch := list_customers(page):
        customers.extend(batch)
        page += 1
    return customers


def refresh_flags(token: str) -> dict[str, bool]:  # expect: workflow
    return fetch_flags(make_session(token))


def update_profile(user_id: str, changes: dict[str, Any]) -> dict[str, Any]:  # expect: workflow
    return put_json(session, f"{API_ROOT}/users/{user_id}", changes)


def tenant_report(tenants: list[str]) -> dict[str, Any]:  # expect: workflow
    return {tenant: fetch_tenant_usage(tenant)["requests"] for tenant in tenants}


def delete_webhook(hook_id: str) -> bool:  # expect: workflow
    return call("DELETE", f"/webhooks/{hook_id}").ok


def team_dashboard(token: str, team: str) -> dict[str, Any]:  # expect: workflow
    s = make_session(token)
    return {"quota": fetch_quota(s, team), "flags": fetch_flags(s), "me": fetch_me(token)}


async def convert(amount: float, src: str, dst: str) -> float:  # expect: workflow
    rates = await fetch_rates(src)
    return round(amount * rates[dst], 2)


async def crawl(urls: list[str]) -> list[str]:  # expect: workflow
    async with aiohttp.ClientSession() as s:
        return [await fetch_page(s, url) for url in urls]


async def create_then_read(body: dict[str, Any]) -> Any:  # expect: workflow
    created = await post_async(async_http, "/items", body)
    return await fetch_async(async_http, f"/items/{created['id']}")


def archive_report(url: str, dest: str) -> None:  # expect: step
    body = download_report(url)
    with open(dest, "wb") as fh:
        fh.write(body)
