"""In-process event bus (URL ``memory://`` or ``memory://<name>``) for tests and one-process demos.

One queue per topic; every subscription on a topic competes for its messages (like
several subscribers on one Pub/Sub subscription). Messages are JSON round-tripped on
publish so handlers get their own copy and a non-serialisable payload fails at once,
as it would on a real bus. A handler exception puts the message back after a back-off;
after ``max_attempts`` deliveries it goes to ``<topic>.dead``.

``MemoryBus.join(timeout)`` waits until every subscribed topic is idle (nothing queued,
nothing waiting for a retry, no handler running) -- the test helper for "the pipeline
has settled".
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rvcloud.backends.bus.base import EventBus, Handler, Message, Subscription

log = logging.getLogger(__name__)

DEAD_SUFFIX = ".dead"


@dataclass(slots=True)
class _Envelope:
    id: str
    body: str  # JSON text
    attempts: int = 0  # deliveries so far
    published_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class _Topic:
    ready: deque[_Envelope] = field(default_factory=deque)
    delayed: list[tuple[float, int, _Envelope]] = field(default_factory=list)  # heap by due time
    in_flight: int = 0
    subscribers: int = 0

    def idle(self) -> bool:
        return not self.ready and not self.delayed and self.in_flight == 0


class _MemorySubscription(Subscription):
    def __init__(
        self, bus: MemoryBus, topic: str, handler: Handler, concurrency: int, max_attempts: int
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._handler = handler
        self._max_attempts = max_attempts
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"memory-bus-{topic}-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        bus = self._bus
        while True:
            env = bus._take(self._topic, self)
            if env is None:
                return
            msg = Message(env.id, self._topic, json.loads(env.body), env.attempts, env.published_at)
            try:
                self._handler(msg)
            except Exception:
                log.warning(
                    "handler for %s failed on message %s (attempt %d)",
                    self._topic,
                    env.id,
                    env.attempts,
                    exc_info=True,
                )
                bus._nack(self._topic, env, self._max_attempts)
            else:
                bus._ack(self._topic)

    def stop(self, timeout: float | None = None) -> None:
        with self._bus._cond:
            if not self._stopping:
                self._stopping = True
                self._bus._topics[self._topic].subscribers -= 1
            self._bus._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            if t is threading.current_thread():
                continue  # stop() called from a handler: do not wait for ourselves
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._bus._forget(self)


class MemoryBus(EventBus):
    """Thread-safe in-process bus; ``backoff`` is the first retry delay in seconds (doubles)."""

    def __init__(self, backoff: float = 0.05, max_backoff: float = 2.0) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff
        # One condition for the whole bus: simple, and contention is not a concern in
        # an in-process test bus.
        self._cond = threading.Condition()
        self._topics: dict[str, _Topic] = {}
        self._subs: list[_MemorySubscription] = []
        self._seq = itertools.count()
        self._closed = False

    def _topic_locked(self, topic: str) -> _Topic:
        t = self._topics.get(topic)
        if t is None:
            t = self._topics[topic] = _Topic()
        return t

    def publish(self, topic: str, data: Mapping[str, Any]) -> str:
        if not topic:
            raise ValueError("topic must not be empty")
        body = json.dumps(dict(data))
        env = _Envelope(uuid.uuid4().hex, body)
        with self._cond:
            if self._closed:
                raise RuntimeError("bus is closed")
            self._topic_locked(topic).ready.append(env)
            self._cond.notify_all()
        return env.id

    def subscribe(
        self, topic: str, handler: Handler, *, concurrency: int = 1, max_attempts: int = 5
    ) -> Subscription:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be >= 1")
        with self._cond:
            if self._closed:
                raise RuntimeError("bus is closed")
            self._topic_locked(topic).subscribers += 1
        sub = _MemorySubscription(self, topic, handler, concurrency, max_attempts)
        with self._cond:
            self._subs.append(sub)
        return sub

    def ping(self, timeout: float = 5.0) -> None:
        # Taking the bus's one lock proves no thread holds it forever (a wedged bus).
        if not self._cond.acquire(timeout=timeout):
            raise TimeoutError(f"memory bus busy for more than {timeout}s")
        try:
            if self._closed:
                raise RuntimeError("bus is closed")
        finally:
            self._cond.release()

    def _take(self, topic: str, sub: _MemorySubscription) -> _Envelope | None:
        with self._cond:
            t = self._topics[topic]
            while True:
                if sub._stopping:
                    return None
                now = time.monotonic()
                while t.delayed and t.delayed[0][0] <= now:
                    t.ready.append(heapq.heappop(t.delayed)[2])
                if t.ready:
                    env = t.ready.popleft()
                    env.attempts += 1
                    t.in_flight += 1
                    return env
                wait = t.delayed[0][0] - now if t.delayed else None
                self._cond.wait(wait)

    def _ack(self, topic: str) -> None:
        with self._cond:
            self._topics[topic].in_flight -= 1
            self._cond.notify_all()

    def _nack(self, topic: str, env: _Envelope, max_attempts: int) -> None:
        with self._cond:
            t = self._topics[topic]
            t.in_flight -= 1
            if env.attempts >= max_attempts:
                log.error(
                    "message %s on %s failed %d times; moved to %s%s",
                    env.id,
                    topic,
                    env.attempts,
                    topic,
                    DEAD_SUFFIX,
                )
                self._topic_locked(topic + DEAD_SUFFIX).ready.append(_Envelope(uuid.uuid4().hex, env.body))
            else:
                delay = min(self.backoff * 2 ** (env.attempts - 1), self.max_backoff)
                heapq.heappush(t.delayed, (time.monotonic() + delay, next(self._seq), env))
            self._cond.notify_all()

    def _forget(self, sub: _MemorySubscription) -> None:
        with self._cond:
            if sub in self._subs:
                self._subs.remove(sub)

    def pending(self, topic: str) -> int:
        """Messages of ``topic`` not yet acknowledged (queued, waiting to retry or in flight)."""
        with self._cond:
            t = self._topics.get(topic)
            return 0 if t is None else len(t.ready) + len(t.delayed) + t.in_flight

    def join(self, timeout: float = 30.0) -> None:
        """Wait until every topic with a subscriber is idle; raise TimeoutError otherwise.

        Topics nobody subscribes to (e.g. dead-letter topics) are ignored: nothing will
        ever happen to their messages.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                busy = [name for name, t in self._topics.items() if t.subscribers > 0 and not t.idle()]
                if not busy:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"bus not idle after {timeout}s: busy topics {sorted(busy)}")
                # Wake up at least every 50 ms: delayed retries become due without a notify.
                self._cond.wait(min(left, 0.05))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            subs = list(self._subs)
        for s in subs:
            s.stop(timeout=10)
