"""The uploader runs without the server packages; console scripts, py.typed and `python -m`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from tests.cli.fake_gateway import Gateway
from tests.uploader.service import uploader_env

# Make the server-only packages impossible to import, as on an archive host without the
# [server] extra: any import of them fails loudly.
BLOCKER = """
import sys
BLOCKED = ("fastavro", "duckdb", "pyarrow", "google.cloud", "grpc_health")
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            raise ImportError(f"blocked server package imported: {name}")
        return None
sys.meta_path.insert(0, Blocker())
from rvcloud.cli.main import main
sys.argv[0] = "rvcloud"
code = main(sys.argv[1:])
bad = [m for m in sys.modules if m.startswith(BLOCKED)]
assert not bad, bad
sys.exit(code)
"""


def _run_blocked(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=uploader_env(home),
    )


@pytest.mark.parametrize(
    "command", [[], ["backfill"], ["watch"], ["upload"], ["config"], ["status"], ["list"]]
)
def test_help_without_server_packages(command: list[str], tmp_path: Path) -> None:
    r = _run_blocked(*command, "--help", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


def test_backfill_dry_run_without_server_packages(gateway: Gateway, tmp_path: Path) -> None:
    name = "route-views.jinx/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2"
    (tmp_path / "a" / name).parent.mkdir(parents=True)
    (tmp_path / "a" / name).write_bytes(b"x")
    argv = ["backfill", str(tmp_path / "a"), "-d", gateway.address, "--dry-run", "--json"]
    r = _run_blocked(*argv, "--state", str(tmp_path / "s"), home=tmp_path)
    assert r.returncode == 0, r.stderr
    [f] = json.loads(r.stdout)["files"]
    assert (f["filename"], f["outcome"]) == (name, "would_upload")
    assert gateway.fake.uploads == [] and len(gateway.fake.check_requests) == 1
    r = _run_blocked("config", "show", home=tmp_path)
    assert r.returncode == 0, r.stderr


def test_console_scripts_py_typed_and_python_m(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    for script in ("rvcloud", "upload-to-cloudz"):
        r = subprocess.run([str(bindir / script), "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "usage:" in r.stdout, (script, r.stderr)
    assert resources.files("rvcloud").joinpath("py.typed").is_file()
    r = subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", "backfill", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "--dry-run" in r.stdout


def test_gateway_without_server_packages_says_what_is_missing(tmp_path: Path) -> None:
    """`python -m rvcloud.ingest_gateway` on an archive host: one line naming the extra, no traceback."""
    run = "import runpy\nrunpy.run_module('rvcloud.ingest_gateway', run_name='__main__')\n"
    script = BLOCKER.split("from rvcloud.cli.main", 1)[0] + run
    r = subprocess.run(
        [sys.executable, "-c", script, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=uploader_env(tmp_path),
    )
    assert r.returncode == 1, r.stderr
    assert "error: the gateway needs the server packages" in r.stderr
    assert "pip install 'rvcloud[server]'" in r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_backfill_dry_run_text_lists_files_and_an_empty_tree_warns(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rvcloud.cli.main import main

    name = "route-views.jinx/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2"
    (tmp_path / "a" / name).parent.mkdir(parents=True)
    (tmp_path / "a" / name).write_bytes(b"x")
    state = ["--state", str(tmp_path / "s")]
    assert main(["backfill", str(tmp_path / "a"), "-d", gateway.address, "--dry-run", *state]) == 0
    assert f"  would upload {name}" in capsys.readouterr().out
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "updates.20240101.0000.bz2").write_bytes(b"x")
    assert main(["backfill", str(tmp_path / "flat"), "-d", gateway.address, "--dry-run", *state]) == 0
    assert "warning: no archive files under" in capsys.readouterr().err
    assert gateway.fake.uploads == []
