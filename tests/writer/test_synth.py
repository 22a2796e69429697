"""Synthetic RIB / updates files pass through bgpdump with the expected line counts."""

from __future__ import annotations

import collections
import hashlib
import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from rvcloud.mrt import synth


def bgpdump(path: Path) -> list[list[str]]:
    exe = shutil.which("bgpdump")
    if exe is None:
        pytest.fail("bgpdump not installed (make tools)")
    proc = subprocess.run([exe, "-m", "-v", str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert proc.stderr.count("\n") <= 1, proc.stderr  # only the "logging to syslog" line, no warnings
    return [line.split("|") for line in proc.stdout.splitlines()]


def test_small_rib(tmp_path: Path) -> None:
    stats = synth.write_synthetic_rib(tmp_path / "rib.bz2", n_v4=5000, n_v6=1000, peers=8, seed=7)
    lines = bgpdump(stats.path)
    assert stats.records == 1 + 5000 + 1000
    assert len(lines) == stats.routes
    assert {line[2] for line in lines} == {"B"}
    prefixes = [line[5] for line in lines]
    v6 = {p for p in prefixes if ":" in p}
    assert len(set(prefixes)) - len(v6) == 5000
    assert len(v6) == 1000
    # RIB order: IPv4 then IPv6, each sorted by address then length
    keys = [(ipaddress.ip_network(p).version, int(ipaddress.ip_network(p).network_address)) for p in prefixes]
    assert keys == sorted(keys)
    assert len({line[3] for line in lines}) <= 8
    # the measured statistics hold roughly (see the synth module docstring)
    assert 0.12 < stats.distinct_attribute_sets / stats.routes < 0.20
    assert 1.0 < stats.routes / 6000 < 1.05
    path_lengths = [len(line[6].split()) for line in lines]
    assert 3.6 < sum(path_lengths) / len(path_lengths) < 4.8
    origins = collections.Counter(line[7] for line in lines)
    assert origins["IGP"] / len(lines) > 0.9
    assert sum(1 for line in lines if line[11]) / len(lines) < 0.05  # communities are rare in jinx


def test_rib_is_deterministic(tmp_path: Path) -> None:
    a = synth.write_synthetic_rib(tmp_path / "a.gz", n_v4=300, n_v6=50, peers=3, seed=3, compress="gzip")
    b = synth.write_synthetic_rib(tmp_path / "b.gz", n_v4=300, n_v6=50, peers=3, seed=3, compress="gzip")
    c = synth.write_synthetic_rib(tmp_path / "c.gz", n_v4=300, n_v6=50, peers=3, seed=4, compress="gzip")
    digest = [hashlib.sha256(s.path.read_bytes()).hexdigest() for s in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_small_updates(tmp_path: Path) -> None:
    stats = synth.write_synthetic_updates(
        tmp_path / "upd.bz2", target_compressed_bytes=300_000, peers=12, seed=5
    )
    assert 250_000 < stats.compressed_bytes < 450_000
    lines = bgpdump(stats.path)
    kinds = collections.Counter(line[2] for line in lines)
    assert kinds == {"A": stats.routes, "W": stats.withdrawals, "STATE": stats.state_changes}
    assert stats.state_changes > 0
    assert {line[0] for line in lines} == {"BGP4MP_ET"}
    times = [float(line[1]) for line in lines]
    assert times == sorted(times)
    assert times[-1] - synth.UPDATES_START > 800
    assert times[-1] < synth.UPDATES_START + 900
    v6 = sum(1 for line in lines if line[2] in "AW" and ":" in line[5])
    assert 0.05 < v6 / (kinds["A"] + kinds["W"]) < 0.3


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "rib.mrt"
    assert synth.main(["rib", str(out), "--scale", "0.0005", "--compress", "none", "--peers", "4"]) == 0
    assert len(bgpdump(out)) > 600
