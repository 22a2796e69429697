"""A backfill whose service is SIGKILLed half way: the re-run completes, no row is duplicated."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.uploader.service import cli, new_service, uploader_env
from tests.uploader.tree import make_tree


def test_service_killed_half_way_then_rerun_completes_without_duplicates(tmp_path: Path, home: Path) -> None:
    # A tree of its own, smaller: the re-run's time is mostly the service recovering
    # the files it was working on (its bus lease), not uploads.
    archive_tree = make_tree(tmp_path / "archive", months=1, per_month=2)
    svc = new_service(tmp_path / "data")
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "rvcloud.cli", "backfill", str(archive_tree.root), "-d", svc.addr]
    # A short retry budget: once the service is gone the run ends instead of waiting for it.
    argv += [
        "--state",
        str(state),
        "--workers",
        "2",
        "--json",
        "--retry-max-time",
        "2",
        "--retry-initial",
        "0.2",
    ]
    try:
        run = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=uploader_env(home)
        )
        # Kill once a few files are DONE, i.e. half way through the tree.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = [r for r in svc.records(home).values() if r["status"] == "DONE"]
            if len(done) >= 4:
                break
            time.sleep(0.3)
        svc.kill()
        out, err = run.communicate(timeout=60)
        first = json.loads(out)
        # The run reports what it could not do, and exits non-zero.
        assert run.returncode != 0, err
        assert first["counts"]["failed"] > 0 and first["counts"]["uploaded"] >= 1, first["counts"]
        failed = [f for f in first["files"] if f["outcome"] == "failed"]
        assert all(f["error"] for f in failed)
        assert "FAILED" in err or "failed" in err  # the summary names failures with their reasons

        svc.start()  # same data directory
        t0 = time.monotonic()
        r = cli(*argv[3:], "--workers", "8", home=home, timeout=240)
        report = json.loads(r.stdout)
        assert r.returncode == 0, (report["counts"], r.stderr)
        assert report["counts"]["failed"] == 0
        assert report["counts"]["uploaded"] + report["counts"]["present"] == len(archive_tree.names)
        print(f"re-run after the restart: {time.monotonic() - t0:.1f} s, {report['counts']}")

        records = svc.records(home)
        assert set(records) == archive_tree.names
        assert {r["status"] for r in records.values()} == {"DONE"}
        # No duplicates: every file has exactly the rows its conversion produced, once.
        expected = {
            name: sum(int(v) for v in rec.get("rows_by_type", {}).values()) for name, rec in records.items()
        }
        got: dict[str, int] = dict.fromkeys(expected, 0)
        for table in ("ribs", "updates"):
            for name, n in svc.query(f"SELECT source_file, count(*) FROM {table} GROUP BY 1", home):
                got[name] += int(n)
        assert got == expected
        assert all(n > 0 for n in got.values())
    finally:
        svc.stop()
