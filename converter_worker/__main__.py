"""`python -m rvcloud.converter_worker`: run one converter replica."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from rvcloud.backends.bus.base import EventBus, Handler
from rvcloud.backends.factory import open_blob_store, open_event_bus, open_status_store
from rvcloud.backends.settings import Settings, add_backend_args
from rvcloud.converter_worker.worker import Converter


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rvcloud.converter_worker", description=__doc__)
    p.add_argument("--concurrency", type=int, default=1, help="files converted at once by this process")
    add_backend_args(p)
    args = p.parse_args(argv)
    s = Settings.from_args(args)
    bus = open_event_bus(s.bus)
    conv = Converter(
        open_blob_store(s.blob), bus, open_status_store(s.status), topic_converted=s.topic_converted
    )
    return run_until_signalled("converter", bus, s.topic_stored, conv.handle, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
