"""A short coverage-guided fuzz run of every target (atheris, in a subprocess).

~20 s per target (RVCLOUD_FUZZ_SECONDS overrides); any crash, hang or OOM fails the
test. Findings are kept in a temporary directory and named in the failure message;
`python tests/fuzz/run.py --seconds N --save-regressions` turns them into regression
files. Long runs: see tests/fuzz/run.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("RVCLOUD_FUZZ_SECONDS", "20"))
TARGETS = ("framing", "rib", "update", "nlri", "rib_accel", "avro_columns")


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris not installed (pip install atheris)"
)
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_brief(target: str, tmp_path: Path, shared_mrt: Path) -> None:
    crashes = tmp_path / "crashes"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "run.py"),
            "--seconds",
            str(SECONDS),
            "--target",
            target,
            "--crashes",
            str(crashes),
            "--shared",
            str(shared_mrt),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS * 4 + 180,
    )
    found = sorted(p.name for p in crashes.iterdir()) if crashes.exists() else []
    assert proc.returncode == 0 and not found, (
        f"fuzz findings {found}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    assert "Done" in proc.stdout, proc.stdout[-2000:]
