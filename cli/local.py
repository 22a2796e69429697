"""``rvcloud local``: the whole service on one machine (embedded backends by default).

Each backend URL comes from its flag, else its RVCLOUD_* variable, else the embedded
backend under ``--data-dir``; so the same supervisor runs the cloud topology against
the emulators (``make dev-cloud``) or real Google services.

Starts the gateway, N converter workers and the loader as child processes of this
interpreter, waits until the gateway answers, prints one ready line on stdout and
then supervises: a signal stops every child (SIGTERM, then SIGKILL after a grace
period); a child that exits on its own is restarted, and one that keeps crashing
(5 times within a minute) stops the rest with exit code 1.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import IO, Final

import grpc

from rvcloud.cli.client import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Endpoint, UsageError, parse_endpoint

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
READY_TIMEOUT: Final = 30.0
STOP_GRACE: Final = 10.0
MAX_RESTARTS: Final = 5  # restarts of one child within RESTART_WINDOW before giving up
RESTART_WINDOW: Final = 60.0
_PR_SET_PDEATHSIG: Final = 1

_ENV_VARS: Final = {
    "blob": "RVCLOUD_BLOB",
    "bus": "RVCLOUD_BUS",
    "status": "RVCLOUD_STATUS",
    "warehouse": "RVCLOUD_WAREHOUSE",
}

EXAMPLES: Final = """\
examples:
  rvcloud local
  rvcloud local --data-dir /srv/rvcloud-data --listen 0.0.0.0:50051 --converters 4 --log-dir
  upload-to-cloudz -d 127.0.0.1:50051 -f route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2

Stop with Ctrl-C or SIGTERM. Children's output goes to stderr, each line prefixed with
the child's name.
"""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread
    args: list[str]
    restarts: list[float]


def add_local_arguments(parser: argparse.ArgumentParser) -> None:
    from rvcloud.backends.settings import DEFAULT_DATA_DIR, add_backend_args

    add_backend_args(parser)
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"where blobs, the bus, the status store and the warehouse live (default ./{DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address the gateway listens on (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--converters", type=int, default=1, metavar="N", help="number of converter workers (default 1)"
    )
    parser.add_argument(
        "--log-dir",
        nargs="?",
        const="",
        metavar="DIR",
        help="also append each child's output to DIR/<name>.log (DIR defaults to DATA_DIR/logs)",
    )


# Resolved once here: after fork (possibly in a threaded parent, when a crashed child is
# restarted) the child must not take the dynamic loader's locks.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    # Runs in the child before exec: Linux sends it SIGTERM if this supervisor dies
    # without cleaning up (e.g. SIGKILL), so no orphaned gateway keeps the port.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _pump(stream: IO[bytes], name: str, log_path: str | None) -> None:
    """Copy a child's output to our stderr, prefixed with its name, and to its log file."""
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed below, after the loop
    try:
        for line in stream:
            sys.stderr.write(f"[{name}] {line.decode('utf-8', 'replace')}")
            sys.stderr.flush()
            if log is not None:
                log.write(line)
                log.flush()
    finally:
        if log is not None:
            log.close()


def _start(name: str, args: list[str], env: dict[str, str], log_dir: str | None) -> Child:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        # stdout belongs to the ready line alone, so children's stdout joins their stderr.
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A new session keeps a terminal's Ctrl-C away from the children: this process
        # decides how they stop.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    assert proc.stdout is not None
    log_path = os.path.join(log_dir, f"{name}.log") if log_dir is not None else None
    # Started by the caller once every child exists: preexec_fn is only safe to run
    # while this process has a single thread.
    pump = threading.Thread(
        target=_pump, args=(proc.stdout, name, log_path), name=f"pump-{name}", daemon=True
    )
    return Child(name, proc, pump, args, [])


def _exited(children: list[Child]) -> Child | None:
    return next((c for c in children if c.proc.poll() is not None), None)


def _stop(children: list[Child]) -> None:
    for c in children:
        if c.proc.poll() is None:
            c.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for c in children:
        try:
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(
                f"rvcloud local: {c.name} did not stop within {STOP_GRACE:g} s; killing it", file=sys.stderr
            )
            c.proc.kill()
            c.proc.wait()
    for c in children:
        if c.pump.ident is not None:  # started
            c.pump.join(timeout=2)


def _exit_text(child: Child) -> str:
    code = child.proc.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    return f"{child.name} (pid {child.proc.pid}) {how}"


def _wait_ready(endpoint: Endpoint, children: list[Child], stop: threading.Event) -> str | None:
    """None once the gateway answers; otherwise why it never did."""
    host = "127.0.0.1" if endpoint.host in ("0.0.0.0", "::") else endpoint.host
    with grpc.insecure_channel(Endpoint(host, endpoint.port, tls=False).target) as channel:
        ready = grpc.channel_ready_future(channel)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                ready.result(timeout=0.2)
                return None
            except grpc.FutureTimeoutError:
                pass
            if stop.is_set():
                return "stopped before the gateway was ready"
            dead = _exited(children)
            if dead is not None:
                return f"{_exit_text(dead)} during start-up"
            if time.monotonic() > deadline:
                return f"the gateway did not answer on {endpoint.target} within {READY_TIMEOUT:g} s"


def _check_free(endpoint: Endpoint) -> None:
    """Refuse a listen address something already answers on: the readiness check would
    otherwise be answered by that other service and we would report it as ours."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=1):
            pass
    except OSError:
        return
    raise UsageError(f"{endpoint.target} is already in use (another rvcloud local?); pick another --listen")


def run_local(args: argparse.Namespace) -> int:
    from rvcloud.backends.settings import embedded_urls

    try:
        import duckdb  # noqa: F401 -- the stages need the server extra
        import fastavro  # noqa: F401
        import grpc_health  # noqa: F401
    except ImportError as e:
        print(
            f"error: rvcloud local runs the service, which needs the server packages ({e.name} is missing): "
            "pip install 'rvcloud[server]'",
            file=sys.stderr,
        )
        return EXIT_USAGE

    try:
        endpoint = parse_endpoint(args.listen)
        if endpoint.tls or "://" in args.listen:
            raise UsageError(f"--listen takes HOST:PORT, not {args.listen!r}")
        if args.converters < 1:
            raise UsageError("--converters must be at least 1")
        _check_free(endpoint)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE

    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    log_dir = None if args.log_dir is None else (args.log_dir or os.path.join(data_dir, "logs"))
    if log_dir is not None:
        os.makedirs(log_dir, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k, url in embedded_urls(data_dir).items():
        env[_ENV_VARS[k]] = getattr(args, k, None) or os.environ.get(_ENV_VARS[k]) or url
    for k in ("topic_stored", "topic_converted"):
        if getattr(args, k, None):
            env[f"RVCLOUD_{k.upper()}"] = getattr(args, k)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    specs = [("gateway", ["rvcloud.ingest_gateway", "--listen", args.listen])]
    specs += [(f"converter-{i}", ["rvcloud.converter_worker"]) for i in range(1, args.converters + 1)]
    specs += [("loader", ["rvcloud.loader_worker"])]
    children: list[Child] = []
    try:
        for name, module_args in specs:
            children.append(_start(name, module_args, env, log_dir))
        for c in children:
            c.pump.start()
        problem = _wait_ready(endpoint, children, stop)
        if problem is not None:
            print(f"rvcloud local: {problem}", file=sys.stderr)
            return EXIT_OK if stop.is_set() else EXIT_FAILED
        pids = ", ".join(f"{c.name}={c.proc.pid}" for c in children)
        print(f"rvcloud local: gateway on {args.listen}, data in {data_dir} (pids {pids})", flush=True)
        while not stop.wait(0.5):
            dead = _exited(children)
            if dead is None:
                continue
            # A crashed stage is restarted, as a production supervisor would: its
            # unfinished work is redelivered to it or to a sibling. A crash loop ends it all.
            now = time.monotonic()
            recent = [t for t in dead.restarts if now - t < RESTART_WINDOW]
            if len(recent) >= MAX_RESTARTS:
                print(f"rvcloud local: {_exit_text(dead)} again; stopping the others", file=sys.stderr)
                return EXIT_FAILED
            print(f"rvcloud local: {_exit_text(dead)}; restarting it", file=sys.stderr)
            dead.pump.join(timeout=2)
            fresh = _start(dead.name, dead.args, env, log_dir)
            fresh.restarts = [*recent, now]
            fresh.pump.start()
            children[children.index(dead)] = fresh
        print("rvcloud local: stopping", file=sys.stderr)
        return EXIT_OK
    finally:
        _stop(children)
