"""benchmarks/field_table.py: a row whose evaluation failed the validity ladder gets a loud line, first among the
notes and on stderr; a passing one none."""

from __future__ import annotations

import json
from pathlib import Path

from script_module import load_script

from dtgan import keys

REPO = Path(__file__).resolve().parents[2]
field_table = load_script("benchmarks/field_table.py")


def _evaluation(tmp_path: Path, name: str, verdict: str) -> Path:
    report = {
        "checkpoint": str(tmp_path / name / "checkpoints" / "step_00000010.pt"),
        "step": 10,
        "metrics": {"eval/kid_mix_carpet": 0.05, "eval/is_mix_carpet": 1.5},
        "tags": {"fid_extractor": "dtgan-defect-cnn", keys.TAG_LADDER_VERDICT: verdict},
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(report))
    return path


def test_a_failed_ladder_is_a_loud_line_in_the_notes_and_on_stderr(tmp_path, capsys):
    failed = _evaluation(tmp_path, "bad", f"fail: dtgan-defect-cnn: {keys.LADDER_CANNOT_TELL} (carpet/crack)")
    passed = _evaluation(tmp_path, "good", "pass")
    code = field_table.main(
        ["--evaluation", str(failed), "--evaluation", str(passed), "--guidance", "mix", "--markdown"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    loud = [line for line in out.splitlines() if "VALIDITY LADDER FAILED" in line]
    assert len(loud) == 1 and "bad" in loud[0] and "carpet/crack" in loud[0]
    assert keys.LADDER_CANNOT_TELL in loud[0]
    assert "VALIDITY LADDER FAILED (this platform: bad" in err and "good" not in err


def test_a_passing_ladder_adds_no_line(tmp_path, capsys):
    code = field_table.main(["--evaluation", str(_evaluation(tmp_path, "good", "pass")), "--guidance", "mix"])
    out, err = capsys.readouterr()
    assert code == 0 and "VALIDITY LADDER" not in out + err
