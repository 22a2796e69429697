"""Drive the real local service and the real CLI from tests (subprocesses, real ports)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rvcloud.backends.blob.base import BlobStore
from rvcloud.backends.factory import open_blob_store, open_warehouse
from rvcloud.backends.settings import embedded_urls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalService:
    proc: subprocess.Popen[str]
    addr: str
    data_dir: Path
    urls: dict[str, str]  # blob, bus, status, warehouse, topic_stored, topic_converted
    # Highest proportional set size (MiB) seen per child command line, process tree summed.
    peak_pss: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        threading.Thread(target=self._sample_memory, daemon=True).start()

    def _sample_memory(self) -> None:
        """Sample each child's tree PSS every 0.1 s while the service runs.

        PSS, not summed VmHWM: the converter's decode workers share pages with their fork
        server, and peaks of different processes rarely coincide; the sum of PSS at one
        instant is the memory the tree really holds.
        """
        while self.proc.poll() is None:
            for pid in self.child_pids():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    mib = _tree_pss_kib(pid) // 1024
                except OSError:
                    continue
                if mib > self.peak_pss.get(cmd, 0):
                    self.peak_pss[cmd] = mib
            threading.Event().wait(0.1)

    @property
    def cloud(self) -> bool:
        return self.urls["warehouse"].startswith("bigquery://")

    def blob_store(self) -> BlobStore:
        return open_blob_store(self.urls["blob"])

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, timeout=timeout)

    def upload(
        self, path: Path | str, filename: str, *extra: str, project: str = "routeviews"
    ) -> tuple[int, dict[str, Any]]:
        r = run_cli(
            "upload",
            "-f",
            str(path),
            "-d",
            self.addr,
            "--project",
            project,
            "--filename",
            filename,
            "--json",
            *extra,
        )
        try:
            out = json.loads(r.stdout) if r.stdout.strip() else {}
        except json.JSONDecodeError:
            raise AssertionError(f"upload printed no JSON: {r.stdout!r} {r.stderr!r}") from None
        out["_stderr"] = r.stderr
        return r.returncode, out

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        wh = open_warehouse(self.urls["warehouse"], self.blob_store())
        try:
            return wh.query(sql, params)
        finally:
            wh.close()

    def child_pids(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _tree_pss_kib(pid: int) -> int:
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            total = int(line.split()[1])
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):  # exited between the listing and the read
                total += _tree_pss_kib(int(child))
    return total


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RVCLOUD_")}
    env["RVCLOUD_SHARED_MRT"] = os.environ.get("RVCLOUD_SHARED_MRT", "")
    return env


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
    )


def start_local(data_dir: Path, *, converters: int = 1, urls: dict[str, str] | None = None) -> LocalService:
    """`rvcloud local` on ``urls`` (default: the embedded backends under ``data_dir``)."""
    addr = f"127.0.0.1:{free_port()}"
    all_urls = {
        **embedded_urls(str(data_dir)),
        "topic_stored": "rvcloud-stored",
        "topic_converted": "rvcloud-converted",
        **(urls or {}),
    }
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in all_urls.items()]
    if urls:
        setup = subprocess.run(
            [sys.executable, "-m", "rvcloud.backends.setup", *flags],
            capture_output=True,
            text=True,
            env=cli_env(),
        )
        assert setup.returncode == 0, setup.stderr
    cmd = [sys.executable, "-m", "rvcloud.cli", "local", "--data-dir", str(data_dir), "--listen", addr]
    proc = subprocess.Popen(
        [*cmd, "--converters", str(converters), *flags], stdout=subprocess.PIPE, text=True, env=cli_env()
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "gateway on" not in line:
        proc.kill()
        raise AssertionError(f"local service did not start: {line!r}")
    return LocalService(proc, addr, data_dir, all_urls)
