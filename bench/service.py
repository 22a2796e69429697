"""Service figures on the real local service (embedded backends): upload to DONE vs conversion alone.

1. the jinx RIB uploaded to DONE with ``upload-to-cloudz`` against ``rvcloud convert`` alone;
2. a re-upload of that DONE file: latency, and the bytes the CLI sent to the gateway
   (counted by a TCP proxy in front of it), against the file size;
3. N small UPDATES files (copies of one small shared file under distinct archive paths)
   uploaded by W concurrent CLI processes, each waiting for DONE: files per second.

Prints a Markdown section for ``bench/notes.md``. The embedded loader loads without a
batch window (files converted during a load share the next one).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
SHARED = Path(os.environ.get("RVCLOUD_SHARED_MRT", ROOT.parent / "shared" / "data" / "mrt"))
JINX = SHARED / "libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2"
JINX_PATH = "route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2"
SMALL = SHARED / "libbgpstream__routeviews.route-views.jinx.updates.1401493500.bz2"

# Runs the CLI in-process (imports done) and reports how long the upload call took.
_WRAP = """
import sys, time
from rvcloud.cli.upload import upload_to_cloudz_main
t = time.perf_counter()
try:
    rc = upload_to_cloudz_main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
print("ELAPSED", time.perf_counter() - t, file=sys.stderr)
sys.exit(rc or 0)
"""


class CountingProxy:
    """TCP proxy in front of the gateway counting the bytes clients send (gRPC framing included)."""

    def __init__(self, target: int) -> None:
        self.sent = 0
        self._lock = threading.Lock()
        self._target = target
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._srv.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            for sock in (client, upstream):  # no Nagle delays added by the proxy itself
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if count:
                    with self._lock:
                        self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def take(self) -> int:
        with self._lock:
            n, self.sent = self.sent, 0
        return n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _upload(addr: str, path: Path, archive: str) -> tuple[float, int, float]:
    """(seconds for the whole CLI process, exit code, seconds inside the upload call)."""
    t = time.perf_counter()
    r = subprocess.run(
        [str(BIN / "python"), "-c", _WRAP, "-f", str(path), "-d", addr, "--filename", archive, "-q"],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    inner = next((float(ln.split()[1]) for ln in r.stderr.splitlines() if ln.startswith("ELAPSED")), -1.0)
    return wall, r.returncode, inner


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="rvcloud-bench-"))
    port = _free_port()
    addr = f"127.0.0.1:{port}"
    load = os.getloadavg()
    svc = subprocess.Popen(
        [str(BIN / "rvcloud"), "local", "--data-dir", str(tmp / "data"), "--listen", addr],
        stdout=open(tmp / "service.log", "wb"),  # noqa: SIM115 - lives as long as the service
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.2)
        conv = []
        for _ in range(args.reps):
            t = time.perf_counter()
            subprocess.run([str(BIN / "rvcloud"), "convert", str(JINX), "-o", str(tmp / "conv")], check=True,
                           capture_output=True)  # fmt: skip
            conv.append(time.perf_counter() - t)
        proxy = CountingProxy(port)
        paddr = f"127.0.0.1:{proxy.port}"
        up, rc, _ = _upload(paddr, JINX, JINX_PATH)
        sent_first = proxy.take()
        # Bytes are counted through the proxy; latency is taken straight from the gateway
        # (the proxy's own thread hops would be part of it otherwise).
        again, sent_again = [], []
        for _ in range(args.reps):
            _upload(paddr, JINX, JINX_PATH)
            sent_again.append(proxy.take())
            again.append(_upload(addr, JINX, JINX_PATH))
        # Many small files, W CLI processes at a time.
        small_dir = tmp / "small"
        small_dir.mkdir()
        jobs = []
        t0 = dt.datetime(2014, 5, 1)
        for i in range(args.files):
            ts = t0 + dt.timedelta(minutes=15 * i)
            name = f"updates.{ts:%Y%m%d.%H%M}.bz2"
            p = small_dir / name
            shutil.copyfile(SMALL, p)
            jobs.append((p, f"route-views.jinx/bgpdata/{ts:%Y.%m}/UPDATES/{name}"))
        t = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            res = list(pool.map(lambda j: _upload(addr, j[0], j[1]), jobs))
        many = time.perf_counter() - t
        failed = sum(1 for r in res if r[1] != 0)
    finally:
        os.killpg(svc.pid, signal.SIGTERM)
        try:
            svc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(svc.pid, signal.SIGKILL)
    c = statistics.median(conv)
    lines = [
        "## Service figures (real local service, embedded backends)",
        "",
        f"`python bench/service.py --files {args.files} --workers {args.workers}`; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| `rvcloud convert` jinx RIB alone (median of {args.reps}, process start included) | {c:.2f} s |",
        f"| jinx RIB `upload-to-cloudz` to DONE (exit {rc}) | {up:.2f} s = {up / c:.2f}x the conversion |",
        f"| bytes the CLI sent to the gateway for it (file {JINX.stat().st_size:,} B) | {sent_first:,} B |",
        f"| re-upload of the DONE file: upload call inside the CLI (median of {args.reps}) | "
        f"{statistics.median(a[2] for a in again) * 1000:.0f} ms (exit {again[0][1]}) |",
        f"| the same, whole CLI process (interpreter start and imports included) | "
        f"{statistics.median(a[0] for a in again):.3f} s |",
        f"| bytes the re-upload sent to the gateway (all RPCs, gRPC framing included) | "
        f"{statistics.median(sent_again):,.0f} B |",
        f"| {args.files} small UPDATES files ({SMALL.stat().st_size:,} B each), {args.workers} CLI processes "
        f"| {many:.1f} s, {args.files / many:.1f} files/s, {failed} not DONE |",
        "",
    ]
    print("\n".join(lines))
    print(json.dumps({"tmp": str(tmp)}), file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
