"""`rvcloud backfill` against the real local service: uploads a tree, re-runs for free, reports.

One service serves the module; the tests run in order on the same tree and state
directory (the first uploads, the next ones rely on it being uploaded).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.uploader.service import Service, cli, new_service, uploader_env
from tests.uploader.tree import Tree, synthetic_path


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    s = new_service(tmp_path_factory.mktemp("data"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, archive_tree: Tree) -> dict[str, Any]:
    """A home and state dir shared by the module's tests, and first-run numbers."""
    home = tmp_path_factory.mktemp("home")
    return {"home": home, "state": home / "state", "tree": archive_tree}


def _backfill(
    svc: Service, work: dict[str, Any], *extra: str, root: Path | None = None
) -> tuple[int, dict[str, Any], float]:
    t0 = time.monotonic()
    r = cli(
        "backfill",
        str(root or work["tree"].root),
        "-d",
        svc.addr,
        "--state",
        str(work["state"]),
        "--workers",
        "8",
        "--json",
        *extra,
        home=work["home"],
    )
    wall = time.monotonic() - t0
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON report: {r.stdout!r} {r.stderr!r}") from None
    return r.returncode, report, wall


def test_backfill_uploads_every_file_then_rerun_uploads_nothing(svc: Service, work: dict[str, Any]) -> None:
    tree: Tree = work["tree"]
    code, report, first_wall = _backfill(svc, work)
    assert code == 0, report
    # The report lists every archive file with its outcome; the README and the hidden
    # partial file were ignored.
    outcomes = {f["filename"]: f["outcome"] for f in report["files"]}
    assert outcomes == dict.fromkeys(tree.names, "uploaded")
    assert report["counts"] == {"uploaded": len(tree.names), "present": 0, "failed": 0, "would_upload": 0}
    assert report["ignored"] == 2
    for f in report["files"]:
        assert len(f["sha256"]) == 64 and f["status"] == "DONE" and f["rows"] > 0, f
        assert f["path"] == str(tree.files[f["filename"]])
    # The service agrees: every file DONE, in both projects' layouts (all under routeviews here).
    records = svc.records(work["home"])
    assert set(records) == tree.names
    assert {r["status"] for r in records.values()} == {"DONE"}
    collectors = {r["collector"] for r in records.values()}
    assert {"route-views.jinx", "route-views.sydney", "route-views2", "rrc00", "rrc03", "rrc06"} <= collectors

    # An immediate re-run sends nothing, and costs a small fraction of the first run.
    code, again, rerun_wall = _backfill(svc, work)
    assert code == 0, again
    assert again["uploads_started"] == 0
    assert again["counts"] == {"uploaded": 0, "present": len(tree.names), "failed": 0, "would_upload": 0}
    assert {f["outcome"] for f in again["files"]} == {"present"}
    # Compared on the backfills' own clocks ("seconds": from the command's start to its
    # report): the interpreter's start and imports (~0.2 s) are the same for both runs
    # and say nothing about the tree.
    ratio = again["seconds"] / report["seconds"]
    print(
        f"first run {report['seconds']:.2f} s ({first_wall:.2f} s with interpreter start), "
        f"re-run {again['seconds']:.3f} s ({rerun_wall:.2f} s), ratio {ratio:.1%}"
    )
    assert ratio < 0.05, (report["seconds"], again["seconds"], first_wall, rerun_wall)


def test_dry_run_and_filters(svc: Service, work: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "extra"
    shutil.copytree(work["tree"].root, root, symlinks=True)
    new = [
        "route-views.jinx/bgpdata/2024.03/UPDATES/updates.20240301.0000.bz2",
        "rrc00/2024.03/updates.20240301.0000.gz",
    ]
    for i, name in enumerate(new):
        synthetic_path(root, name, "updates", seed=100 + i)
    code, report, _ = _backfill(svc, work, "--dry-run", root=root)
    assert code == 0
    by = {f["filename"]: f["outcome"] for f in report["files"]}
    assert {n for n, o in by.items() if o == "would_upload"} == set(new)
    assert svc.records(work["home"]).keys().isdisjoint(new)  # nothing was sent

    code, report, _ = _backfill(
        svc,
        work,
        "--dry-run",
        "--collector",
        "rrc00",
        "--since",
        "2024-02-01",
        "--types",
        "updates",
        root=root,
    )
    assert code == 0
    assert {f["filename"] for f in report["files"]} == {
        "rrc00/2024.02/updates.20240201.0000.gz",
        "rrc00/2024.02/updates.20240201.0200.gz",
        "rrc00/2024.03/updates.20240301.0000.gz",
    }


def _run_in_pty(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal; return (exit code, all output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    code = proc.wait(timeout=10)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_progress_under_a_terminal_shows_the_bar_and_summary(
    svc: Service, work: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "pty"
    shutil.copytree(work["tree"].root, root, symlinks=True)
    for i, name in enumerate(
        [
            "route-views.sydney/bgpdata/2024.04/UPDATES/updates.20240401.0000.bz2",
            "route-views.sydney/bgpdata/2024.04/RIBS/rib.20240401.0000.bz2",
        ]
    ):
        synthetic_path(root, name, "updates" if "UPDATES" in name else "rib", seed=200 + i)
    env = uploader_env(work["home"]) | {"COLUMNS": "120", "TERM": "xterm"}
    argv = [
        sys.executable,
        "-m",
        "rvcloud.cli",
        "backfill",
        str(root),
        "-d",
        svc.addr,
        "--state",
        str(work["state"]),
    ]
    code, out = _run_in_pty(argv, env, timeout=90)
    assert code == 0, out
    total = len(work["tree"].names) + 2
    assert "overall" in out and f"{total}/{total} files" in out, out  # the overall bar, at its end
    assert "\x1b[" in out  # drawn with terminal control sequences
    assert f"{total} files: 2 uploaded" in out and f"{total - 2} already present, 0 failed" in out, out


def test_not_a_terminal_is_quiet(svc: Service, work: dict[str, Any]) -> None:
    r = cli(
        "backfill", str(work["tree"].root), "-d", svc.addr, "--state", str(work["state"]), home=work["home"]
    )
    assert r.returncode == 0
    assert r.stderr == ""  # no bar, no per-file chatter in a log
    n = len(work["tree"].names)
    assert r.stdout.splitlines()[0].startswith(f"{n} files: 0 uploaded (0 B), {n} already present, 0 failed")
