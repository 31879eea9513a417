"""Every citation in the code resolves inside the repository: ``docs/<page>.md#<anchor>`` names a page of docs/
and an explicit ``<a id=...>`` or a heading of it, and nothing cites a document the repository does not ship
(the former model spec, DESIGN.md, STYLE.md, ../shared) or an issue number.

``DTGAN_CITATIONS_ROOT`` points the test at another checkout (e.g. a copy rewritten by
``tools/rewrite_citations.py``); by default it reads this repository.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("DTGAN_CITATIONS_ROOT", Path(__file__).resolve().parents[2]))
SCANNED_DIRS = ("platform", "experiments", "benchmarks", "tests")
CODE_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh")
# These two hold the forbidden patterns as data.
EXEMPT = ("tests/unit/test_citations.py", "tests/unit/test_rewrite_citations.py")

CITATION = re.compile(r"docs/([\w.-]+\.md)#([\w-]+)")
FORBIDDEN = {
    "the former model spec (cite docs/model.md#<anchor>)": re.compile(r"\bspec\s*§"),
    "DESIGN.md (cite docs/)": re.compile(r"DESIGN\.md"),
    "STYLE.md (cite docs/)": re.compile(r"STYLE\.md"),
    "../shared (cite docs/)": re.compile(r"\.\./shared"),
    "an issue number": re.compile(r"\bissues? #?\d+\b", re.IGNORECASE),
}
# A bare ambiguity number (A1..A22) in a comment or string: cite docs/model.md#aN instead.
BARE_READING = re.compile(r"(?<![\w#.-])A(?:[1-9]|1\d|2[0-2])(?!\w)")


def _files(suffixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    out = []
    for name in SCANNED_DIRS:
        for path in sorted((ROOT / name).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if (
                path.is_file()
                and path.suffix in suffixes
                and rel not in EXEMPT
                and "__pycache__" not in path.parts
            ):
                out.append((rel, path))
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(page: str) -> frozenset[str]:
    """Explicit ``<a id="...">`` anchors and heading slugs (with GitHub's -1, -2 for repeats) of docs/<page>."""
    path = ROOT / "docs" / page
    if not path.is_file():
        return frozenset()
    text = path.read_text(encoding="utf-8")
    found = set(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", text))
    seen: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def _comments_and_strings(path: Path, text: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and string literal of a Python file, or of every comment of another."""
    if path.suffix != ".py":
        return [
            (n, line[m.end() - 1 :])
            for n, line in enumerate(text.splitlines(), 1)
            if (m := re.search(r"(?:^|\s)#", line))
        ]
    kinds = {tokenize.COMMENT, tokenize.STRING} | (
        {tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set()
    )
    return [
        (t.start[0], t.string)
        for t in tokenize.generate_tokens(io.StringIO(text).readline)
        if t.type in kinds
    ]


def test_the_scanned_tree_is_a_checkout():
    assert (ROOT / "platform" / "dtgan").is_dir(), f"{ROOT} has no platform/dtgan; check DTGAN_CITATIONS_ROOT"
    assert anchors("model.md"), f"{ROOT}/docs/model.md is missing or has no anchors"


def test_every_docs_citation_resolves():
    unresolved = []
    for rel, path in _files((*CODE_SUFFIXES, ".md")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for page, anchor in CITATION.findall(line):
                if anchor not in anchors(page):
                    unresolved.append(f"{rel}:{number}: docs/{page}#{anchor}")
    assert not unresolved, "citations that do not resolve:\n" + "\n".join(unresolved)


def test_no_citation_points_outside_the_repository():
    found = []
    for rel, path in _files(CODE_SUFFIXES):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            found += [
                f"{rel}:{number}: {what}: {line.strip()}"
                for what, pattern in FORBIDDEN.items()
                if pattern.search(line)
            ]
        for number, segment in _comments_and_strings(path, text):
            if BARE_READING.search(segment):
                found.append(
                    f"{rel}:{number}: a bare ambiguity number (cite docs/model.md#aN): {segment.strip()[:100]}"
                )
    assert not found, "run `python tools/rewrite_citations.py` or fix by hand:\n" + "\n".join(found)


@pytest.mark.parametrize("anchor", [f"a{n}" for n in range(1, 23)])
def test_model_doc_has_every_ambiguity_reading(anchor: str):
    assert anchor in anchors("model.md")
