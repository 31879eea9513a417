"""The package lives under the platform/ source root without shadowing the stdlib 'platform'."""

import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_platform_source_root_has_no_init():
    assert not (REPO / "platform" / "__init__.py").exists()


def test_import_platform_is_the_standard_library():
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.system)


def test_dtgan_imports_from_the_source_root():
    import dtgan

    assert Path(dtgan.__file__).resolve().parent == REPO / "platform" / "dtgan"


def test_python_m_dtgan_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "dtgan", "--help"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert "config" in out
