"""``rvcloud watch``: a daemon that sends each new archive file once the collector has finished it.

How it works:

- On start, a backfill pass over the whole tree (the same engine and hash cache as
  ``rvcloud backfill``) sends whatever appeared while it was not running; files
  changed less than ``--settle`` seconds ago are left to the watcher below.
- New files are noticed through watchdog: inotify on Linux, or polling every
  ``--poll-interval`` seconds where inotify is unavailable (NFS, or ``--polling``).
- A file is complete when its size and mtime stayed the same for ``--settle``
  seconds, or at once when it was renamed into place (the usual write-to-a-temporary-
  name-then-rename pattern: hidden temporaries are ignored, the rename is the signal).
- Every file seen is written to the journal (``state.StateStore``) before it is sent
  and removed once the service has it DONE. A file that could not be sent because the
  gateway was down stays in the journal and is tried again every ``--poll-interval``
  (at least every minute), so after a long outage the backlog drains by itself; a
  permanent failure (the service refused the file) is logged once and dropped.

Log lines go to stderr (the journal, under systemd). SIGTERM or SIGINT stops it
cleanly: an upload in flight is finished first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Final

from rvcloud.cli.backfill import FAILED, PRESENT, UPLOADED, Backfill, FileResult, open_client, summarize
from rvcloud.cli.client import EXIT_OK, EXIT_USAGE, UsageError
from rvcloud.cli.config import Settings, resolve
from rvcloud.cli.progress import BatchProgress
from rvcloud.cli.retry import Retrier
from rvcloud.cli.scan import Filters, LocalFile, ScanStats, describe, parse_types, scan
from rvcloud.cli.state import StateStore
from rvcloud.cli.upload import _positive_int, _positive_seconds, add_gateway_arguments, add_retry_arguments

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger("rvcloud.watch")

# How often the settle tracker looks at its candidates, at most.
_TICK_MAX: Final = 1.0
# Journal entries owed after a transient failure are retried at least this often.
_RETRY_EVERY_MAX: Final = 60.0

EXAMPLES: Final = """\
examples:
  rvcloud watch /archive -d ingest.example.org:50051
  rvcloud watch /archive --settle 120 --workers 2 --state /var/lib/rvcloud
  rvcloud watch /nfs/archive --polling --poll-interval 30

Runs until SIGTERM/SIGINT. An example systemd unit is in deploy/systemd/.
"""


class _LogProgress(BatchProgress):
    """Warnings of the engine (retries, failures) as log lines."""

    def warn(self, text: str) -> None:
        log.warning("%s", text)


@dataclass(slots=True)
class _Candidate:
    size: int
    mtime_ns: int
    changed_at: float  # monotonic time of the last observed change
    renamed: bool = False  # renamed into place: complete without settling


class SettleTracker:
    """Files that may still be growing, and which of them have become complete."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._lock = threading.Lock()
        self._files: dict[str, _Candidate] = {}

    def touch(self, path: str, *, renamed: bool = False) -> None:
        """Something happened to ``path`` (created, written, closed, renamed into place)."""
        try:
            st = os.stat(path)
        except OSError:
            with self._lock:
                self._files.pop(path, None)
            return
        now = time.monotonic()
        with self._lock:
            c = self._files.get(path)
            if c is None or (c.size, c.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._files[path] = _Candidate(
                    st.st_size, st.st_mtime_ns, now, renamed or bool(c and c.renamed)
                )
            elif renamed:
                c.renamed = True

    def pending(self) -> int:
        with self._lock:
            return len(self._files)

    def ready(self) -> list[str]:
        """Paths that are complete now; they leave the tracker."""
        now = time.monotonic()
        out: list[str] = []
        with self._lock:
            for path, c in list(self._files.items()):
                try:
                    st = os.stat(path)
                except OSError:
                    del self._files[path]  # deleted or renamed away before it settled
                    continue
                if (st.st_size, st.st_mtime_ns) != (c.size, c.mtime_ns):
                    c.size, c.mtime_ns, c.changed_at, c.renamed = st.st_size, st.st_mtime_ns, now, False
                    continue
                if c.renamed or now - c.changed_at >= self.settle:
                    out.append(path)
                    del self._files[path]
        return sorted(out)


def _start_observer(
    root: str, tracker: SettleTracker, *, polling: bool, poll_interval: float
) -> BaseObserver:
    """Start a watchdog observer feeding ``tracker``; inotify unless ``polling`` or unavailable."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.polling import PollingObserver

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.is_directory:
                return
            if event.event_type == "moved":
                tracker.touch(os.fsdecode(event.dest_path), renamed=True)
            elif event.event_type in ("created", "modified", "closed"):
                tracker.touch(os.fsdecode(event.src_path))

    handler = Handler()
    observer: BaseObserver
    if not polling:
        try:
            from watchdog.observers.inotify import InotifyObserver

            observer = InotifyObserver()
            observer.schedule(handler, root, recursive=True)
            observer.start()
            log.info("watching %s with inotify", root)
            return observer
        except (ImportError, OSError) as e:
            log.warning("inotify unavailable (%s); polling every %g s", e, poll_interval)
    observer = PollingObserver(timeout=poll_interval)
    observer.schedule(handler, root, recursive=True)
    observer.start()
    log.info("watching %s by polling every %g s", root, poll_interval)
    return observer


class Watcher:
    """The daemon's state: the engine, the settle tracker and the journal."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.root = os.path.abspath(args.root)
        self.settings = settings
        self.filters = Filters(collectors=frozenset(args.collector), types=args.types or ())
        self.polling: bool = args.polling
        self.settle = float(settings["settle"])
        self.poll_interval = float(settings["poll"])
        self.stop = threading.Event()
        self.tracker = SettleTracker(self.settle)
        self.store = StateStore(settings.state_dir)
        self.channel, self.client, self.gateway = open_client(settings)
        self.totals = {UPLOADED: 0, PRESENT: 0, FAILED: 0}

    def _engine(self) -> Backfill:
        # A new engine per round: its "gateway down" flag must not outlive the outage.
        return Backfill(
            self.client,
            self.store,
            gateway=self.gateway,
            project=self.settings.project,
            workers=self.settings.workers,
            retrier=Retrier(self.settings.retry_policy),
            timeout=self.settings.timeout,
            progress=_LogProgress(),
            cancel=self.stop,
        )

    def _local_files(self, paths: Iterable[str]) -> list[LocalFile]:
        out = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                self.store.journal_remove(path)  # gone: nothing is owed
                continue
            f = describe(path, self.settings.project, st)
            if f is not None and self.filters.accepts(f):
                out.append(f)
            else:
                self.store.journal_remove(path)
        return out

    def _already_delivered(self, f: LocalFile) -> bool:
        """This exact content (same size and mtime, cached hash) was confirmed DONE before."""
        sha256 = self.store.cached_sha256(f.path, f.size, f.mtime_ns)
        return sha256 is not None and self.store.is_done(
            self.gateway, self.settings.project, f.filename, sha256
        )

    def send(self, files: list[LocalFile]) -> list[FileResult]:
        """Journal, upload, and settle the journal from the outcomes.

        Events for files already delivered unchanged (a touch, a chmod, an rsync that
        rewrote nothing) cost no call to the service.
        """
        owed: list[LocalFile] = []
        for f in files:
            if self._already_delivered(f):
                self.store.journal_remove(f.path)
            else:
                owed.append(f)
        files = owed
        if not files:
            return []
        for f in files:
            self.store.journal_add(f.path)
        results = self._engine().run(files)
        for r in results:
            self.totals[r.outcome] = self.totals.get(r.outcome, 0) + 1
            if r.outcome in (UPLOADED, PRESENT):
                self.store.journal_remove(r.file.path)
                if r.outcome == UPLOADED:
                    log.info(
                        "uploaded %s (%d bytes, %d rows, %.1f s)",
                        r.file.filename,
                        r.file.size,
                        r.rows,
                        r.seconds,
                    )
            elif r.transient:
                self.store.journal_failed(r.file.path, r.error)  # owed: tried again later
            else:
                log.error("failed %s: %s", r.file.filename, r.error)
                self.store.journal_remove(r.file.path)  # reported once; a new version is a new event
        return results

    def catch_up(self) -> None:
        """The start-up pass: everything in the tree the service lacks (missed while stopped)."""
        stats = ScanStats()
        files = scan(self.root, self.settings.project, self.filters, stats)
        young_after = time.time_ns() - int(self.settle * 1e9)
        settled = [f for f in files if f.mtime_ns <= young_after]
        for f in files:
            if f.mtime_ns > young_after:
                self.tracker.touch(f.path)  # maybe still being written
        known = {f.path for f in files}
        for entry in self.store.journal():
            if entry.path not in known:
                self.store.journal_remove(entry.path)
        results = self.send(settled)
        counts = summarize(results)
        log.info(
            "start-up pass over %s: %d files, %d uploaded, %d already present, %d failed, %d still settling",
            self.root,
            len(files),
            counts[UPLOADED],
            counts[PRESENT],
            counts[FAILED],
            self.tracker.pending(),
        )

    def run(self) -> int:
        log.info(
            "rvcloud watch: %s → %s (project %s, settle %g s)",
            self.root,
            self.gateway,
            self.settings.project,
            self.settle,
        )
        # The observer starts before the catch-up pass so that nothing written during
        # the pass is missed (a file seen twice is simply found present the second time).
        observer = _start_observer(
            self.root, self.tracker, polling=self.polling, poll_interval=self.poll_interval
        )
        try:
            self.catch_up()
            retry_every = min(max(self.poll_interval, 5.0), _RETRY_EVERY_MAX)
            next_retry = time.monotonic() + retry_every
            tick = min(_TICK_MAX, max(self.settle / 4, 0.05))
            while not self.stop.wait(tick):
                ready = self.tracker.ready()
                if ready:
                    self.send(self._local_files(ready))
                if time.monotonic() >= next_retry:
                    next_retry = time.monotonic() + retry_every
                    owed = [e.path for e in self.store.journal()]
                    if owed:
                        log.info("retrying %d file(s) owed from the journal", len(owed))
                        self.send(self._local_files(owed))
        finally:
            observer.stop()
            observer.join(timeout=5)
            self.channel.close()
            self.store.close()
            log.info(
                "stopped: %d uploaded, %d already present, %d failed",
                self.totals[UPLOADED],
                self.totals[PRESENT],
                self.totals[FAILED],
            )
        return EXIT_OK


def _types(text: str) -> frozenset[str]:
    try:
        return parse_types(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="ROOT", help="top of the local archive tree")
    add_gateway_arguments(parser)
    parser.add_argument(
        "--collector", action="append", default=[], metavar="C", help="only this collector (repeatable)"
    )
    parser.add_argument("--types", type=_types, metavar="ribs,updates", help="only these kinds of file")
    parser.add_argument(
        "--workers", type=_positive_int, metavar="N", help="files uploaded at once (default 4)"
    )
    parser.add_argument(
        "--state", dest="state_dir", metavar="DIR", help="hash cache and journal (default ~/.cache/rvcloud)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        metavar="SECONDS",
        help="a file is complete when unchanged this long, or renamed into place (default 30)",
    )
    parser.add_argument(
        "--poll-interval",
        dest="poll",
        type=_positive_seconds,
        metavar="SECONDS",
        help="scan interval when polling, and how often owed files are retried (default 10)",
    )
    parser.add_argument("--polling", action="store_true", help="poll instead of inotify (e.g. on NFS)")
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="give up on one file after this long (default 3600)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors in the log")
    add_retry_arguments(parser)


def run_watch(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = resolve(args)
        if not os.path.isdir(args.root):
            raise UsageError(f"{args.root}: not a directory")
        watcher = Watcher(args, settings)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        watcher.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return watcher.run()
