"""Run deploy/nginx/rvcloud-grpc.conf for tests: rendered into a temporary directory, foreground.

The production file is used as it is, with only its addresses and log path rewritten
(and, for tests that say so, named directives given other values). It goes into a
small main configuration whose pid file, logs and temporary directories are all in
the test's directory, so nginx runs without touching /etc, /var or /run.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Resolved before any fork: the child must not take the dynamic loader's locks.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_CONF = REPO / "deploy" / "nginx" / "rvcloud-grpc.conf"
_INSTALL_LOCK = Path("/tmp/rvcloud-nginx-install.lock")


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM if the test process dies without stopping it."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def nginx_binary() -> str | None:
    """The nginx executable, installed with apt (as `make tools` does) if it is missing.

    None only when it is missing and cannot be installed (not root, no apt-get, or the
    installation failed); the caller skips with ``install_problem``.
    """
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    with open(_INSTALL_LOCK, "w") as lock:  # parallel sessions install once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access("/usr/sbin/nginx", os.X_OK):
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "nginx"], env=env, capture_output=True, timeout=600
            )
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def install_problem() -> str:
    if os.geteuid() != 0:
        return "nginx is not installed and this user cannot apt-get install it (run `make tools` as root)"
    if not shutil.which("apt-get"):
        return "nginx is not installed and there is no apt-get to install it"
    return "nginx is not installed and `apt-get install nginx` failed (no network to the Debian mirror?)"


def render_site(
    listen: str,
    backends: Sequence[str],
    access_log: Path,
    overrides: Mapping[str, str | None] | None = None,
) -> str:
    """The production server configuration for this machine.

    ``listen``: HOST:PORT nginx listens on; ``backends``: the gateway replicas'
    HOST:PORT; ``overrides``: directive name -> new value (None: drop the directive),
    for every occurrence of that directive.
    """
    text = PRODUCTION_CONF.read_text()
    lines = text.splitlines()
    out: list[str] = []
    listens = servers = 0
    for line in lines:
        if re.match(r"\s*listen\s+\d+\s+http2;", line):
            out.append(re.sub(r"listen\s+\d+", f"listen {listen}", line))
            listens += 1
            continue
        m = re.match(r"(\s*)server\s+[\w.:\[\]-]+:\d+(\s+[^;]*)?;", line)
        if m:
            if servers == 0:  # the replicas replace the example ones
                out += [f"{m.group(1)}server {b}{m.group(2) or ''};" for b in backends]
            servers += 1
            continue
        if re.match(r"\s*access_log\s", line):
            line = re.sub(r"access_log\s+\S+", f"access_log {access_log}", line)
        out.append(line)
    if listens != 1 or servers < 1:
        raise AssertionError(f"{PRODUCTION_CONF}: expected one `listen PORT http2;` and upstream servers")
    site = "\n".join(out) + "\n"
    for name, value in (overrides or {}).items():
        pattern = re.compile(rf"^(\s*){re.escape(name)}\s+[^;]*;", re.MULTILINE)
        if not pattern.search(site):
            raise AssertionError(f"{PRODUCTION_CONF} has no {name} directive to override")
        site = pattern.sub("" if value is None else rf"\g<1>{name} {value};", site)
    return site


def main_conf(work: Path, site: Path) -> str:
    """A main configuration that keeps every file nginx writes inside ``work``."""
    tmp = work / "tmp"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, workers would switch to `nobody`, who cannot enter a private temporary
    # directory; they stay root here (a test process, not a server).
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\n"
        f"error_log {work / 'error.log'} notice;\n"
        f"pid {work / 'nginx.pid'};\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"{temp_paths}\n"
        f"    include {site};\n"
        "}\n"
    )


@dataclass
class Nginx:
    binary: str
    work: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.work / "access.log"

    def start(self, backends: Sequence[str], overrides: Mapping[str, str | None] | None = None) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "tmp").mkdir(exist_ok=True)
        site = self.work / "rvcloud-grpc.conf"
        site.write_text(render_site(self.addr, backends, self.access_log, overrides))
        conf = self.work / "nginx.conf"
        conf.write_text(main_conf(self.work, site))
        cmd = [self.binary, "-p", str(self.work), "-c", str(conf), "-g", "daemon off;"]
        check = subprocess.run([*cmd[:-2], "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"nginx -t rejects the rendered configuration:\n{check.stderr}")
        with open(self.work / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, preexec_fn=die_with_parent
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise AssertionError(f"nginx not listening on {self.addr} after 10 s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # fast shutdown: master and workers
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n: int = 30) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                parts += (self.work / name).read_text(errors="replace").splitlines()[-n:]
        return "\n".join(parts)

    def calls(self) -> list[dict[str, Any]]:
        """The access log: one dict per finished call (see log_format rvcloud_grpc)."""
        try:
            text = self.access_log.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
