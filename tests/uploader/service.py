"""The real local service for the uploader tests, in its own process group so a test can SIGKILL it whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.service import cli_env, free_port


def uploader_env(home: Path) -> dict[str, str]:
    """The CLI's environment: no RVCLOUD_* settings and no config file from the developer's machine."""
    env = {k: v for k, v in cli_env().items() if not k.startswith("RVCLOUD_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    return env


def cli(*args: str, home: Path, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvcloud.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=uploader_env(home),
        **kw,
    )


@dataclass
class Service:
    data_dir: Path
    addr: str
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rvcloud.cli",
                "local",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                self.addr,
                "--converters",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=cli_env(),
            start_new_session=True,  # its own process group: kill() takes every child with it
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "gateway on" not in line:
            self.kill()
            raise AssertionError(f"local service did not start: {line!r}")

    def kill(self) -> None:
        """SIGKILL the whole process group: gateway, converters and loader die mid-work."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def records(self, home: Path, project: str = "routeviews") -> dict[str, dict[str, Any]]:
        """Every status record of ``project``, by archive path (through `rvcloud list --json --all`)."""
        r = cli(
            "list", "-d", self.addr, "--project", project, "--all", "--page-size", "1000", "--json", home=home
        )
        assert r.returncode == 0, r.stderr
        return {rec["filename"]: rec for rec in json.loads(r.stdout)}

    def query(self, sql: str, home: Path) -> list[list[Any]]:
        """Rows of a read-only SQL query through `rvcloud query --data-dir DIR --json`."""
        r = cli("query", "--data-dir", str(self.data_dir), "--json", sql, home=home)
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def new_service(data_dir: Path) -> Service:
    svc = Service(data_dir, f"127.0.0.1:{free_port()}")
    svc.start()
    return svc
