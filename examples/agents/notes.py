"""The agents' tools: they keep notes in a file (``AGENT_NOTES``, default notes.txt).

Ordinary functions doing file I/O: under ``autodurable run`` the analyser makes
them steps, so a note written before a crash is not written again.
"""

from __future__ import annotations

import os


def notes_file() -> str:
    """Where the notes are kept."""
    return os.environ.get("AGENT_NOTES", "notes.txt")


def add_note(text: str) -> str:
    """Add a note to the list."""
    with open(notes_file(), "a", encoding="utf-8") as out:
        out.write(text + "\n")
    return f"noted {text}"


def count_notes() -> str:
    """How many notes there are, and what they say."""
    try:
        with open(notes_file(), encoding="utf-8") as found:
            lines = found.read().splitlines()
    except FileNotFoundError:
        lines = []
    return f"{len(lines)} notes: {', '.join(lines)}"
