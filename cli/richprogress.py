"""The terminal display of a backfill, drawn with rich (imported only when stderr is a terminal).

One overall task: a bar over the bytes of all files, ``files done/total``, bytes
done/total, rate and ETA. Each worker sending a large file gets its own transient line
under it. rich redraws from its own thread a few times a second and its task updates
are thread-safe, so the upload workers report straight into it.
"""

from __future__ import annotations

import threading
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from rvcloud.cli.progress import BatchProgress


class RichBatchProgress(BatchProgress):
    def __init__(self, stream: TextIO) -> None:
        self._console = Console(file=stream, stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            refresh_per_second=5,
        )
        self._lock = threading.Lock()
        self._files_done = 0
        self._files_total = 0
        self._overall: TaskID | None = None
        self._workers: dict[int, TaskID] = {}

    def _files_text(self) -> str:
        return f"{self._files_done}/{self._files_total} files"

    def begin(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._files_total = files
            self._progress.start()
            self._overall = self._progress.add_task(
                "overall", total=max(total_bytes, 1), files=self._files_text()
            )

    def grow(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._files_total += files
            if self._overall is not None:
                task = self._progress.tasks[self._overall]
                self._progress.update(
                    self._overall, total=(task.total or 0) + total_bytes, files=self._files_text()
                )

    def advance_bytes(self, delta: int) -> None:
        if self._overall is not None and delta:
            self._progress.advance(self._overall, delta)

    def file_done(self, outcome: str) -> None:
        with self._lock:
            self._files_done += 1
            if self._overall is not None:
                self._progress.update(self._overall, files=self._files_text())

    def warn(self, text: str) -> None:
        # Printed above the live display, which is redrawn below it.
        self._console.print(text, markup=False, highlight=False)

    def worker_started(self, key: int, name: str, size: int) -> None:
        with self._lock:
            self._workers[key] = self._progress.add_task(f"  {name.rsplit('/', 1)[-1]}", total=size, files="")

    def worker_advanced(self, key: int, done: int) -> None:
        task = self._workers.get(key)
        if task is not None:
            self._progress.update(task, completed=done)

    def worker_finished(self, key: int) -> None:
        with self._lock:
            task = self._workers.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)

    def close(self) -> None:
        self._progress.refresh()
        self._progress.stop()
