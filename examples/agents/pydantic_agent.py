"""A pydantic-ai agent with two tools, against any OpenAI-compatible endpoint.

Run as ``python pydantic_agent.py BASE_URL [--stream]`` (the question in ``AGENT_PROMPT``
if set) (``BASE_URL`` such as
``http://127.0.0.1:8000/v1``). Nothing here knows about autodurable: run it
under ``autodurable run`` and a crash resumes it without asking the model, or
writing a note, twice.
"""

from __future__ import annotations

import asyncio
import os
import sys

from notes import add_note, count_notes
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider


async def main(base_url: str, stream: bool) -> str:
    model = OpenAIChatModel(
        "fake-model", provider=OpenAIProvider(base_url=base_url, api_key="sk-fake")
    )
    agent = Agent(model, tools=[add_note, count_notes], instructions="Keep notes.")
    if stream:
        async with agent.run_stream(
            os.environ.get("AGENT_PROMPT", "Note apples and pears, then count the notes.")
        ) as run:
            answer = await run.get_output()
    else:
        answer = (
            await agent.run(
                os.environ.get("AGENT_PROMPT", "Note apples and pears, then count the notes.")
            )
        ).output
    summary = (await agent.run(f"Summarise {answer}")).output
    return f"{answer} | {summary}"


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], "--stream" in sys.argv)), flush=True)
