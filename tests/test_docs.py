"""The README and the documentation pages: their links lead somewhere, and they stay complete.

`mkdocs build --strict` (run by scripts/test) checks the links between the
pages of docs/; these tests also cover README.md, which the site does not
build, and links from either into the rest of the repository (examples,
their READMEs). A link to a Markdown file with a ``#fragment`` must name a
heading of that file (or, on the API reference page, a documented object).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

import autodurable

from .helpers import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
OBJECT = re.compile(r"^:::\s+(\S+)")


def prose(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks, inline code blanked out."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file: its headings and the objects it documents."""
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.add(slug(match.group(1)))
        elif not fenced and (match := OBJECT.match(line)):
            found.add(match.group(1))
    return found


def links(path: Path) -> list[str]:
    return [target for line in prose(path) for target in LINK.findall(line)]


def test_the_pages_have_links_to_check() -> None:
    assert len(PAGES) > 10
    assert len(links(ROOT / "README.md")) > 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, fragment = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {destination.name}")
    assert not broken, broken


def test_the_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "pip install -e . && python examples/unmodified/demo.py",
        "bash scripts/test",
    ]


def test_the_api_reference_documents_every_public_name() -> None:
    documented = {
        match.group(1)
        for line in (DOCS / "reference.md").read_text(encoding="utf-8").splitlines()
        if (match := OBJECT.match(line))
    }
    missing = {f"autodurable.{name}" for name in autodurable.__all__} - documented
    assert not missing
    assert {"autodurable.inline", "autodurable.codemods"} <= documented


def test_every_page_is_in_the_site_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r"^\s*-\s[^:\n]+:\s+(\S+\.md)\s*$", config, re.MULTILINE))
    assert nav == {page.name for page in DOCS.glob("*.md")}
