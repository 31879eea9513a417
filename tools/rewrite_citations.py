"""Point every citation in the code at the repository: ``spec §x.y`` and the ambiguity numbers ``A1``..``A22``
become ``docs/model.md#<anchor>``, ``DESIGN.md`` becomes the docs/ page that holds what was cited, and
mentions of issue numbers leave comments, docstrings and messages.

Run from the repository root (standard library only):

    python tools/rewrite_citations.py            # rewrite in place, print every change
    python tools/rewrite_citations.py --check    # print what would change, rewrite nothing
    python tools/rewrite_citations.py --root DIR # work on another checkout (e.g. a copy)

Only comments and string literals of Python files (found with ``tokenize``) and the comment part of YAML,
TOML, INI and shell lines are touched, so identifiers that look like citations are never changed. The
rewrite is idempotent: a second run changes nothing. Lines that still hold a citation the script cannot
resolve safely are printed at the end for a human; the exit status is 1 when there are any.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import sys
import tokenize
from pathlib import Path

SCANNED_DIRS = ("platform", "experiments", "benchmarks", "tests")
COMMENT_SUFFIXES = (".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh")
SKIPPED = (
    "tools/rewrite_citations.py",
    "tests/unit/test_citations.py",
    "tests/unit/test_rewrite_citations.py",
)
MODEL = "docs/model.md"
TAGS = "docs/interfaces.md#metric-keys-dtgankeys"

# Sections of the former model spec -> anchors of docs/model.md.
SECTION_ANCHORS = {
    "1": "networks",
    "1.1": "building-blocks",
    "1.2": "networks",
    "1.3": "initialisation",
    "1.3-1.4": "ema",
    "1.4": "optimisation",
    "1.5": "training-step",
    "1.6": "data-pipeline",
    "1.7": "evaluation-protocol",
    "3": "networks",
    "3.1": "generator",
    "3.2": "mapping-network",
    "3.3": "style-content-encoder",
    "3.4": "discriminator",
    "3.5": "losses",
    "3.6": "training-procedure",
    "3.7": "tensor-shapes",
    "3.8": "ablation-ladder",
    "4": "evaluation-protocol",
    "5": "ambiguities",
}
NUM_READINGS = 22  # docs/model.md#a1 .. #a22
LINE_LENGTH = 110  # pyproject.toml [tool.ruff] line-length

SECTION = re.compile(r"(?P<spec>\bspec\s+)?§\s?(?P<num>\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?)(?P<step>\s+step\b)?")
READING = re.compile(r"(?<![\w#.-])A(?P<a>\d{1,2})(?:[ \t]?[-–][ \t]?A(?P<b>\d{1,2}))?(?!\w)")

# (pattern, replacement) applied in order; each removes an issue number or a pointer outside the repository
# and keeps the sentence readable.
PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\(issue \d+'s target is", "(the target is"),
        (r"\(issue \d+'s ([^)]*)\)", r"(\1)"),
        (r"\(before issue \d+; ", "(older versions; "),
        (r"\bsaved before issue \d+", "saved by older versions"),
        (r"\bfrom before issue \d+", "from an older version"),
        (r" before issue \d+\)", " in older versions)"),
        (r"\bthe targets of issue \d+", "the reproduction targets"),
        (r"\bthat issue \d+ is about\b", "about the study's runs"),
        (r"\bas quoted in issue \d+ from\b", "as quoted from"),
        (r", quoted in issue \d+, not re-measured", ", not re-measured"),
        (r"[ \t]*\(issue #?\d+\)", ""),
        (r"\bDESIGN\.md's descriptive tags", f"The descriptive tags of {TAGS}"),
        (r"\bthe spec's ambiguity switches", f"the ambiguity switches of {MODEL}#ambiguities"),
        (r"\bthe spec's reading\b", "the default reading"),
        (r"\(the spec says no\)", "(off by default)"),
        (r"\(spec: every\b", "(the paper's protocol: every"),
        (r'\(spec: "about 11\.8 M, 35 M for K = 3"\)', f"({MODEL}#a6: about 11.8 M, 35 M for K = 3)"),
    )
)

# What must not be left in comments and strings; a hit after the rewrite is printed for a human.
LEFTOVERS = re.compile(
    r"\bspec\s*§|§\s?\d|\bthe spec\b|\bspec:|DESIGN\.md|STYLE\.md|\.\./shared|\bissues? #?\d+"
    r"|(?<![\w#.-])A\d{1,2}(?!\w)"
)
PAPER_CONTEXT = re.compile(r"\bpaper\b[^§]{0,12}$")


def _section(match: re.Match[str], text: str) -> str:
    num = match.group("num")
    if match.group("step") and num == "3.6":
        return f"{MODEL}#training-step, step"
    anchor = SECTION_ANCHORS.get(num)
    if anchor is None:
        return match.group(0)  # unknown (a paper section such as §4.2): left, reported if not the paper's
    if not match.group("spec") and PAPER_CONTEXT.search(text[: match.start()]):
        return match.group(0)  # "paper §x": the paper's own numbering
    return f"{MODEL}#{anchor}" + (match.group("step") or "")


def _reading(match: re.Match[str]) -> str:
    a = int(match.group("a"))
    b = int(match.group("b")) if match.group("b") else a
    if not 1 <= a <= b <= NUM_READINGS:
        return match.group(0)
    if b - a > 3:
        return f"{MODEL}#ambiguities"
    return ", ".join(f"{MODEL}#a{n}" for n in range(a, b + 1))


def rewrite_text(text: str) -> str:
    """Rewrite the citations in one comment or string literal."""
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    text = SECTION.sub(lambda m: _section(m, m.string), text)
    return READING.sub(_reading, text)


def _python_spans(source: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every comment and string literal of ``source``."""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    kinds = {tokenize.COMMENT, tokenize.STRING}
    if hasattr(tokenize, "FSTRING_MIDDLE"):
        kinds.add(tokenize.FSTRING_MIDDLE)
    spans = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in kinds:
            spans.append((starts[tok.start[0] - 1] + tok.start[1], starts[tok.end[0] - 1] + tok.end[1]))
    return spans


def _comment_spans(source: str) -> list[tuple[int, int]]:
    """(start, end) of the comment part (from a '#' at the start or after a blank) of every line."""
    spans, offset = [], 0
    for line in source.splitlines(keepends=True):
        match = re.search(r"(?:^|\s)#", line)
        if match:
            spans.append((offset + match.end() - 1, offset + len(line.rstrip("\r\n"))))
        offset += len(line)
    return spans


def spans_of(path: Path, source: str) -> list[tuple[int, int]]:
    if path.suffix == ".py":
        return _python_spans(source)
    return _comment_spans(source)


def _lift_long_comments(source: str) -> str:
    """Move a trailing comment that now makes its line longer than LINE_LENGTH onto its own line above the
    code, so that the formatter does not split the code to make room for it."""
    lines = source.splitlines(keepends=True)
    for tok in reversed(list(tokenize.generate_tokens(io.StringIO(source).readline))):
        if tok.type != tokenize.COMMENT:
            continue
        row, col = tok.start
        line = lines[row - 1]
        code = line[:col].rstrip()
        if not code.strip() or len(line.rstrip("\r\n")) <= LINE_LENGTH:
            continue
        indent = line[: len(line) - len(line.lstrip())]
        ending = line[len(line.rstrip("\r\n")) :] or "\n"
        lines[row - 1] = f"{indent}{tok.string}{ending}{code}{ending}"
    return "".join(lines)


def rewrite_source(path: Path, source: str) -> str:
    out = source
    for start, end in sorted(spans_of(path, source), reverse=True):
        out = out[:start] + rewrite_text(out[start:end]) + out[end:]
    if path.suffix == ".py" and out != source:
        out = _lift_long_comments(out)
    return out


def leftovers(path: Path, source: str) -> list[int]:
    """Line numbers (1-based) whose comments or strings still hold something LEFTOVERS matches."""
    lines = set()
    for start, end in spans_of(path, source):
        for match in LEFTOVERS.finditer(source, start, end):
            if match.group(0).startswith("§") and PAPER_CONTEXT.search(
                source[max(start, match.start() - 20) : match.start()]
            ):
                continue
            lines.add(source.count("\n", 0, match.start()) + 1)
    return sorted(lines)


def files(root: Path):
    for name in SCANNED_DIRS:
        for path in sorted((root / name).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or rel in SKIPPED or "__pycache__" in path.parts:
                continue
            if path.suffix == ".py" or path.suffix in COMMENT_SUFFIXES:
                yield path, rel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: here)")
    parser.add_argument("--check", action="store_true", help="print what would change, write nothing")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "platform").is_dir():
        print(
            f"{root}: no platform/ folder here; run from the repository root or pass --root", file=sys.stderr
        )
        return 2
    changed_files = changed_lines = 0
    unresolved: list[str] = []
    for path, rel in files(root):
        source = path.read_text(encoding="utf-8")
        new = rewrite_source(path, source)
        if new != source:
            changed_files += 1
            matcher = difflib.SequenceMatcher(None, source.splitlines(), new.splitlines(), autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag == "equal":
                    continue
                changed_lines += i2 - i1
                print(f"{rel}:{i1 + 1}:")
                print("\n".join(f"  - {line.strip()}" for line in source.splitlines()[i1:i2]))
                print("\n".join(f"  + {line.strip()}" for line in new.splitlines()[j1:j2]))
            if not args.check:
                tmp = path.with_name(path.name + ".rewrite-tmp")
                tmp.write_text(new, encoding="utf-8")
                tmp.replace(path)
        new_lines = new.splitlines()
        unresolved += [f"{rel}:{n}: {new_lines[n - 1].strip()}" for n in leftovers(path, new)]
    verb = "would change" if args.check else "changed"
    print(f"{verb} {changed_lines} line(s) in {changed_files} file(s)")
    if changed_files and not args.check:
        print("some lines grew: run `ruff format platform tests experiments benchmarks` next")
    if unresolved:
        print(f"{len(unresolved)} line(s) still cite something outside the repository; rewrite them by hand:")
        print("\n".join(f"  {line}" for line in unresolved))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
