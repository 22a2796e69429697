"""Retrying calls to the gateway: exponential backoff with full jitter, bounded.

Transient gRPC codes (``client.TRANSIENT_CODES``: UNAVAILABLE, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED, ABORTED) are retried; every other code is a definite answer and is
raised at once. The delay before retry ``n`` (1-based) is drawn uniformly from
``[0, min(max_delay, initial * 2**(n-1))]`` ("full jitter"): many uploaders that lost
the gateway at the same moment then come back spread out instead of in lock-step.
Both the number of attempts and the total time are bounded, so an outage longer than
the budget ends in a reported failure (exit 3) rather than a hung command; ``watch``
picks such files up again from its journal. A ``retry-after-ms`` trailer from the
gateway (sent when it is at its upload limit) is a floor under the delay.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import grpc

from rvcloud.cli.client import is_transient

T = TypeVar("T")

DEFAULT_ATTEMPTS: Final = 6
DEFAULT_INITIAL: Final = 0.5
DEFAULT_MAX_DELAY: Final = 30.0
DEFAULT_MAX_TIME: Final = 300.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry transient errors.

    ``attempts`` counts every try, the first included (1 = never retry). ``max_time``
    bounds the time from the first try until the last retry may start.
    """

    attempts: int = DEFAULT_ATTEMPTS
    initial: float = DEFAULT_INITIAL
    max_delay: float = DEFAULT_MAX_DELAY
    max_time: float = DEFAULT_MAX_TIME

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to sleep before retry number ``retry`` (1-based): full jitter."""
        cap = min(self.max_delay, self.initial * (2 ** (retry - 1)))
        return (rng or random).uniform(0.0, cap)


NO_RETRY: Final = RetryPolicy(attempts=1)

# on_retry(retry number, the error, the delay about to be slept)
RetryHook = Callable[[int, grpc.RpcError, float], None]


def retry_after(e: grpc.RpcError) -> float:
    """Seconds from a ``retry-after-ms`` trailer (sent with RESOURCE_EXHAUSTED), else 0."""
    trailing = getattr(e, "trailing_metadata", None)
    try:
        items = trailing() if callable(trailing) else ()
    except Exception:  # not a call error: no trailers
        return 0.0
    for key, value in items or ():
        if key == "retry-after-ms":
            try:
                return max(0.0, int(value) / 1000.0)
            except (TypeError, ValueError):
                return 0.0
    return 0.0


class Retrier:
    """Runs calls under a policy; the clock, sleep and randomness can be replaced in tests."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    def call(
        self,
        fn: Callable[[], T],
        *,
        on_retry: RetryHook | None = None,
        retryable: Callable[[grpc.RpcError], bool] = is_transient,
    ) -> T:
        """``fn()``, retried while it raises a retryable ``grpc.RpcError`` and the budget lasts.

        The last error is re-raised when the attempts or the time run out; other
        exceptions pass through untouched.
        """
        started = self._clock()
        retry = 0
        while True:
            try:
                return fn()
            except grpc.RpcError as e:
                retry += 1
                if not retryable(e) or retry >= self.policy.attempts:
                    raise
                # A gateway at its upload limit says when to come back: never sooner.
                pause = max(self.policy.delay(retry, self._rng), retry_after(e))
                if self._clock() + pause - started > self.policy.max_time:
                    raise
                if on_retry is not None:
                    on_retry(retry, e, pause)
                self._sleep(pause)
