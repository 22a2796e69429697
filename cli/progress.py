"""Progress reporting for uploads on stderr.

``make_progress`` is the one place that decides how progress looks, so a richer
display (a progress bar) can replace the plain one without touching the upload code.
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
