"""Local emulators of the Google Cloud backends, for tests and ``make dev-cloud``.

A pytest plugin (``pytest_plugins = ["tests.emulators"]`` in ``tests/conftest.py``) and a
command line (``python -m tests.emulators start|stop|env --state DIR``).

Emulators (installed into ``.emu/`` by ``deploy/emulators/install.sh``, run here once if
something is missing; see ``../shared/docs/emulators.md`` for the choices and gaps):

- ``gcs``: fake-gcs-server v1.54 (memory backend); sets
  ``STORAGE_EMULATOR_HOST=http://127.0.0.1:P``. Ready in ~0.1 s, 30 MB idle.
- ``pubsub``: the gcloud Pub/Sub emulator (Java); sets ``PUBSUB_EMULATOR_HOST=127.0.0.1:P``.
  Ready in ~2-2.5 s, ~160 MB (java) + 60 MB (the gcloud wrapper).
- ``datastore``: the gcloud Datastore emulator (Java); sets
  ``DATASTORE_EMULATOR_HOST=127.0.0.1:P``. Ready in ~1.5-2.5 s, ~110 MB + 60 MB.
- ``bigquery``: local-bigquery 0.4.0 (Python 3.13, DuckDB); sets
  ``BIGQUERY_EMULATOR_HOST=http://127.0.0.1:P``; starts ``gcs`` first so ``gs://`` loads
  work. Ready in ~2-3.5 s, ~300 MB idle.

(Measured on the 2-core CI image; ``Emulator.startup_seconds`` records each run.) Every
emulator also sets ``GOOGLE_CLOUD_PROJECT`` (and the ``*_PROJECT_ID`` variables the
client libraries read) to :data:`PROJECT`.

Each emulator starts lazily on a free ``127.0.0.1`` port the first time a test asks
for it, once per session; its variables go into ``os.environ`` (so subprocesses that
tests start find it) and are restored at the end of the session, when the emulators
are stopped by killing their whole process group (``gcloud`` is a Python wrapper that
spawns ``java``; killing the wrapper alone would leave the JVM running). An emulator
that cannot start fails the test with its log -- never a skip: a skipped cloud test is
a feature nobody checked.

Datastore runs in *Firestore in Datastore mode* (``--use-firestore-in-datastore-mode``):
strongly consistent queries, as every Datastore database created today is. The legacy
emulator default (``--consistency=0.9``) makes non-ancestor queries randomly stale;
set ``RVCLOUD_DATASTORE_EMULATOR_FLAGS`` to override the flags.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EMU_DIR = Path(os.environ.get("RVCLOUD_EMU_DIR", str(REPO / ".emu")))
PROJECT = "rvcloud-test"
NAMES = ("gcs", "pubsub", "datastore", "bigquery")
START_TIMEOUT = float(os.environ.get("RVCLOUD_EMULATOR_START_TIMEOUT", "90"))
DATASTORE_FLAGS = os.environ.get(
    "RVCLOUD_DATASTORE_EMULATOR_FLAGS", "--use-firestore-in-datastore-mode"
).split()


class EmulatorError(RuntimeError):
    """An emulator could not be installed or started (the message has its log)."""


@dataclass
class Emulator:
    """One running emulator process (group)."""

    name: str
    host: str
    port: int
    env: dict[str, str]
    pid: int
    log_path: Path
    startup_seconds: float
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def address(self) -> str:
        """``host:port`` (what ``PUBSUB_EMULATOR_HOST`` and ``DATASTORE_EMULATOR_HOST`` hold)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@dataclass
class CloudEmulators:
    """All four emulators, for tests that need the whole cloud (e.g. end to end)."""

    gcs: Emulator
    pubsub: Emulator
    datastore: Emulator
    bigquery: Emulator
    project: str = PROJECT

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in (self.gcs, self.pubsub, self.datastore, self.bigquery):
            out.update(e.env)
        return out


# ---- helpers ---------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now (a race is possible; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return 200 <= int(r.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def _kill_group(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            # Reap our own child if it is one (else the group lingers as a zombie).
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def fake_gcs_binary() -> Path:
    return Path((EMU_DIR / "fakegcs.path").read_text().strip())


def _installed() -> bool:
    try:
        gcs_ok = fake_gcs_binary().is_file()
    except OSError:
        gcs_ok = False
    icu = EMU_DIR / "home" / ".duckdb" / "extensions" / "v1.5.5" / "linux_amd64" / "icu.duckdb_extension"
    return gcs_ok and (EMU_DIR / "venv-bq" / "bin" / "local-bigquery").is_file() and icu.is_file()


def ensure_installed() -> None:
    """Run ``deploy/emulators/install.sh`` once if ``.emu`` is incomplete (file-locked,
    so parallel sessions do not install twice)."""
    if _installed():
        return
    EMU_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(str(EMU_DIR) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        env = dict(os.environ, EMU=str(EMU_DIR))
        r = subprocess.run(
            ["bash", str(REPO / "deploy" / "emulators" / "install.sh")],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 or not _installed():
            raise EmulatorError(
                f"deploy/emulators/install.sh failed (exit {r.returncode}):\n"
                f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
            )


# ---- the emulators ---------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    command: Callable[[int, Path, Mapping[str, str]], list[str]]
    ready_url: Callable[[int], str]
    env: Callable[[int], dict[str, str]]
    extra_env: Callable[[Mapping[str, str]], dict[str, str]] = lambda _: {}
    needs: tuple[str, ...] = ()


def _gcloud_env(_: Mapping[str, str]) -> dict[str, str]:
    # No prompts and no update check (CI has no network beyond package registries).
    return {"CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"}


def _bq_env(running: Mapping[str, str]) -> dict[str, str]:
    # DuckDB finds the preinstalled extensions under $HOME/.duckdb; gs:// loads go to
    # the fake-gcs-server (which needs -public-host for DuckDB's XML-API reads).
    return {"HOME": str(EMU_DIR / "home"), "STORAGE_EMULATOR_HOST": running["STORAGE_EMULATOR_HOST"]}


_SPECS: dict[str, _Spec] = {
    "gcs": _Spec(
        command=lambda p, d, _: [
            str(fake_gcs_binary()),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(p)),
            *("-public-host", f"127.0.0.1:{p}", "-external-url", f"http://127.0.0.1:{p}"),
            *("-backend", "memory", "-log-level", "warn"),
        ],
        ready_url=lambda p: f"http://127.0.0.1:{p}/storage/v1/b",
        env=lambda p: {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{p}"},
    ),
    "pubsub": _Spec(
        command=lambda p, d, _: [
            *("gcloud", "beta", "emulators", "pubsub", "start"),
            f"--host-port=127.0.0.1:{p}",
            f"--data-dir={d}",
        ],
        ready_url=lambda p: f"http://127.0.0.1:{p}/v1/projects/{PROJECT}/topics",
        env=lambda p: {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{p}", "PUBSUB_PROJECT_ID": PROJECT},
        extra_env=_gcloud_env,
    ),
    "datastore": _Spec(
        command=lambda p, d, _: [
            *("gcloud", "beta", "emulators", "datastore", "start", "--no-store-on-disk"),
            f"--project={PROJECT}",
            f"--host-port=127.0.0.1:{p}",
            f"--data-dir={d}",
            *DATASTORE_FLAGS,
        ],
        ready_url=lambda p: f"http://127.0.0.1:{p}/",
        env=lambda p: {"DATASTORE_EMULATOR_HOST": f"127.0.0.1:{p}", "DATASTORE_PROJECT_ID": PROJECT},
        extra_env=_gcloud_env,
    ),
    "bigquery": _Spec(
        command=lambda p, d, _: [
            str(EMU_DIR / "venv-bq" / "bin" / "local-bigquery"),
            "serve",
            *("--host", "127.0.0.1", "--port", str(p), "--grpc-port", str(free_port())),
            *("--data-dir", str(d), "--project", PROJECT),
        ],
        ready_url=lambda p: f"http://127.0.0.1:{p}/bigquery/v2/projects/{PROJECT}/datasets",
        env=lambda p: {"BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{p}"},
        extra_env=_bq_env,
        needs=("gcs",),
    ),
}


class EmulatorManager:
    """Starts emulators on demand (thread-safe), exports their variables, stops them all."""

    def __init__(self, state_dir: Path | None = None, *, set_environ: bool = True) -> None:
        self._own_state = state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="rvcloud-emu-")) if state_dir is None else state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.set_environ = set_environ
        self.running: dict[str, Emulator] = {}
        self._lock = threading.RLock()
        self._saved_environ: dict[str, str | None] = {}

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in self.running.values():
            out.update(e.env)
        return out

    def get(self, name: str) -> Emulator:
        """The running emulator ``name``, started now if need be."""
        with self._lock:
            emu = self.running.get(name)
            if emu is not None and emu.alive():
                return emu
            spec = _SPECS[name]
            for dep in spec.needs:
                self.get(dep)
            ensure_installed()
            errors: list[str] = []
            for _ in range(3):  # a port taken between free_port() and bind: try another
                try:
                    emu = self._start(name, spec)
                except EmulatorError as e:
                    errors.append(str(e))
                    continue
                self.running[name] = emu
                self._export(emu.env)
                return emu
            raise EmulatorError(f"the {name} emulator did not start (3 tries):\n" + "\n---\n".join(errors))

    def _start(self, name: str, spec: _Spec) -> Emulator:
        port = free_port()
        data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.state_dir))
        log_path = data_dir / "emulator.log"
        running_env = {**os.environ, **self.env()}
        env = {**os.environ, **spec.extra_env(running_env)}
        cmd = spec.command(port, data_dir, running_env)
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                # A new session: the whole group (gcloud + java) can be killed at once,
                # and a Ctrl-C in the terminal does not hit the emulators mid-teardown.
                proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    cwd=data_dir, start_new_session=True,
                )  # fmt: skip
            except OSError as e:
                raise EmulatorError(f"cannot run {cmd[0]}: {e}") from e
        deadline = t0 + START_TIMEOUT
        url = spec.ready_url(port)
        while not _http_ok(url):
            if proc.poll() is not None:  # e.g. the port was taken after all
                raise EmulatorError(
                    f"{name} emulator exited with {proc.returncode}: {' '.join(cmd)}\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                _kill_group(proc.pid)
                raise EmulatorError(
                    f"{name} emulator not ready after {START_TIMEOUT:.0f}s at {url}\n{_log_tail(log_path)}"
                )
            time.sleep(0.05)
        env_vars = {**spec.env(port), "GOOGLE_CLOUD_PROJECT": PROJECT}
        return Emulator(name, "127.0.0.1", port, env_vars, proc.pid, log_path, time.monotonic() - t0, proc)

    def _export(self, env: Mapping[str, str]) -> None:
        if not self.set_environ:
            return
        for k, v in env.items():
            self._saved_environ.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def stop_all(self) -> None:
        with self._lock:
            for emu in reversed(list(self.running.values())):
                _kill_group(emu.pid)
                if emu.proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        emu.proc.wait(5)  # reaped, so no ResourceWarning
            self.running.clear()
            for k, old in self._saved_environ.items():
                if old is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = old
            self._saved_environ.clear()
            if self._own_state:
                shutil.rmtree(self.state_dir, ignore_errors=True)


# ---- pytest fixtures ----------------------------------------------------------------

# One manager per process, also when the fixtures are imported into several conftest
# files (each import is a separate fixture definition with its own session cache).
_manager: EmulatorManager | None = None
_manager_lock = threading.Lock()


def manager() -> EmulatorManager:
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = EmulatorManager()
            atexit.register(_manager.stop_all)
        return _manager


def _get(name: str) -> Emulator:
    try:
        return manager().get(name)
    except EmulatorError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def emulator_manager() -> Iterator[EmulatorManager]:
    m = manager()
    yield m
    m.stop_all()


@pytest.fixture(scope="session")
def gcs_emulator(emulator_manager: EmulatorManager) -> Emulator:
    """fake-gcs-server; ``STORAGE_EMULATOR_HOST`` is set while the session runs."""
    return _get("gcs")


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_manager: EmulatorManager) -> Emulator:
    """gcloud Pub/Sub emulator; ``PUBSUB_EMULATOR_HOST`` is set while the session runs."""
    return _get("pubsub")


@pytest.fixture(scope="session")
def datastore_emulator(emulator_manager: EmulatorManager) -> Emulator:
    """gcloud Datastore emulator (Firestore in Datastore mode); ``DATASTORE_EMULATOR_HOST``."""
    return _get("datastore")


@pytest.fixture(scope="session")
def bigquery_emulator(emulator_manager: EmulatorManager, gcs_emulator: Emulator) -> Emulator:
    """local-bigquery, reading gs:// URIs from the GCS emulator; ``BIGQUERY_EMULATOR_HOST``."""
    return _get("bigquery")


@pytest.fixture(scope="session")
def cloud_emulators(
    gcs_emulator: Emulator,
    pubsub_emulator: Emulator,
    datastore_emulator: Emulator,
    bigquery_emulator: Emulator,
) -> CloudEmulators:
    return CloudEmulators(gcs_emulator, pubsub_emulator, datastore_emulator, bigquery_emulator)


# ---- command line (make dev-cloud) -------------------------------------------------


def _cli_start(state: Path, names: list[str]) -> int:
    state.mkdir(parents=True, exist_ok=True)
    pidfile = state / "emulators.json"
    if pidfile.exists():
        print(f"emulators already running per {pidfile}; stop them first", file=sys.stderr)
        return 1
    m = EmulatorManager(state, set_environ=False)
    try:
        for n in names:
            emu = m.get(n)
            print(
                f"# {n}: {emu.address} ready in {emu.startup_seconds:.1f}s (log {emu.log_path})",
                file=sys.stderr,
            )
    except EmulatorError as e:
        print(str(e), file=sys.stderr)
        m.stop_all()
        return 1
    record = {n: {"pid": e.pid, "env": e.env, "log": str(e.log_path)} for n, e in m.running.items()}
    pidfile.write_text(json.dumps(record, indent=1))
    for k, v in sorted(m.env().items()):
        print(f"export {k}={v}")
    return 0


def _cli_stop(state: Path) -> int:
    pidfile = state / "emulators.json"
    if not pidfile.exists():
        print(f"nothing recorded in {pidfile}", file=sys.stderr)
        return 0
    for name, rec in json.loads(pidfile.read_text()).items():
        _kill_group(int(rec["pid"]))
        print(f"# stopped {name}", file=sys.stderr)
    pidfile.unlink()
    return 0


def _cli_env(state: Path) -> int:
    pidfile = state / "emulators.json"
    if not pidfile.exists():
        print(f"no emulators recorded in {pidfile}", file=sys.stderr)
        return 1
    for rec in json.loads(pidfile.read_text()).values():
        for k, v in sorted(rec["env"].items()):
            print(f"export {k}={v}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.emulators",
        description="Start/stop the local Google Cloud emulators in the background. "
        "`start` prints `export VAR=value` lines for eval.",
    )
    ap.add_argument("command", choices=["start", "stop", "env"])
    ap.add_argument("--state", type=Path, default=REPO / ".emu" / "state", help="state/log directory")
    ap.add_argument("--only", default=",".join(NAMES), help=f"comma-separated subset of {','.join(NAMES)}")
    a = ap.parse_args(argv)
    if a.command == "start":
        names = [n for n in a.only.split(",") if n]
        bad = [n for n in names if n not in _SPECS]
        if bad:
            ap.error(f"unknown emulators {bad}")
        return _cli_start(a.state.absolute(), names)
    if a.command == "stop":
        return _cli_stop(a.state.absolute())
    return _cli_env(a.state.absolute())


if __name__ == "__main__":
    sys.exit(main())
