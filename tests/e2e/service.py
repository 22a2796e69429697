"""Drive the real local service and the real CLI from tests (subprocesses, real ports)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        urls = embedded_urls(str(self.data_dir))
        wh = open_warehouse(urls["warehouse"], open_blob_store(urls["blob"]))
        try:
            return wh.query(sql)
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


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RVCLOUD_DATA_DIR", None)
    return env


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
    )


def start_local(data_dir: Path, *, converters: int = 1) -> LocalService:
    addr = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rvcloud.cli",
            "local",
            "--data-dir",
            str(data_dir),
            "--listen",
            addr,
            "--converters",
            str(converters),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = proc.stdout.readline()
    if "gateway on" not in line or time.monotonic() > deadline:
        proc.kill()
        raise AssertionError(f"local service did not start: {line!r}")
    return LocalService(proc, addr, data_dir)
