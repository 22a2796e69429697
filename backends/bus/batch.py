"""Batch consumption on top of any event bus: hand a stage many messages at once.

The loader turns many converted files into one warehouse load job (BigQuery limits
load jobs per table per day). Messages stay unacknowledged until their batch has been
handled, so a loader that dies mid-batch loses nothing: every message of the batch is
redelivered. The batch is formed from the bus's own delivery threads: each one parks
its message here and waits; the batch is handed over when it is full or when its
oldest message has waited ``max_wait_s``.

``max_wait_s=0`` batches without waiting: a message is handled at once when no batch
is being handled, and messages that arrive meanwhile form the next batch, handed over
as soon as the current one ends (the warehouse's own pace sets the batch size). That
suits a warehouse without a load quota: a lone file is not held back, and a burst of
files still becomes a few large loads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rvcloud.backends.bus.base import EventBus, Message, Subscription

# Returns the ids of the messages that failed (they are redelivered); the rest are acked.
BatchHandler = Callable[[list[Message]], set[str]]


class BatchFailed(Exception):
    """Raised to the bus for a message whose batch handling failed (so it is redelivered)."""


@dataclass
class _Batch:
    messages: list[Message] = field(default_factory=list)
    closed: bool = False
    failed: set[str] = field(default_factory=set)
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class _Collector:
    def __init__(self, handler: BatchHandler, max_messages: int, max_wait_s: float) -> None:
        self._handler = handler
        self._max = max_messages
        self._wait = max_wait_s
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # max_wait_s == 0: a batch ended
        self._busy = 0  # batches being handled
        self._open: _Batch | None = None

    def on_message(self, msg: Message) -> None:
        batch = self._collect_when_idle(msg) if self._wait <= 0 else self._collect_with_timer(msg)
        batch.done.wait()
        if msg.id in batch.failed:
            raise BatchFailed(f"message {msg.id}: {batch.error or 'failed in its batch'}")

    def _collect_when_idle(self, msg: Message) -> _Batch:
        with self._lock:
            batch = self._open
            if batch is None:
                batch = self._open = _Batch()
            batch.messages.append(msg)
            while not batch.closed:
                if self._busy == 0 or len(batch.messages) >= self._max:
                    # This thread hands the batch over; its other members wait on ``done``.
                    batch.closed = True
                    self._open = None
                    self._busy += 1
                    break
                self._idle.wait()
            else:
                return batch
        try:
            self._flush(batch)
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()
        return batch

    def _collect_with_timer(self, msg: Message) -> _Batch:
        flush_now = False
        with self._lock:
            batch = self._open
            if batch is None:
                batch = self._open = _Batch()
                timer = threading.Timer(self._wait, self._close_and_flush, args=(batch,))
                timer.daemon = True
                timer.start()
            batch.messages.append(msg)
            if len(batch.messages) >= self._max:
                batch.closed = True
                self._open = None
                flush_now = True
        if flush_now:
            self._flush(batch)
        return batch

    def _close_and_flush(self, batch: _Batch) -> None:
        with self._lock:
            if batch.closed:
                return
            batch.closed = True
            if self._open is batch:
                self._open = None
        self._flush(batch)

    def _flush(self, batch: _Batch) -> None:
        try:
            batch.failed = self._handler(list(batch.messages))
        except Exception as e:
            batch.failed = {m.id for m in batch.messages}
            batch.error = f"{type(e).__name__}: {e}"
        finally:
            batch.done.set()


def subscribe_batch(
    bus: EventBus,
    topic: str,
    handler: BatchHandler,
    *,
    max_messages: int = 100,
    max_wait_s: float = 5.0,
    max_attempts: int = 5,
) -> Subscription:
    """Deliver ``topic`` to ``handler`` in batches of up to ``max_messages``."""
    collector = _Collector(handler, max_messages, max_wait_s)
    # One delivery thread per message a batch may hold: they park while the batch fills.
    return bus.subscribe(topic, collector.on_message, concurrency=max_messages, max_attempts=max_attempts)
