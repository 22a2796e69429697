"""Event bus interface: topics with at-least-once delivery to competing consumers.

A handler that returns normally acknowledges the message; one that raises gets it
redelivered (after a back-off) until ``max_attempts``, then the message goes to the
topic's dead-letter topic ``<topic>.dead``. Stages must therefore be idempotent.
Ordering is not guaranteed.
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

    def close(self) -> None:  # noqa: B027 -- an optional hook, deliberately not abstract
        """Release resources (no-op by default)."""
