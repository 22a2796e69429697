"""``rvcloud backfill``: send every archive file of a local tree that the service lacks.

The run, for files in batches of 1000 (the CheckFiles limit):

1. walk the tree (``scan``: one stat per file, nothing read);
2. hash the files in N threads, or take the SHA-256 from the local cache when size and
   mtime_ns are unchanged (``state``), so a re-run reads nothing;
3. ask the service with one CheckFiles call per batch which files it already holds
   DONE with the same content (no content sent);
4. upload the rest, N at a time, each followed until DONE or FAILED.

Re-running is safe and cheap: files already present are counted as such and nothing is
sent. Transient errors are retried (``retry``); once a file exhausts its retries on a
transient error the gateway is taken to be down and the remaining files are reported
as not attempted instead of each waiting out its own budget. ``Backfill`` is also the
engine of ``watch``, which feeds it the files that appear.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import grpc

from rvcloud.cli.client import (
    CHUNK_SIZE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    MAX_CHECK_FILES,
    GatewayClient,
    UsageError,
    is_transient,
    open_channel,
    rpc_text,
)
from rvcloud.cli.config import Settings, resolve
from rvcloud.cli.files import since, until
from rvcloud.cli.progress import BatchProgress, make_batch_progress
from rvcloud.cli.records import human_size, total_rows
from rvcloud.cli.retry import Retrier
from rvcloud.cli.scan import Filters, LocalFile, ScanStats, parse_types, scan
from rvcloud.cli.state import StateStore
from rvcloud.cli.upload import _positive_int, _positive_seconds, add_gateway_arguments, add_retry_arguments
from rvcloud.cli.upload import upload_hashed as _upload_hashed
from rvcloud.v1 import gateway_pb2

# Outcomes of one file in a run.
UPLOADED: Final = "uploaded"  # sent, and the service reached DONE
PRESENT: Final = "present"  # the service already had it DONE with the same content; nothing sent
WOULD_UPLOAD: Final = "would_upload"  # --dry-run: the service lacks it
FAILED: Final = "failed"

# Uploads queued ahead of the workers; bounds memory on a tree of millions of files
# while keeping the workers busy across CheckFiles batches.
_MAX_QUEUED: Final = 2 * MAX_CHECK_FILES

EXAMPLES: Final = """\
examples:
  rvcloud backfill /archive -d ingest.example.org:50051
  rvcloud backfill /archive --collector route-views.jinx --collector route-views2 \\
      --since 2024-01-01 --until 2024-03-31 --types ribs --workers 8
  rvcloud backfill /ris --project ris -d https://ingest.example.org --dry-run --json > plan.json

ROOT may hold RouteViews collectors (COLLECTOR/bgpdata/YYYY.MM/{RIBS,UPDATES}/...), the
old route-views2 layout (bgpdata/YYYY.MM/... without a collector directory) or RIS
(rrcNN/YYYY.MM/...). Re-running is safe: files the service already has DONE with the
same SHA-256 are not sent again, and hashes are cached in --state (default
~/.cache/rvcloud) so a re-run reads no file that did not change.

exit codes: 0 every file present or uploaded; 1 some file failed; 2 usage error;
3 the gateway was unreachable (some files not attempted).
"""


@dataclass(slots=True)
class FileResult:
    """How one file of a run ended."""

    file: LocalFile
    outcome: str
    sha256: str = ""
    error: str = ""
    transient: bool = False  # failed on a transient error (the gateway was down)
    status: str = ""
    stage: str = ""
    rows: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.file.path,
            "filename": self.file.filename,
            "size": self.file.size,
            "sha256": self.sha256,
            "outcome": self.outcome,
            "error": self.error,
            "status": self.status,
            "stage": self.stage,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


def sha256_of(path: str) -> tuple[str, int, int]:
    """(SHA-256, size, mtime_ns) of a file, read once; the stat is taken after reading so a
    file that changed meanwhile is not cached under its old identity."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    with open(path, "rb") as f:
        before = os.fstat(f.fileno())
        while n := f.readinto(view):
            h.update(view[:n])
        after = os.fstat(f.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise OSError(f"{path} changed while it was hashed")
    return h.hexdigest(), after.st_size, after.st_mtime_ns


def _chunks(items: Sequence[LocalFile], n: int) -> Iterator[Sequence[LocalFile]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Backfill:
    """Checks and uploads sets of local files against one gateway and project."""

    def __init__(
        self,
        client: GatewayClient,
        store: StateStore,
        *,
        gateway: str,
        project: str,
        workers: int,
        retrier: Retrier,
        timeout: float,
        progress: BatchProgress,
        dry_run: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        self.client, self.store = client, store
        self.gateway, self.project = gateway, project
        self.workers, self.retrier, self.timeout = workers, retrier, timeout
        self.progress, self.dry_run = progress, dry_run
        # Set when an upload ran out of retries on a transient error: the gateway is
        # down, so the files still queued fail at once ("not attempted").
        self.gateway_down = threading.Event()
        # Set from outside (watch's SIGTERM): files not yet started are left undone.
        self.cancel = cancel or threading.Event()
        self.uploads_started = 0
        self._count_lock = threading.Lock()

    # ---- steps ---------------------------------------------------------------------

    def _hash(self, f: LocalFile) -> str | OSError:
        cached = self.store.cached_sha256(f.path, f.size, f.mtime_ns)
        if cached is not None:
            return cached
        try:
            sha256, size, mtime_ns = sha256_of(f.path)
        except OSError as e:
            return e
        self.store.remember_sha256(f.path, size, mtime_ns, sha256)
        return sha256

    def _check(self, refs: list[tuple[LocalFile, str]]) -> list[gateway_pb2.FileCheck]:
        names = [(f.filename, sha) for f, sha in refs]

        def on_retry(n: int, e: grpc.RpcError, pause: float) -> None:
            self.progress.warn(f"CheckFiles: {rpc_text(e)}; retry {n} in {pause:.1f} s")

        return self.retrier.call(lambda: self.client.check_files(self.project, names), on_retry=on_retry)

    def _upload(self, f: LocalFile, sha256: str) -> FileResult:
        progress = self.progress.file_progress(f.filename, f.size)
        result = FileResult(f, FAILED, sha256=sha256)
        started = time.monotonic()
        try:
            if self.gateway_down.is_set() or self.cancel.is_set():
                why = "stopping" if self.cancel.is_set() else "the gateway is unavailable"
                result.error, result.transient = f"not attempted: {why}", True
                return result
            with self._count_lock:
                self.uploads_started += 1
            outcome = _upload_hashed(
                self.client,
                f.path,
                self.project,
                f.filename,
                sha256,
                f.size,
                wait=True,
                progress=progress,
                timeout=self.timeout,
                retrier=self.retrier,
            )
            rec = outcome.record
            result.sha256 = rec.sha256 or sha256
            result.status = gateway_pb2.Status.Name(rec.status).removeprefix("STATUS_")
            result.stage, result.rows = rec.stage, total_rows(rec)
            if rec.status == gateway_pb2.STATUS_DONE:
                result.outcome = PRESENT if outcome.already_done else UPLOADED
                self.store.mark_done(self.gateway, self.project, f.filename, result.sha256)
            elif rec.status == gateway_pb2.STATUS_FAILED:
                reasons = [rec.error or "the service gave no reason", *rec.first_errors[:3]]
                result.error = f"FAILED at stage {rec.stage or '?'}: " + "; ".join(reasons)
            else:
                result.error = f"timed out after {self.timeout:g} s; still {rec.stage or 'in progress'}"
        except grpc.RpcError as e:
            result.error, result.transient = rpc_text(e), is_transient(e)
            if result.transient:
                self.gateway_down.set()
        except OSError as e:
            result.error = f"cannot read: {e.strerror or e}"
        finally:
            result.seconds = time.monotonic() - started
            progress.complete(result.outcome)
        if result.outcome == FAILED:
            self.progress.warn(f"failed: {f.filename}: {result.error}")
        return result

    # ---- the run -------------------------------------------------------------------

    def run(self, files: Sequence[LocalFile]) -> list[FileResult]:
        """Check and upload ``files``; one result per file, in the order given."""
        results: list[FileResult | None] = [None] * len(files)
        index = {id(f): i for i, f in enumerate(files)}
        queued = threading.BoundedSemaphore(_MAX_QUEUED)
        pending: list[tuple[int, Future[FileResult]]] = []

        def finish(i: int, r: FileResult) -> None:
            """A file settled without an upload (present, unreadable, dry run...)."""
            results[i] = r
            self.progress.file_progress(r.file.filename, r.file.size).complete(r.outcome)
            if r.outcome == FAILED:
                self.progress.warn(f"failed: {r.file.filename}: {r.error}")

        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="rvcloud-hash") as hashers,
            ThreadPoolExecutor(self.workers, thread_name_prefix="rvcloud-upload") as uploaders,
        ):
            for batch in _chunks(files, MAX_CHECK_FILES):
                hashed = list(hashers.map(self._hash, batch))
                refs: list[tuple[LocalFile, str]] = []
                for f, h in zip(batch, hashed, strict=True):
                    if isinstance(h, OSError):
                        finish(index[id(f)], FileResult(f, FAILED, error=f"cannot read: {h.strerror or h}"))
                    else:
                        refs.append((f, h))
                if not refs:
                    continue
                if self.gateway_down.is_set() or self.cancel.is_set():
                    checks: list[gateway_pb2.FileCheck] | None = None
                    why = "stopping" if self.cancel.is_set() else "the gateway is unavailable"
                    error = f"not attempted: {why}"
                else:
                    try:
                        checks = self._check(refs)
                        error = ""
                    except grpc.RpcError as e:
                        checks, error = None, rpc_text(e)
                        if is_transient(e):
                            self.gateway_down.set()
                if checks is None:
                    for f, sha in refs:
                        finish(index[id(f)], FileResult(f, FAILED, sha256=sha, error=error, transient=True))
                    continue
                for (f, sha), check in zip(refs, checks, strict=True):
                    i = index[id(f)]
                    if check.done:
                        self.store.mark_done(self.gateway, self.project, f.filename, sha)
                        finish(i, FileResult(f, PRESENT, sha256=sha, status="DONE", stage=check.stage))
                    elif self.dry_run:
                        status = gateway_pb2.Status.Name(check.status).removeprefix("STATUS_")
                        finish(i, FileResult(f, WOULD_UPLOAD, sha256=sha, status=status, stage=check.stage))
                    else:
                        queued.acquire()
                        fut = uploaders.submit(self._upload, f, sha)
                        fut.add_done_callback(lambda _: queued.release())
                        pending.append((i, fut))
            for i, fut in pending:
                results[i] = fut.result()
        return [r for r in results if r is not None]


# ---- the command ---------------------------------------------------------------------


def add_backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="ROOT", help="top of the local archive tree")
    add_gateway_arguments(parser)
    parser.add_argument(
        "--collector",
        action="append",
        default=[],
        metavar="C",
        help="only this collector (repeatable), e.g. route-views.jinx, route-views2, rrc00",
    )
    parser.add_argument(
        "--since", type=since, metavar="DATE", help="only files whose name time is at or after this"
    )
    parser.add_argument(
        "--until",
        type=until,
        metavar="DATE",
        help="only files whose name time is before this (a date: inclusive)",
    )
    parser.add_argument(
        "--types", type=_types, metavar="ribs,updates", help="only these kinds of file (default both)"
    )
    parser.add_argument(
        "--workers", type=_positive_int, metavar="N", help="files hashed and uploaded at once (default 4)"
    )
    parser.add_argument(
        "--state",
        dest="state_dir",
        metavar="DIR",
        help="hash cache / journal directory (default ~/.cache/rvcloud)",
    )
    parser.add_argument(
        "--min-age",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="skip files modified less than this long ago (still being written); default 0",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="give up on one file when sending it or waiting for DONE/FAILED takes longer (default 3600)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="hash and ask the service, send nothing: list what would be uploaded",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON report with every file and its outcome"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display or warnings on stderr"
    )
    add_retry_arguments(parser)


def _types(text: str) -> frozenset[str]:
    try:
        return parse_types(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def summarize(results: Sequence[FileResult]) -> dict[str, int]:
    counts = {UPLOADED: 0, PRESENT: 0, FAILED: 0, WOULD_UPLOAD: 0}
    for r in results:
        counts[r.outcome] += 1
    return counts


def exit_code(results: Sequence[FileResult]) -> int:
    failed = [r for r in results if r.outcome == FAILED]
    if not failed:
        return EXIT_OK
    return EXIT_UNAVAILABLE if all(r.transient for r in failed) else EXIT_FAILED


def print_summary(results: Sequence[FileResult], seconds: float, *, dry_run: bool, stream: Any) -> None:
    counts = summarize(results)
    sent = sum(r.file.size for r in results if r.outcome == UPLOADED)
    parts = [f"{counts[UPLOADED]} uploaded ({human_size(sent)})", f"{counts[PRESENT]} already present"]
    if dry_run:
        parts.append(f"{counts[WOULD_UPLOAD]} would be uploaded")
    parts.append(f"{counts[FAILED]} failed")
    print(f"{len(results)} files: " + ", ".join(parts) + f" in {seconds:.1f} s", file=stream)
    if dry_run:
        for r in results:
            if r.outcome == WOULD_UPLOAD:
                print(f"  would upload {r.file.filename}", file=stream)
    failed = [r for r in results if r.outcome == FAILED]
    for r in failed[:20]:
        print(f"  FAILED {r.file.filename}: {r.error}", file=stream)
    if len(failed) > 20:
        print(f"  ... and {len(failed) - 20} more (see --json)", file=stream)


def open_client(settings: Settings) -> tuple[grpc.Channel, GatewayClient, str]:
    endpoint = settings.endpoint()
    channel = open_channel(endpoint, ca_file=settings.ca)
    return channel, GatewayClient(channel, token=settings.token), str(endpoint)


def run_backfill(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        settings = resolve(args)
        if not os.path.isdir(args.root):
            raise UsageError(f"{args.root}: not a directory")
        channel, client, gateway = open_client(settings)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    filters = Filters(
        collectors=frozenset(args.collector), types=args.types or (), since=args.since, until=args.until
    )
    stats = ScanStats()
    files = scan(args.root, settings.project, filters, stats)
    if args.min_age > 0:
        cutoff = time.time_ns() - int(args.min_age * 1e9)
        files = [f for f in files if f.mtime_ns <= cutoff]
    store = StateStore(settings.state_dir)
    progress = make_batch_progress(args.quiet)
    engine = Backfill(
        client,
        store,
        gateway=gateway,
        project=settings.project,
        workers=settings.workers,
        retrier=Retrier(settings.retry_policy),
        timeout=settings.timeout,
        progress=progress,
        dry_run=args.dry_run,
    )
    progress.begin(len(files), sum(f.size for f in files))
    try:
        with channel:
            results = engine.run(files)
    except KeyboardInterrupt:
        progress.close()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.close()
        store.close()
    seconds = time.monotonic() - started
    out = sys.stderr if args.json else sys.stdout
    if not args.quiet or not args.json:
        print_summary(results, seconds, dry_run=args.dry_run, stream=out)
    for path, reason in stats.unreadable:
        print(f"warning: cannot read {path}: {reason}", file=sys.stderr)
    if not results:
        print(
            f"warning: no archive files under {args.root}: expected COLLECTOR/bgpdata/YYYY.MM/"
            "{RIBS,UPDATES}/..., bgpdata/YYYY.MM/... or rrcNN/YYYY.MM/... below it",
            file=sys.stderr,
        )
    if args.json:
        report = {
            "root": os.path.abspath(args.root),
            "gateway": gateway,
            "project": settings.project,
            "dry_run": args.dry_run,
            "seconds": round(seconds, 3),
            "counts": summarize(results),
            "uploads_started": engine.uploads_started,
            "ignored": stats.ignored,
            "files": [r.to_dict() for r in results],
        }
        print(json.dumps(report, indent=1))
    return exit_code(results)
