"""Progress reporting on stderr: one file (``upload``) and many files (``backfill``, ``watch``).

``make_progress`` decides how one upload looks (a byte counter on a terminal, lines
otherwise); ``make_batch_progress`` how a backfill looks: on a terminal, rich's live
display with one overall bar (files and bytes done of the total, rate, ETA) and a line
per worker while it sends a large file; otherwise nothing but warnings (retries), so a
cron job's mail or a journal stays readable. rich is imported only on a terminal: a
non-interactive run does not pay for it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

# Redrawing the byte counter more often than this only costs CPU.
_REDRAW_SECONDS = 0.1


class Progress:
    """Silent progress (``--quiet``); the base of the visible variants."""

    def start(self, label: str, total: int) -> None:
        """A byte-counted phase (hashing, sending) of ``total`` bytes begins."""

    def advance(self, done: int) -> None:
        """``done`` bytes of the current phase are finished."""

    def finish(self) -> None:
        """The current byte-counted phase has ended."""

    def note(self, text: str) -> None:
        """A line for the user, e.g. a stage change."""

    def warn(self, text: str) -> None:
        """A line that matters even in a batch of files (a retry, a changed file)."""
        self.note(text)


class LineProgress(Progress):
    """Notes as lines on a stream; no byte counter (stderr is a log file or a pipe)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class TtyProgress(LineProgress):
    """Notes as lines plus a byte counter redrawn in place on one terminal line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._label = ""
        self._total = 0
        self._started = 0.0
        self._drawn_at = 0.0
        self._line_open = False

    def start(self, label: str, total: int) -> None:
        self._label, self._total = label, total
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self.advance(0)

    def advance(self, done: int) -> None:
        now = time.monotonic()
        if now - self._drawn_at < _REDRAW_SECONDS and done < self._total:
            return
        self._drawn_at = now
        mib = 1024 * 1024
        rate = done / mib / max(now - self._started, 1e-6)
        pct = 100.0 * done / self._total if self._total else 100.0
        line = (
            f"{self._label} {done / mib:,.1f} / {self._total / mib:,.1f} MiB ({pct:3.0f}%) {rate:,.1f} MiB/s"
        )
        # "\r" + clear-to-end-of-line redraws in place however long the old line was.
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()
        self._line_open = True

    def finish(self) -> None:
        if self._line_open:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._line_open = False

    def note(self, text: str) -> None:
        self.finish()
        super().note(text)


def make_progress(quiet: bool, stream: TextIO | None = None) -> Progress:
    """The progress display for ``stream`` (default stderr): a live counter only on a terminal."""
    out = stream if stream is not None else sys.stderr
    if quiet:
        return Progress()
    return TtyProgress(out) if out.isatty() else LineProgress(out)


# A file at least this large gets its own line under the overall bar while it is sent.
LARGE_FILE = 16 * 1024 * 1024


class BatchProgress:
    """Progress of many files; this base is silent (``--quiet``)."""

    def begin(self, files: int, total_bytes: int) -> None:
        """The run covers ``files`` files of ``total_bytes`` bytes in all."""

    def grow(self, files: int, total_bytes: int) -> None:
        """More files joined the run (``watch``)."""

    def file_progress(self, name: str, size: int) -> FileInBatch:
        """The Progress a worker reports one file's upload to."""
        return FileInBatch(self, name, size)

    def advance_bytes(self, delta: int) -> None:
        """``delta`` more bytes of the total are done."""

    def file_done(self, outcome: str) -> None:
        """One more file is finished (uploaded, present or failed)."""

    def warn(self, text: str) -> None:
        """A line worth showing during the run."""

    def worker_started(self, key: int, name: str, size: int) -> None:
        """A large file's own line appears."""

    def worker_advanced(self, key: int, done: int) -> None:
        """A large file's own line moves."""

    def worker_finished(self, key: int) -> None:
        """A large file's own line goes away."""

    def close(self) -> None:
        """The run is over: stop redrawing."""


class FileInBatch(Progress):
    """Adapts one file's progress to the batch display.

    A file's bytes count toward the overall bar when the file is finished (DONE,
    already present, or failed), not while they are sent: the service still has to
    convert and load them, and a bar at 100 % while files are still being processed
    would lie about the ETA. A large file shows its sending progress on its own line.
    Per-file chatter (stage lines, "uploaded ...") is dropped: with thousands of files
    it would drown the bar; warnings go through.
    """

    def __init__(self, batch: BatchProgress, name: str, size: int) -> None:
        self.batch, self.name, self.size = batch, name, size
        self._line = False
        self._key = id(self)

    def start(self, label: str, total: int) -> None:
        if label == "sending" and total >= LARGE_FILE and not self._line:
            self.batch.worker_started(self._key, self.name, total)
            self._line = True

    def advance(self, done: int) -> None:
        if self._line:
            self.batch.worker_advanced(self._key, done)

    def finish(self) -> None:
        if self._line:
            self.batch.worker_finished(self._key)
            self._line = False

    def warn(self, text: str) -> None:
        self.batch.warn(text)

    def complete(self, outcome: str) -> None:
        """The file is finished, whatever the outcome: its bytes count as done."""
        self.finish()
        self.batch.advance_bytes(self.size)
        self.batch.file_done(outcome)


class LineBatchProgress(BatchProgress):
    """Not a terminal: only warnings, as lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def warn(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def make_batch_progress(quiet: bool, stream: TextIO | None = None) -> BatchProgress:
    """The display of a many-file run on ``stream`` (default stderr): rich's bars only on a terminal."""
    out = stream if stream is not None else sys.stderr
    if quiet:
        return BatchProgress()
    if not out.isatty():
        return LineBatchProgress(out)
    from rvcloud.cli.richprogress import RichBatchProgress

    return RichBatchProgress(out)
