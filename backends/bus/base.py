"""Event bus interface: topics with at-least-once delivery to competing consumers.

A handler that returns normally acknowledges the message; one that raises gets it
redelivered (after a back-off) until ``max_attempts``, then the message goes to the
topic's dead-letter topic ``<topic>.dead``. Stages must therefore be idempotent.
Ordering is not guaranteed.

``ping`` is a cheap liveness probe for health checks: it raises when the bus cannot
be reached within ``timeout`` seconds, and publishes nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    topic: str
    data: Mapping[str, Any]
    attempt: int  # 1 on first delivery
    # Wall-clock (epoch seconds) time the bus accepted the message, for queue-lag metrics;
    # None when the backend does not know it.
    published_at: float | None = None


Handler = Callable[[Message], None]


class Subscription(abc.ABC):
    @abc.abstractmethod
    def stop(self, timeout: float | None = None) -> None:
        """Stop pulling; wait for in-flight handlers to finish (or the timeout)."""


class EventBus(abc.ABC):
    @abc.abstractmethod
    def publish(self, topic: str, data: Mapping[str, Any]) -> str:
        """Publish a JSON-serialisable message; returns its id once durable."""

    @abc.abstractmethod
    def subscribe(
        self, topic: str, handler: Handler, *, concurrency: int = 1, max_attempts: int = 5
    ) -> Subscription:
        """Deliver messages of ``topic`` to ``handler`` on background threads."""

    @abc.abstractmethod
    def ping(self, timeout: float = 5.0) -> None:
        """Raise if the bus does not answer within ``timeout`` seconds (health checks)."""

    def close(self) -> None:  # noqa: B027 -- an optional hook, deliberately not abstract
        """Release resources (no-op by default)."""
