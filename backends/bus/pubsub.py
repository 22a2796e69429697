"""Event bus on Google Cloud Pub/Sub (URL ``pubsub://PROJECT[?...]``).

Naming: the bus topic ``T`` is the Pub/Sub topic ``<topic_prefix>T`` and every consumer
of it shares one subscription ``<topic_prefix>T<subscription_suffix>`` (suffix ``-sub``):
the competing consumers of a stage all pull from it, so each message is handled by
one of them. Dead letters go to the topic ``<topic_prefix>T.dead`` (``.`` is allowed in
Pub/Sub names, as are letters, digits, ``-_~+%``; a name must start with a letter and
have 3-255 characters: :func:`check_name`), which gets its own ``-sub`` subscription
so that dead letters are kept (Pub/Sub drops messages published to a topic nobody
subscribes to).

URL parameters:

- ``subscription_suffix`` (default ``-sub``), ``topic_prefix`` (default empty; tests use
  a unique one per test, since the emulator outlives a test);
- ``ack_deadline`` (seconds, default 60): the subscription's deadline; the client extends
  leases automatically up to ``max_lease`` (default 7200 s) so a long conversion keeps
  its message;
- ``max_attempts`` (default 5): the dead-letter policy of subscriptions created here;
- ``min_backoff``/``max_backoff`` (default 1 and 60 s): the redelivery back-off after a
  nack (the subscription's retry policy);
- ``auto_create`` (default 1): create missing topics and subscriptions on first use.
  Pub/Sub keeps a message only for subscriptions that exist when it is published, so
  ``publish`` ensures the topic's subscription exists; with ``auto_create=0`` run
  ``python -m rvcloud.backends.bus.pubsub setup pubsub://PROJECT TOPIC...`` first.

Delivery (the :mod:`rvcloud.backends.bus.base` contract): **unary pull** with our own
flow control and lease extension, like the SQLite bus. A puller thread long-polls for
at most as many messages as there are free handler slots (``concurrency``), so a busy
replica never holds messages another replica could run; handlers run on a pool of
``concurrency`` threads; a lease thread extends the ack deadline of running messages
every ``ack_deadline/3`` s, for up to ``max_lease`` (2 h). A handler that returns acks;
one that raises sets the message's ack deadline to the back-off delay (``min_backoff``
doubling to ``max_backoff``; 0 is a plain nack), so retries are spaced the same way on
Pub/Sub and on the emulator. ``stop()`` cancels the pending long poll (messages it
brings anyway are handed back at once) and waits for running handlers.

Why not streaming pull: the gcloud emulator (0.8.20) mishandles a cancelled
StreamingPull (``NoSuchMethodError`` in its gRPC server when the client resets the
stream), keeps the dead stream registered and sends it later messages, which are then
never redelivered -- every subscriber restart would lose messages under test. Unary
pull has no such state, and for this workload (few, long messages; competing
replicas) exact leasing matters more than streaming throughput.

``Message.attempt`` is Pub/Sub's ``delivery_attempt``, which the service fills in for
subscriptions with a dead-letter policy (all those created here); for others it is
counted in this process.

Dead letters, two paths with the same result (``<topic>.dead`` gets the payload):

- **our subscriber**: when the handler fails on attempt ``max_attempts`` (the
  ``subscribe`` argument), it publishes the payload to ``<topic>.dead`` with attributes
  ``rvcloud_error``, ``rvcloud_attempts`` and ``rvcloud_source`` and acks. This is the
  path for ``max_attempts`` below 5 (Pub/Sub's minimum for a dead-letter policy), and a
  message that arrives with ``delivery_attempt > max_attempts`` (its consumers died
  mid-handling) is dead-lettered without running the handler, as the SQLite bus does.
- **the subscription's dead-letter policy** (``max_delivery_attempts = max(5,
  max_attempts)``): Pub/Sub itself forwards a message nobody acked or nacked in time
  -- consumers killed mid-handling -- with its ``CloudPubSubDeadLetterSource*``
  attributes. On real GCP this needs the Pub/Sub service agent
  (``service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com``) to have
  ``roles/pubsub.publisher`` on the dead-letter topic and ``roles/pubsub.subscriber`` on
  the subscription. The gcloud emulator (0.8.20) implements the policy and
  ``delivery_attempt`` too (tested in ``tests/cloud/test_pubsub_specifics.py``).

Ordering is not guaranteed (no ordering keys).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rvcloud.backends.bus.base import EventBus, Handler, Message, Subscription

log = logging.getLogger(__name__)

DEAD_SUFFIX = ".dead"
MIN_POLICY_ATTEMPTS = 5  # Pub/Sub refuses a dead-letter policy below 5 (and above 100)
MAX_POLICY_ATTEMPTS = 100
PUBLISH_TIMEOUT = 60.0
PULL_POLL = 30.0  # seconds one long-polling pull waits for messages (stop() cancels it)
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_LOCAL_ATTEMPTS_MAX = 100_000  # message ids remembered when Pub/Sub gives no delivery_attempt


def check_name(name: str, kind: str = "topic") -> str:
    """Raise ValueError unless ``name`` is a valid Pub/Sub topic/subscription id."""
    if not _NAME_RE.fullmatch(name) or name.lower().startswith("goog"):
        raise ValueError(
            f"invalid Pub/Sub {kind} name {name!r}: 3-255 characters of letters, digits and "
            "-_.~+%, starting with a letter and not with 'goog'"
        )
    return name


class _PubSubSubscription(Subscription):
    """Unary-pull consumer: leases at most ``concurrency`` messages, extends their leases."""

    def __init__(
        self, bus: PubSubBus, topic: str, handler: Handler, concurrency: int, max_attempts: int
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._path = bus.subscription_path(topic)
        self._client = bus._subscriber()
        self._handler = handler
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._slots = threading.Semaphore(concurrency)  # free handler slots
        self._cond = threading.Condition()
        self._in_flight: dict[str, float] = {}  # ack_id -> monotonic time of receipt
        self._local_attempts: OrderedDict[str, int] = OrderedDict()
        self._pull_future: Any = None
        self._stop = threading.Event()
        self._stopped = False
        self._thread_prefix = f"pubsub-{topic}"
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=self._thread_prefix
        )
        self._puller = threading.Thread(
            target=self._pull_loop, name=f"{self._thread_prefix}-pull", daemon=True
        )
        self._leaser = threading.Thread(
            target=self._lease_loop, name=f"{self._thread_prefix}-lease", daemon=True
        )
        self._puller.start()
        self._leaser.start()

    # ---- pulling --------------------------------------------------------------------

    def _pull_loop(self) -> None:
        from google.pubsub_v1.types import PullRequest

        errors = 0
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            free = 1
            while free < self._concurrency and self._slots.acquire(blocking=False):
                free += 1
            received: list[Any] = []
            try:
                with self._cond:
                    if self._stop.is_set():
                        raise _Stopped
                    # A long poll that stop() can cancel (the gapic call cannot be cancelled).
                    self._pull_future = self._client.transport.pull.future(
                        PullRequest(subscription=self._path, max_messages=free), timeout=PULL_POLL
                    )
                received = list(self._pull_future.result().received_messages)
                errors = 0
            except _Stopped:
                pass
            except Exception as e:
                code = getattr(e, "code", lambda: None)()
                if not self._stop.is_set() and str(code) not in (
                    "StatusCode.DEADLINE_EXCEEDED",
                    "StatusCode.CANCELLED",
                ):
                    errors += 1
                    log.warning("pull from %s failed (%s)", self._path, e)
                    self._stop.wait(min(0.1 * 2**errors, 10.0))
            finally:
                with self._cond:
                    self._pull_future = None
            for _ in range(free - len(received)):
                self._slots.release()
            if self._stop.is_set() and received:
                # Pulled while stopping: hand them back at once.
                self._modack([rm.ack_id for rm in received], 0)
                for _ in received:
                    self._slots.release()
                continue
            for rm in received:
                with self._cond:
                    self._in_flight[rm.ack_id] = time.monotonic()
                self._executor.submit(self._handle, rm)

    # ---- lease extension ----------------------------------------------------------------

    def _lease_loop(self) -> None:
        deadline = self._bus.ack_deadline
        interval = max(deadline / 3.0, 1.0)
        while True:
            with self._cond:
                if self._stop.is_set() and not self._in_flight:
                    return
                self._cond.wait(interval)
                now = time.monotonic()
                ids = [a for a, t0 in self._in_flight.items() if now - t0 < self._bus.max_lease]
            if ids:
                self._modack(ids, deadline)

    def _modack(self, ack_ids: list[str], seconds: int) -> None:
        try:
            self._client.modify_ack_deadline(
                subscription=self._path, ack_ids=ack_ids, ack_deadline_seconds=seconds
            )
        except Exception:
            # The lease runs out and the message is redelivered: at-least-once holds.
            log.warning("modifyAckDeadline(%ds) on %s failed", seconds, self._path, exc_info=True)

    def _ack(self, ack_id: str) -> None:
        try:
            self._client.acknowledge(subscription=self._path, ack_ids=[ack_id])
        except Exception:
            log.warning("ack on %s failed; the message will be redelivered", self._path, exc_info=True)

    # ---- delivery -----------------------------------------------------------------

    def _attempt(self, rm: Any) -> int:
        if rm.delivery_attempt:
            return int(rm.delivery_attempt)
        # No dead-letter policy on the subscription: count deliveries to this process.
        mid = rm.message.message_id
        with self._cond:
            n = self._local_attempts.pop(mid, 0) + 1
            self._local_attempts[mid] = n
            while len(self._local_attempts) > _LOCAL_ATTEMPTS_MAX:
                self._local_attempts.popitem(last=False)
        return n

    def _handle(self, rm: Any) -> None:
        try:
            self._deliver(rm)
        except Exception:
            log.exception("delivering message %s from %s failed", rm.message.message_id, self._path)
        finally:
            with self._cond:
                self._in_flight.pop(rm.ack_id, None)
                self._cond.notify_all()
            self._slots.release()

    def _deliver(self, rm: Any) -> None:
        attempt = self._attempt(rm)
        mid = str(rm.message.message_id)
        try:
            data = json.loads(rm.message.data)
        except ValueError as e:
            # Not ours (someone published by hand); retrying cannot help.
            self._dead_letter(rm, attempt, f"payload is not JSON: {e}")
            return
        if attempt > self._max_attempts:
            self._dead_letter(rm, attempt, "delivered too often without an outcome (consumers died?)")
            return
        try:
            self._handler(Message(mid, self._topic, data, attempt, _publish_time(rm.message)))
        except Exception as e:
            log.warning(
                "handler for %s failed on message %s (attempt %d)", self._topic, mid, attempt, exc_info=True
            )
            if attempt >= self._max_attempts:
                self._dead_letter(rm, attempt, f"{type(e).__name__}: {e}")
            else:
                # Our own back-off (the lease set to the delay rather than nack's 0), so
                # retries are spaced the same way on Pub/Sub and on the emulator.
                delay = min(self._bus.min_backoff * 2 ** (attempt - 1), self._bus.max_backoff)
                self._modack([rm.ack_id], int(delay))
        else:
            self._ack(rm.ack_id)
            with self._cond:
                self._local_attempts.pop(mid, None)

    def _dead_letter(self, rm: Any, attempt: int, error: str) -> None:
        dead = self._topic + DEAD_SUFFIX
        mid = rm.message.message_id
        log.error(
            "message %s on %s moved to %s after %d attempts: %s", mid, self._topic, dead, attempt, error
        )
        try:
            self._bus._publish_raw(
                dead,
                bytes(rm.message.data),
                {
                    "rvcloud_error": error[:1024],
                    "rvcloud_attempts": str(attempt),
                    "rvcloud_source": self._path,
                },
            )
        except Exception:
            # Not dead-lettered: let it be redelivered (and tried again).
            log.exception("publishing message %s to %s failed; nacking", mid, dead)
            self._modack([rm.ack_id], 0)
            return
        self._ack(rm.ack_id)
        with self._cond:
            self._local_attempts.pop(mid, None)

    # ---- stop -----------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._stop.set()
            if self._pull_future is not None:
                self._pull_future.cancel()
            self._cond.notify_all()
        if threading.current_thread().name.startswith(self._thread_prefix):
            # Called from one of our handlers: waiting would wait for ourselves.
            self._executor.shutdown(wait=False)
            self._bus._forget(self)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        self._puller.join(timeout)
        with self._cond:
            # Handlers keep running (and their leases extended) if they outlive timeout.
            while self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    log.warning("subscription to %s: handlers still running after %ss", self._topic, timeout)
                    break
                self._cond.wait(left)
        self._executor.shutdown(wait=False)
        self._bus._forget(self)


class _Stopped(Exception):
    pass


def _publish_time(msg: Any) -> float | None:
    """The service's publish time of a pulled message as epoch seconds (None if unset)."""
    t = getattr(msg, "publish_time", None)
    if t is None:
        return None
    # proto-plus gives a datetime, a raw protobuf message a Timestamp.
    ts = float(t.timestamp()) if hasattr(t, "timestamp") else t.seconds + t.nanos / 1e9
    return ts if ts > 0 else None


class PubSubBus(EventBus):
    """See the module docstring. Thread-safe; one per process is enough."""

    def __init__(
        self,
        project: str,
        *,
        topic_prefix: str = "",
        subscription_suffix: str = "-sub",
        ack_deadline: int = 60,
        max_attempts: int = 5,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_lease: float = 7200.0,
        auto_create: bool = True,
    ) -> None:
        if not project:
            raise ValueError("a Pub/Sub project is required")
        if not 10 <= ack_deadline <= 600:
            raise ValueError("ack_deadline must be 10..600 seconds (Pub/Sub's range)")
        if max_attempts < 1 or not 0 <= min_backoff <= max_backoff <= 600:
            raise ValueError("max_attempts >= 1 and 0 <= min_backoff <= max_backoff <= 600 required")
        self.project = project
        self.topic_prefix = topic_prefix
        self.subscription_suffix = subscription_suffix
        self.ack_deadline = ack_deadline
        self.max_attempts = max_attempts
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.max_lease = max_lease
        self.auto_create = auto_create
        self._lock = threading.Lock()
        self._publisher_client: Any = None
        self._subscriber_client: Any = None
        self._ready: set[str] = set()  # topics whose topic+subscriptions are known to exist
        self._subs: list[_PubSubSubscription] = []

    @classmethod
    def from_url(cls, url: str) -> PubSubBus:
        """``pubsub://PROJECT[?subscription_suffix=-sub&ack_deadline=60&max_attempts=5&...]``."""
        parts = urlsplit(url)
        if parts.scheme != "pubsub" or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"not a Pub/Sub URL: {url!r} (expected pubsub://PROJECT)")
        kw: dict[str, Any] = {}
        conv: dict[str, Any] = {
            "topic_prefix": str,
            "subscription_suffix": str,
            "ack_deadline": int,
            "max_attempts": int,
            "min_backoff": float,
            "max_backoff": float,
            "max_lease": float,
            "auto_create": lambda v: v.lower() not in ("0", "false", "no"),
        }
        for k, vs in parse_qs(parts.query, keep_blank_values=True).items():
            if k not in conv:
                raise ValueError(f"URL {url!r}: unknown parameter {k!r} (allowed: {sorted(conv)})")
            try:
                kw[k] = conv[k](vs[-1])
            except ValueError as e:
                raise ValueError(f"URL {url!r}: bad value for {k!r}") from e
        return cls(parts.netloc, **kw)

    def __repr__(self) -> str:
        emu = os.environ.get("PUBSUB_EMULATOR_HOST")
        return (
            f"PubSubBus({self.project!r}, prefix={self.topic_prefix!r}{', emulator=' + emu if emu else ''})"
        )

    # ---- names and clients ----------------------------------------------------------

    def topic_id(self, topic: str) -> str:
        if not topic:
            raise ValueError("topic must not be empty")
        return check_name(self.topic_prefix + topic)

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{self.topic_id(topic)}"

    def subscription_path(self, topic: str) -> str:
        name = check_name(self.topic_id(topic) + self.subscription_suffix, "subscription")
        return f"projects/{self.project}/subscriptions/{name}"

    def _publisher(self) -> Any:
        with self._lock:
            if self._publisher_client is None:
                from google.cloud.pubsub_v1 import PublisherClient
                from google.cloud.pubsub_v1.types import BatchSettings

                # publish() waits for each message, so batching only adds latency.
                self._publisher_client = PublisherClient(
                    batch_settings=BatchSettings(max_messages=100, max_latency=0.002)
                )
            return self._publisher_client

    def _subscriber(self) -> Any:
        with self._lock:
            if self._subscriber_client is None:
                from google.cloud.pubsub_v1 import SubscriberClient

                self._subscriber_client = SubscriberClient()
            return self._subscriber_client

    # ---- set-up (idempotent) -----------------------------------------------------------

    def ensure_topic(self, topic: str) -> None:
        from google.api_core.exceptions import AlreadyExists

        with contextlib.suppress(AlreadyExists):
            self._publisher().create_topic(name=self.topic_path(topic))

    def ensure_subscription(
        self, topic: str, dead_letter_topic: str | None = None, max_attempts: int | None = None
    ) -> None:
        """Create ``topic``'s shared subscription with a dead-letter policy and retry policy.

        ``dead_letter_topic`` defaults to ``<topic>.dead``; pass ``""`` for none (used for
        the dead-letter topics' own subscriptions). An existing subscription is left as
        it is (AlreadyExists is fine): changing policies is a deliberate operation.
        """
        from google.api_core.exceptions import AlreadyExists
        from google.protobuf import duration_pb2
        from google.pubsub_v1.types import DeadLetterPolicy, RetryPolicy

        dead = topic + DEAD_SUFFIX if dead_letter_topic is None else dead_letter_topic
        request: dict[str, Any] = {
            "name": self.subscription_path(topic),
            "topic": self.topic_path(topic),
            "ack_deadline_seconds": self.ack_deadline,
            "message_retention_duration": duration_pb2.Duration(seconds=7 * 24 * 3600),
            "retry_policy": RetryPolicy(
                minimum_backoff=_duration(self.min_backoff), maximum_backoff=_duration(self.max_backoff)
            ),
        }
        if dead:
            attempts = min(max(max_attempts or self.max_attempts, MIN_POLICY_ATTEMPTS), MAX_POLICY_ATTEMPTS)
            request["dead_letter_policy"] = DeadLetterPolicy(
                dead_letter_topic=self.topic_path(dead), max_delivery_attempts=attempts
            )
        with contextlib.suppress(AlreadyExists):
            self._subscriber().create_subscription(request=request)

    def ensure(self, topic: str) -> None:
        """Topic, its subscription, its dead-letter topic and that topic's subscription."""
        if topic in self._ready:
            return
        if topic.endswith(DEAD_SUFFIX):
            self.ensure_topic(topic)
            self.ensure_subscription(topic, dead_letter_topic="")
        else:
            dead = topic + DEAD_SUFFIX
            self.ensure_topic(dead)
            self.ensure_subscription(dead, dead_letter_topic="")
            self.ensure_topic(topic)
            self.ensure_subscription(topic)
            self._ready.add(dead)
        self._ready.add(topic)

    def setup(self, topics: Iterable[str]) -> None:
        for t in topics:
            self.ensure(t)

    # ---- EventBus ---------------------------------------------------------------------

    def ping(self, timeout: float = 5.0) -> None:
        """One GetTopic call without retries; any answer from the service counts.

        NotFound (no topic used yet, or a probe name) and PermissionDenied (a publisher-only
        role may not read topic metadata) are answers, so the service is reachable;
        timeouts and connection failures raise.
        """
        from google.api_core.exceptions import NotFound, PermissionDenied

        topic = next(iter(sorted(self._ready)), "rvcloud-ping")
        with contextlib.suppress(NotFound, PermissionDenied):
            self._publisher().get_topic(topic=self.topic_path(topic), timeout=timeout, retry=None)

    def publish(self, topic: str, data: Mapping[str, Any]) -> str:
        body = json.dumps(dict(data)).encode()
        if self.auto_create:
            self.ensure(topic)
        return self._publish_raw(topic, body, {})

    def _publish_raw(self, topic: str, body: bytes, attributes: Mapping[str, str]) -> str:
        if self.auto_create and topic not in self._ready:
            self.ensure(topic)
        future = self._publisher().publish(self.topic_path(topic), body, **attributes)
        # Durable once the service has acknowledged it.
        return str(future.result(timeout=PUBLISH_TIMEOUT))

    def subscribe(
        self, topic: str, handler: Handler, *, concurrency: int = 1, max_attempts: int = 5
    ) -> Subscription:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be >= 1")
        if self.auto_create:
            self.ensure(topic)
        sub = _PubSubSubscription(self, topic, handler, concurrency, max_attempts)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _forget(self, sub: _PubSubSubscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def close(self) -> None:
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            s.stop(timeout=10)
        with self._lock:
            pub, self._publisher_client = self._publisher_client, None
            sub, self._subscriber_client = self._subscriber_client, None
        if pub is not None:
            pub.stop()  # flushes pending batches
        if sub is not None:
            sub.close()


def _duration(seconds: float) -> Any:
    from google.protobuf import duration_pb2

    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def main(argv: list[str] | None = None) -> int:
    """``python -m rvcloud.backends.bus.pubsub setup pubsub://PROJECT TOPIC...``"""
    ap = argparse.ArgumentParser(
        prog="python -m rvcloud.backends.bus.pubsub",
        description="Create the Pub/Sub topics, shared subscriptions and dead-letter topics of the bus.",
    )
    ap.add_argument("command", choices=["setup"])
    ap.add_argument("url", help="pubsub://PROJECT[?...] as given to --bus")
    ap.add_argument("topics", nargs="+", help="bus topics, e.g. rvcloud-stored rvcloud-converted")
    a = ap.parse_args(argv)
    bus = PubSubBus.from_url(a.url)
    bus.setup(a.topics)
    for t in a.topics:
        dead = bus.topic_path(t + DEAD_SUFFIX)
        print(f"{bus.topic_path(t)} -> {bus.subscription_path(t)} (dead letters: {dead})")
    bus.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
