"""The uploader streams: peak memory does not depend on the file size (1 GiB vs 10 MiB)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rvcloud.cli.client import CHUNK_SIZE
from tests.cli.fake_gateway import Gateway

MIB = 1024 * 1024


def _vm_hwm_kib(pid: int) -> int | None:
    """Peak RSS of a running process, or None once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None  # a zombie has no memory left to report


def _upload_peak_rss_mib(path: Path, gateway: Gateway) -> float:
    """Run the CLI in a child process and return its peak RSS in MiB.

    VmHWM is sampled while the child runs: unlike ru_maxrss it starts afresh at exec
    and so is not inflated by this (large) pytest process that forked the child.
    """
    argv = [sys.executable, "-m", "rvcloud.cli", "upload", "-f", str(path), "-d", gateway.address]
    argv += ["--filename", f"route-views2/bgpdata/2024.01/RIBS/{path.name}", "--no-wait", "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _vm_hwm_kib(proc.pid) or 0)
        time.sleep(0.02)
    assert proc.stderr is not None
    assert proc.wait() == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return peak / 1024


def test_constant_memory_for_a_1_gib_upload(gateway: Gateway, tmp_path: Path) -> None:
    small = tmp_path / "rib.20240101.0000.bz2"
    small.write_bytes(os.urandom(10 * MIB))
    big = tmp_path / "rib.20240101.0200.bz2"
    with open(big, "wb") as f:
        f.truncate(1024 * MIB)  # sparse: no disk space used, reads as zeros

    t0 = time.monotonic()
    small_rss = _upload_peak_rss_mib(small, gateway)
    big_rss = _upload_peak_rss_mib(big, gateway)
    assert time.monotonic() - t0 < 60

    small_up, big_up = gateway.fake.uploads
    assert small_up.data == small.read_bytes()
    assert big_up.header.size == 1024 * MIB
    assert big_up.chunk_sizes == [CHUNK_SIZE] * 1024
    assert big_up.sha256 == big_up.header.sha256  # the server saw exactly the hashed bytes
    print(f"peak RSS {small_rss:.1f} MiB (10 MiB) vs {big_rss:.1f} MiB (1 GiB)")
    assert big_rss < 150, f"peak RSS {big_rss:.0f} MiB for 1 GiB"
    assert big_rss - small_rss < 20, f"peak RSS grew from {small_rss:.0f} to {big_rss:.0f} MiB"
