"""Run a stage as a long-lived consumer of one topic until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from rvcloud.backends.bus.base import EventBus, Handler


def run_until_signalled(name: str, bus: EventBus, topic: str, handler: Handler, concurrency: int) -> int:
    """Subscribe ``handler`` to ``topic`` and serve until SIGTERM/SIGINT.

    On a signal the subscription stops taking messages and waits for the ones in hand,
    so a rolling restart loses nothing (an unfinished message is redelivered anyway).
    """
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sub = bus.subscribe(topic, handler, concurrency=concurrency)
    logging.info("consuming %s", topic)
    stop.wait()
    sub.stop(timeout=60)
    bus.close()
    return 0
