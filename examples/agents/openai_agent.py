"""An OpenAI Agents SDK agent with two tools, against any OpenAI-compatible endpoint.

Run as ``python openai_agent.py BASE_URL [--stream]`` (the question in ``AGENT_PROMPT``
if set) (``BASE_URL`` such as
``http://127.0.0.1:8000/v1``). Nothing here knows about autodurable: run it
under ``autodurable run`` and a crash resumes it without asking the model, or
writing a note, twice.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from notes import add_note, count_notes
from openai import AsyncOpenAI


async def main(base_url: str, stream: bool) -> str:
    set_tracing_disabled(True)  # traces would go to the hosted service
    client = AsyncOpenAI(base_url=base_url, api_key="sk-fake")
    model = OpenAIChatCompletionsModel(model="fake-model", openai_client=client)
    tools = [function_tool(add_note), function_tool(count_notes)]
    agent = Agent(name="notes", instructions="Keep notes.", model=model, tools=tools)
    prompt = os.environ.get("AGENT_PROMPT", "Note apples and pears, then count the notes.")
    if stream:
        streamed = Runner.run_streamed(agent, prompt)
        async for _event in streamed.stream_events():
            pass
        answer = str(streamed.final_output)
    else:
        answer = str((await Runner.run(agent, prompt)).final_output)
    summary = (await Runner.run(agent, f"Summarise {answer}")).final_output
    return f"{answer} | {summary}"


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], "--stream" in sys.argv)), flush=True)
