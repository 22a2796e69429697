"""Acceptance: 2 gateway replicas behind nginx on the emulated cloud, SIGKILLs mid-backfill.

Topology, every box a separate process (so any one can be SIGKILLed): the four cloud
emulators (GCS, Pub/Sub, Datastore, BigQuery), two gateway replicas, two converters,
one loader (which also sweeps), and nginx running deploy/nginx/rvcloud-grpc.conf in
front of the replicas. ``rvcloud backfill --workers 8`` sends 50 writer-made MRT files
(RouteViews layout, half RIBs, half UPDATES) through nginx.

While the backfill runs, one gateway replica is SIGKILLed at a moment it is receiving
an upload (``kill_while_receiving``), after at least 10 files were stored; one
converter is SIGKILLed while it holds a file's conversion lease (the status store names
the holder's pid). Both kills take the whole process group, as a container kill would.

Then every file must be DONE, the warehouse must hold each file's rows exactly once
(the row counts the writer produced, per type, equal to the status record's counts,
and no row twice), and nothing may be left IN_PROGRESS.

Calls in flight on the killed replica are cut: nginx resets their streams (the client
sees INTERNAL "RST_STREAM", tests/e2e/test_nginx.py), the CLI retries them through
nginx on the live replica (``cli.client.is_transient``), and a retried upload takes
over the dead stream's receiving lease (resumable uploads). So one backfill run ends
with every file DONE; before the CLI retried reset streams, the files cut here failed
and an operator had to re-run the backfill (once their leases had lapsed).

Leases and sweeps are short so this takes well under a minute (plus the emulators):
gateway --receiving-lease 5, converter --lease-seconds 4, loader --sweep-every 2
--stale-after 20, Pub/Sub ack deadline 10 s (its minimum).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from rvcloud.backends.factory import open_blob_store, open_status_store, open_warehouse
from rvcloud.cli.client import GatewayClient
from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter, StatusStore
from rvcloud.mrt.synth import write_synthetic_rib, write_synthetic_updates
from tests.e2e.nginx import Nginx, die_with_parent, install_problem, nginx_binary
from tests.e2e.service import cli_env, free_port
from tests.emulators import PROJECT, CloudEmulators
from tests.uploader.service import uploader_env

N_FILES = 50
WORKERS = 8
COLLECTORS = (
    "route-views.amsix",
    "route-views.jinx",
    "route-views.sydney",
    "route-views.wide",
    "route-views6",
)
RECEIVING_LEASE = 5.0
SWEEP_EVERY = 2.0


# ---- the files -------------------------------------------------------------------------


def make_archive(root: Path) -> dict[str, dict[str, int]]:
    """50 small MRT files in the RouteViews layout; archive path -> rows by type the writer made."""
    expected: dict[str, dict[str, int]] = {}
    for i in range(N_FILES):
        collector, day = COLLECTORS[i % len(COLLECTORS)], 1 + i // len(COLLECTORS)
        rib = i % 2 == 0
        if rib:
            name = f"{collector}/bgpdata/2024.03/RIBS/rib.202403{day:02d}.0000.bz2"
        else:
            name = f"{collector}/bgpdata/2024.03/UPDATES/updates.202403{day:02d}.0015.bz2"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if rib:
            s = write_synthetic_rib(path, n_v4=100 + i, n_v6=10, peers=3, seed=1000 + i)
            rows = {"RIB": s.routes}
        else:
            s = write_synthetic_updates(path, target_compressed_bytes=3000, peers=3, seed=1000 + i)
            rows = {"ANNOUNCE": s.routes, "WITHDRAW": s.withdrawals, "STATE": s.state_changes}
        expected[name] = {k: v for k, v in rows.items() if v}
    return expected


# ---- the service processes ---------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=15)
        self.signal(signal.SIGKILL)  # whatever is left of the group
        self.popen.wait()

    def tail(self, n: int = 25) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            lines = []
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n" + "\n".join(lines)


class Cluster:
    def __init__(self, work: Path, urls: dict[str, str]) -> None:
        self.work, self.urls = work, urls
        self.flags = [f"--{k.replace('_', '-')}={v}" for k, v in urls.items()]
        self.procs: list[Proc] = []
        self.nginx: Nginx | None = None
        (work / "logs").mkdir(parents=True)

    def spawn(self, name: str, module: str, *args: str) -> Proc:
        log = self.work / "logs" / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", module, *args, *self.flags],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(cli_env(), PYTHONUNBUFFERED="1"),
                start_new_session=True,  # its own group: a kill takes its helpers too
                preexec_fn=die_with_parent,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def diagnostics(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for p in self.procs:
            p.stop()


@dataclass
class Gateway:
    proc: Proc
    addr: str
    metrics_port: int

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of the samples of ``name`` (whose labels contain ``labels``); -1 if unreachable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return -1.0
        total = 0.0
        for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
            if labels in (m.group(1) or ""):
                total += float(m.group(2))
        return total


def wait_serving(addr: str, cluster: Cluster, timeout: float = 60) -> None:
    """Until ``addr`` answers a CheckFiles call (its backends are reachable)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(addr) as ch:
        client = GatewayClient(ch)
        while True:
            try:
                client.check_files("routeviews", [], timeout=5)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{addr} not serving\n{cluster.diagnostics()}") from None
                time.sleep(0.2)


def all_records(status: StatusStore, flt: ListFilter) -> list[FileRecord]:
    out: list[FileRecord] = []
    token = ""
    while True:
        page = status.list(flt, page_size=500, page_token=token)
        out += page.records
        token = page.next_page_token
        if not token:
            return out


def kill_while_receiving(gateways: list[Gateway], status: StatusStore) -> Gateway | None:
    """SIGKILL a replica that is in the middle of receiving an upload, if one is now.

    Its in-flight gauge alone is not proof (the upload may finish between the read and
    the kill), so the replica is frozen (SIGSTOP) first, and killed only if the status
    store holds a file in stage "receiving" while the other replicas receive nothing:
    that upload is then the frozen replica's, and the kill cuts it. Otherwise it is
    thawed (SIGCONT) and the caller tries again.
    """
    for g in gateways:
        if g.metric("rvcloud_gateway_uploads_in_flight") < 1:
            continue
        g.proc.signal(signal.SIGSTOP)
        receiving = [
            r for r in all_records(status, ListFilter(status="IN_PROGRESS")) if r.stage == "receiving"
        ]
        others_idle = all(o.metric("rvcloud_gateway_uploads_in_flight") == 0 for o in gateways if o is not g)
        if receiving and others_idle:
            g.proc.signal(signal.SIGKILL)
            return g
        g.proc.signal(signal.SIGCONT)
    return None


@pytest.fixture
def nginx_bin() -> str:
    found = nginx_binary()
    if found is None:
        pytest.skip(install_problem())
    return found


@pytest.fixture
def cluster(cloud_emulators: CloudEmulators, tmp_path: Path) -> Iterator[Cluster]:
    u = uuid.uuid4().hex[:10]
    urls = {
        "blob": f"gs://rvcloud-cluster-{u}",
        # 10 s is Pub/Sub's shortest ack deadline: a killed converter's message comes back soonest.
        "bus": f"pubsub://{PROJECT}?ack_deadline=10",
        "status": f"datastore://{PROJECT}?namespace=cluster{u}",
        "warehouse": f"bigquery://{PROJECT}/cluster_{u}",
        "topic_stored": f"cluster-{u}-stored",
        "topic_converted": f"cluster-{u}-converted",
    }
    c = Cluster(tmp_path, urls)
    setup = subprocess.run(
        [sys.executable, "-m", "rvcloud.backends.setup", *c.flags],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert setup.returncode == 0, setup.stderr
    try:
        yield c
    finally:
        c.stop()


# ---- the test --------------------------------------------------------------------------


def run_backfill(root: Path, addr: str, home: Path, state: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "rvcloud.cli", "backfill", str(root), "-d", addr, "--workers", str(WORKERS)]
    argv += ["--state", str(state), "--json", "--timeout", "150"]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=uploader_env(home)
    )


def test_two_gateways_behind_nginx_survive_sigkill_of_a_gateway_and_a_converter(
    cluster: Cluster, nginx_bin: str, tmp_path: Path
) -> None:
    t_start = time.monotonic()
    files = ThreadPoolExecutor(1).submit(make_archive, tmp_path / "archive")  # while the service starts

    gateways: list[Gateway] = []
    for i in range(2):
        addr, mport = f"127.0.0.1:{free_port()}", free_port()
        args = ["--listen", addr, "--metrics-port", str(mport), "--metrics-addr", "127.0.0.1"]
        args += ["--receiving-lease", str(RECEIVING_LEASE), "--shutdown-grace", "2"]
        gateways.append(Gateway(cluster.spawn(f"gateway-{i}", "rvcloud.ingest_gateway", *args), addr, mport))
    converters = [
        cluster.spawn(f"converter-{i}", "rvcloud.converter_worker", "--lease-seconds", "4") for i in range(2)
    ]
    loader_args = ["--sweep-every", str(SWEEP_EVERY), "--stale-after", "20", "--batch-seconds", "1"]
    cluster.spawn("loader", "rvcloud.loader_worker", *loader_args)
    ngx = cluster.nginx = Nginx(nginx_bin, tmp_path / "nginx", free_port())
    ngx.start([g.addr for g in gateways])
    for g in gateways:
        wait_serving(g.addr, cluster)
    wait_serving(ngx.addr, cluster)
    expected = files.result()
    status = open_status_store(cluster.urls["status"])
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    t_ready = time.monotonic()

    # ---- run 1, with the kills --------------------------------------------------------
    run = run_backfill(tmp_path / "archive", ngx.addr, home, state)
    killed_gateway: Gateway | None = None
    killed_converter: Proc | None = None
    converting_when_killed = ""
    stored_when_killed = 0.0
    next_status_poll = 0.0
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline and not (killed_gateway and killed_converter):
        if killed_gateway is None:
            stored = sum(g.metric("rvcloud_gateway_uploads_total", 'outcome="stored"') for g in gateways)
            if stored >= 10:
                killed_gateway = kill_while_receiving(gateways, status)
                stored_when_killed = stored
        if killed_converter is None and time.monotonic() >= next_status_poll:
            next_status_poll = time.monotonic() + 0.2
            for rec in all_records(status, ListFilter(status="IN_PROGRESS")):
                holder = next(
                    (
                        c
                        for c in converters
                        if f"-{c.popen.pid}-" in rec.lease_owner and rec.stage == "converting"
                    ),
                    None,
                )
                if holder is not None:
                    holder.signal(signal.SIGKILL)
                    killed_converter, converting_when_killed = holder, rec.filename
                    break
        time.sleep(0.03)
    assert killed_gateway is not None, f"no moment with a gateway receiving\n{cluster.diagnostics()}"
    assert killed_converter is not None, f"no moment with a converter converting\n{cluster.diagnostics()}"
    assert stored_when_killed < N_FILES
    out, err = run.communicate(timeout=240)
    first = json.loads(out)
    assert killed_gateway.proc.popen.wait(timeout=10) == -signal.SIGKILL
    assert killed_converter.popen.wait(timeout=10) == -signal.SIGKILL
    t_run1 = time.monotonic()

    # The kill cut calls in flight on that replica: nginx logged them without a grpc-status.
    cut = [c for c in ngx.calls() if killed_gateway.addr in c["upstream"] and c["grpc_status"] == ""]
    assert any(c["call"].endswith("/Upload") for c in cut), ngx.calls()
    served = {c["upstream"] for c in ngx.calls() if c["grpc_status"] == "0"}
    assert {g.addr for g in gateways} <= served  # both replicas took work

    # ---- one run was enough: the CLI retried what the kill cut -----------------------------
    assert run.returncode == 0, (first["counts"], err[-3000:], cluster.diagnostics())
    assert first["counts"]["uploaded"] == N_FILES, first["counts"]
    t_done = time.monotonic()

    # ---- every file DONE, as the service reports it through nginx ------------------------
    sha = {f["filename"]: f["sha256"] for f in first["files"]}
    assert set(sha) == set(expected)
    with grpc.insecure_channel(ngx.addr) as ch:
        client = GatewayClient(ch)
        checks = client.check_files("routeviews", sorted(sha.items()))
        assert [c.filename for c in checks if not c.done] == []
        replies = {name: client.get_file("routeviews", name) for name in expected}
    for name, reply in replies.items():
        assert dict(reply.rows_by_type) == expected[name], name

    # ---- nothing left IN_PROGRESS (nor FAILED) in the status store ---------------------
    stored_records = all_records(status, ListFilter(project="routeviews"))
    assert sorted(r.filename for r in stored_records) == sorted(expected)
    assert {r.status for r in stored_records} == {"DONE"}
    assert all_records(status, ListFilter(status="IN_PROGRESS")) == []
    status.close()

    # ---- the warehouse: each file's rows exactly once ---------------------------------
    wh = open_warehouse(cluster.urls["warehouse"], open_blob_store(cluster.urls["blob"]))
    try:
        got: dict[str, dict[str, int]] = {}
        distinct: dict[str, dict[str, int]] = {}
        for table in ("ribs", "updates"):
            rows = wh.query(
                "SELECT source_file, elem_type, count(*), count(DISTINCT concat(cast(record_index AS STRING),"
                " '|', coalesce(prefix, ''), '|', coalesce(peer_ip, ''))) "
                f"FROM {table} GROUP BY source_file, elem_type"
            )
            for name, elem, n, nd in rows:
                got.setdefault(name, {})[elem] = int(n)
                distinct.setdefault(name, {})[elem] = int(nd)
    finally:
        wh.close()
    assert got == expected
    assert distinct == expected  # no row twice
    total_rows = sum(sum(v.values()) for v in expected.values())

    retried = err.count("retry 1 in")
    print(
        f"\ncluster: ready in {t_ready - t_start:.1f} s; backfill {t_run1 - t_ready:.1f} s "
        f"({first['counts']}); gateway killed after {stored_when_killed:.0f} stored, converter killed "
        f"converting {converting_when_killed}; {len(cut)} calls cut, {retried} calls retried; "
        f"{len(expected)} files DONE, {total_rows} rows; total {t_done - t_start:.1f} s"
    )
