"""Settings precedence and `config show`; tree scanning; the watch settle tracker."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest

from rvcloud.cli.client import UsageError
from rvcloud.cli.config import resolve
from rvcloud.cli.main import main
from rvcloud.cli.scan import Filters, ScanStats, parse_types, scan
from rvcloud.cli.state import StateStore
from rvcloud.cli.watch import SettleTracker


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**kw)


def test_precedence_flags_env_file_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'endpoint = "file.example:1"\nproject = "ris"\nworkers = 3\nsettle = 90\ntoken = "s3cr3t-token-xy"\n'
    )
    env = {"RVCLOUD_WORKERS": "7", "RVCLOUD_PROJECT": "routeviews"}
    s = resolve(_args(config=str(cfg), endpoint="flag.example:2", workers=None), env)
    assert s["endpoint"] == "flag.example:2" and s.sources["endpoint"] == "flag -d/--destination"
    assert s.workers == 7 and s.sources["workers"] == "env RVCLOUD_WORKERS"
    assert s.project == "routeviews"
    assert s["settle"] == 90.0 and s.sources["settle"] == f"file {cfg}"
    assert s.timeout == 3600.0 and s.sources["timeout"] == "default"
    assert s.token == "s3cr3t-token-xy"
    assert s.endpoint().target == "flag.example:2"


def test_default_config_file_locations(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "rvcloud").mkdir(parents=True)
    (xdg / "rvcloud" / "config.toml").write_text('endpoint = "https://gw.example"\n')
    s = resolve(_args(), {"XDG_CONFIG_HOME": str(xdg)})
    assert s.endpoint().tls and s.config_file == str(xdg / "rvcloud" / "config.toml")
    s = resolve(_args(), {"XDG_CONFIG_HOME": str(tmp_path / "none")})
    with pytest.raises(UsageError, match="RVCLOUD_ENDPOINT"):
        s.endpoint()


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("endpoint = 'x:1'\nwokers = 2\n", {}, "unknown keys"),
        ("workers = 0\n", {}, "workers from file"),
        ("", {"RVCLOUD_WORKERS": "many"}, "workers from env RVCLOUD_WORKERS"),
        ("", {"RVCLOUD_ENDPOINT": "ftp://x:1"}, "unsupported scheme"),
        ("endpoint = [\n", {}, "config file"),
    ],
)
def test_bad_settings_are_usage_errors(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError, match=message):
        resolve(_args(config=str(cfg)), env)


def test_config_show_masks_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('token = "abcdefghijklmnop"\nworkers = 2\n')
    monkeypatch.setenv("RVCLOUD_ENDPOINT", "gw.example:50051")
    assert main(["config", "show", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "abcdefghijklmnop" not in out and "op" in out
    assert "endpoint" in out and "env RVCLOUD_ENDPOINT" in out and f"file {cfg}" in out
    assert main(["config", "show", "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["token"]["value"].endswith("op") and "abc" not in doc["settings"]["token"]["value"]
    assert doc["settings"]["workers"] == {"value": 2, "source": f"file {cfg}"}
    assert doc["settings"]["project"] == {"value": "routeviews", "source": "default"}


def _touch(root: Path, rel: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def test_scan_layouts_and_filters(tmp_path: Path) -> None:
    root = tmp_path / "a"
    names = [
        "route-views.jinx/bgpdata/2024.01/RIBS/rib.20240101.0000.bz2",
        "route-views.jinx/bgpdata/2024.02/UPDATES/updates.20240201.0015.bz2",
        "bgpdata/2023.12/UPDATES/updates.20231231.2345.bz2",  # old route-views2 layout
        "rrc00/2024.01/bview.20240101.0000.gz",
        "rrc00/2024.01/updates.20240101.0005.gz",
    ]
    for n in names:
        _touch(root, n)
    for junk in [
        "route-views.jinx/bgpdata/2024.01/RIBS/.rib.20240101.0200.bz2.part",
        "route-views.jinx/bgpdata/2024.01/RIBS/rib.20240101.0200.bz2.md5",
        "README",
        ".snapshot/rrc00/2024.01/updates.20240101.0010.gz",
    ]:
        _touch(root, junk)
    stats = ScanStats()
    found = scan(str(root), "routeviews", Filters(), stats)
    assert sorted(f.filename for f in found) == sorted(names)
    assert found[0].filename == "bgpdata/2023.12/UPDATES/updates.20231231.2345.bz2"  # oldest first
    by = {f.filename: f for f in found}
    assert by[names[2]].collector == "route-views2" and by[names[3]].mrt_type == "RIB"
    assert stats.ignored == 4

    def pick(**kw: object) -> set[str]:
        return {f.filename for f in scan(str(root), "routeviews", Filters(**kw))}  # type: ignore[arg-type]

    assert pick(collectors={"rrc00"}) == set(names[3:])
    assert pick(types=parse_types("ribs")) == {names[0], names[3]}
    assert pick(since=1704067200, until=1704067200 + 600) == {names[0], names[3], names[4]}
    with pytest.raises(ValueError):
        parse_types("ribs,bviews")


def test_hash_cache_keys_on_size_and_mtime(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "state"))
    store.remember_sha256("/a", 10, 123, "ab" * 32)
    assert store.cached_sha256("/a", 10, 123) == "ab" * 32
    assert store.cached_sha256("/a", 11, 123) is None
    assert store.cached_sha256("/a", 10, 124) is None
    store.mark_done("gw", "routeviews", "f", "ab" * 32)
    assert store.is_done("gw", "routeviews", "f", "ab" * 32) and not store.is_done(
        "gw2", "routeviews", "f", "ab" * 32
    )
    store.journal_add("/a")
    store.journal_failed("/a", "UNAVAILABLE: down")
    [entry] = store.journal()
    assert (entry.path, entry.tries, entry.last_error) == ("/a", 1, "UNAVAILABLE: down")
    store.journal_remove("/a")
    assert store.journal() == []
    store.close()


def test_settle_tracker(tmp_path: Path) -> None:
    f = tmp_path / "updates.20240101.0000.bz2"
    f.write_bytes(b"a")
    tracker = SettleTracker(0.3)
    tracker.touch(str(f))
    assert tracker.ready() == []
    time.sleep(0.2)
    with f.open("ab") as out:
        out.write(b"b")  # still growing: the clock starts again
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 1))
    assert tracker.ready() == []
    time.sleep(0.2)
    assert tracker.ready() == []
    time.sleep(0.2)
    assert tracker.ready() == [str(f)]
    assert tracker.pending() == 0
    g = tmp_path / "rib.20240101.0000.bz2"
    g.write_bytes(b"c")
    tracker.touch(str(g), renamed=True)
    assert tracker.ready() == [str(g)]  # renamed into place: complete at once
    tracker.touch(str(tmp_path / "gone"))
    assert tracker.pending() == 0


def test_systemd_example_uses_known_settings() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
    env: dict[str, str] = {}
    for line in (deploy / "rvcloud-watch.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    root = env.pop("RVCLOUD_ARCHIVE_ROOT")  # used by the unit's ExecStart, not a setting
    assert root and "${RVCLOUD_ARCHIVE_ROOT}" in (deploy / "rvcloud-watch.service").read_text()
    s = resolve(_args(), env)  # every other variable is a setting that parses
    assert {name for name, src in s.sources.items() if src.startswith("env")} == {
        k.removeprefix("RVCLOUD_").lower() for k in env
    }
    assert s.endpoint().tls


def test_empty_file_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "route-views.x" / "bgpdata" / "2014.07" / "UPDATES" / "updates.20140701.0000.bz2"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"")
    # No gateway listens on port 9: the refusal must come before any connection.
    assert main(["upload", "-f", str(f), "-d", "127.0.0.1:9"]) == 2
    assert f"{f}: empty file" in capsys.readouterr().err


_MANY_ROWS = "SELECT * FROM range(200000)"  # more than a pipe's buffer


def test_a_closed_pipe_ends_the_cli_quietly(tmp_path: Path) -> None:
    """`rvcloud query ... | head -2`: exit 141 like cat, no traceback."""
    import subprocess
    import sys

    p = subprocess.Popen(
        [sys.executable, "-m", "rvcloud.cli", "query", "--data-dir", str(tmp_path), _MANY_ROWS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    assert p.stdout.readline() == b"0\n"
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
