"""Helpers shared by the conformance suites (a plain module: conftest is not importable)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rvcloud.backends.blob.base import BlobStore


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll ``pred`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class BlobBackend:
    store: BlobStore
    # Names of temporary/in-progress objects the backend still holds (must end empty).
    temp_files: Callable[[], list[str]]
    # A second handle on the same storage, as another gateway replica opens it.
    reopen: Callable[[], BlobStore] | None = None
