"""Run a stage as a long-lived consumer until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from rvcloud.backends.bus.base import EventBus, Subscription


def run_until_signalled(name: str, bus: EventBus, subscribe: Callable[[], Subscription]) -> int:
    """Start the subscription made by ``subscribe`` and serve until SIGTERM/SIGINT.

    On a signal the subscription stops taking messages and waits for the ones in hand,
    so a rolling restart loses nothing (an unfinished message is redelivered anyway).
    """
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sub = subscribe()
    logging.info("%s consuming", name)
    stop.wait()
    sub.stop(timeout=60)
    bus.close()
    return 0
