"""Building without a C compiler stops with one sentence, not a compiler log."""

import os
import shutil
import subprocess
import sys

from ..conftest import ROOT


def test_missing_compiler_is_one_clear_sentence(tmp_path):
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "fastsync").mkdir()
    for name in ("__init__.py", "_core.pyx"):
        shutil.copy(ROOT / "fastsync" / name, tmp_path / "fastsync" / name)
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "CC": "/nonexistent/cc"})
    assert proc.returncode != 0
    assert "fastsync: no C compiler ('/nonexistent/cc' not found)" in proc.stderr
    assert "Traceback" not in proc.stderr and "error:" not in proc.stderr.lower()
    assert not list((tmp_path / "fastsync").glob("*.so"))
