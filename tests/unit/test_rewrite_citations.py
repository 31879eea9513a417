"""tools/rewrite_citations.py on a small tree: citations in comments and strings are rewritten, code is not,
a second run changes nothing, and what it cannot rewrite is reported."""

from __future__ import annotations

from pathlib import Path

from script_module import load_script

REPO = Path(__file__).resolve().parents[2]


def _tool():
    return load_script("tools/rewrite_citations.py")


SOURCE = '''"""Losses (spec §1.5, §3.6) with the switches A1-A3, A8 (paper §4.2); see issue 17 (issue 13)."""

A6 = 1  # A6: a full copy per domain (spec §3.6 step 1)
x = {"d": "A14/A15: KID"}
'''
EXPECTED = '''"""Losses (docs/model.md#training-step, docs/model.md#training-procedure) with the switches docs/model.md#a1, docs/model.md#a2, docs/model.md#a3, docs/model.md#a8 (paper §4.2); see issue 17."""

A6 = 1  # docs/model.md#a6: a full copy per domain (docs/model.md#training-step, step 1)
x = {"d": "docs/model.md#a14/docs/model.md#a15: KID"}
'''


def test_rewrite_is_exact_idempotent_and_reports_what_is_left(tmp_path: Path, capsys) -> None:
    tool = _tool()
    (tmp_path / "platform").mkdir()
    module = tmp_path / "platform" / "m.py"
    module.write_text(SOURCE)
    preset = tmp_path / "platform" / "p.yaml"
    preset.write_text("# The CPU configuration (issue 13): tiny (A20)\nkey: A20\n")

    assert tool.main(["--root", str(tmp_path)]) == 1  # "see issue 17" has no safe rewrite
    out = capsys.readouterr().out
    assert module.read_text() == EXPECTED
    assert preset.read_text() == "# The CPU configuration: tiny (docs/model.md#a20)\nkey: A20\n"
    assert "changed 4 line(s) in 2 file(s)" in out
    assert "platform/m.py:1:" in out.split("rewrite them by hand:")[1]

    assert tool.main(["--root", str(tmp_path), "--check"]) == 1
    assert "would change 0 line(s) in 0 file(s)" in capsys.readouterr().out
    assert module.read_text() == EXPECTED


def test_a_comment_that_grows_past_the_line_length_moves_above_its_code(tmp_path: Path) -> None:
    tool = _tool()
    code = "value = compute_something_rather_long(argument_one, argument_two, argument_three)"
    source = f"def f():\n    {code}  # gray replicated (A20), kept\n"
    out = tool.rewrite_source(Path("m.py"), source)
    assert out == f"def f():\n    # gray replicated (docs/model.md#a20), kept\n    {code}\n"
