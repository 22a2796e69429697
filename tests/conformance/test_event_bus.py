"""Event bus conformance: every EventBus implementation must pass these."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from rvcloud.backends.bus.base import EventBus, Message
from tests.conformance.conformance_support import wait_until


class Collector:
    """A handler that records deliveries; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Message] = []

    def __call__(self, msg: Message) -> None:
        with self.lock:
            self.messages.append(msg)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def test_publish_and_consume(event_bus: EventBus) -> None:
    ids = [
        event_bus.publish("stored", {"n": i, "path": f"rrc00/x.{i}", "tags": ["a", "b"]}) for i in range(3)
    ]
    assert len(set(ids)) == 3
    got = Collector()
    sub = event_bus.subscribe("stored", got)
    wait_until(lambda: got.count() == 3)
    sub.stop(timeout=5)
    by_id = {m.id: m for m in got.messages}
    assert set(by_id) == set(ids)
    for i, mid in enumerate(ids):
        m = by_id[mid]
        assert (m.topic, dict(m.data), m.attempt) == (
            "stored",
            {"n": i, "path": f"rrc00/x.{i}", "tags": ["a", "b"]},
            1,
        )


def test_messages_published_while_subscribed(event_bus: EventBus) -> None:
    got = Collector()
    sub = event_bus.subscribe("t", got)
    time.sleep(0.05)  # the subscriber is idle-waiting when the publish arrives
    mid = event_bus.publish("t", {"x": 1})
    wait_until(lambda: got.count() == 1)
    sub.stop(timeout=5)
    assert (got.messages[0].id, dict(got.messages[0].data)) == (mid, {"x": 1})


def test_topics_are_separate(event_bus: EventBus) -> None:
    a, b = Collector(), Collector()
    sa = event_bus.subscribe("a", a)
    sb = event_bus.subscribe("b", b)
    event_bus.publish("a", {"to": "a"})
    event_bus.publish("b", {"to": "b"})
    event_bus.publish("b", {"to": "b"})
    wait_until(lambda: a.count() == 1 and b.count() == 2)
    time.sleep(0.1)
    sa.stop(timeout=5)
    sb.stop(timeout=5)
    assert [m.data["to"] for m in a.messages] == ["a"]
    assert [m.data["to"] for m in b.messages] == ["b", "b"]


def test_redelivery_after_exception(event_bus: EventBus) -> None:
    attempts: list[tuple[str, int, dict[str, object]]] = []

    def flaky(msg: Message) -> None:
        attempts.append((msg.id, msg.attempt, dict(msg.data)))
        if msg.attempt < 3:
            raise RuntimeError("transient")

    mid = event_bus.publish("t", {"file": "f1"})
    sub = event_bus.subscribe("t", flaky, max_attempts=5)
    wait_until(lambda: len(attempts) == 3)
    time.sleep(0.2)  # acknowledged: no fourth delivery
    sub.stop(timeout=5)
    assert attempts == [(mid, 1, {"file": "f1"}), (mid, 2, {"file": "f1"}), (mid, 3, {"file": "f1"})]


def test_dead_letter_after_max_attempts(event_bus: EventBus) -> None:
    attempts: list[int] = []

    def always_fails(msg: Message) -> None:
        attempts.append(msg.attempt)
        raise ValueError("poison")

    event_bus.publish("t", {"file": "poison"})
    event_bus.publish("t.other", {"unrelated": True})
    sub = event_bus.subscribe("t", always_fails, max_attempts=3)
    dead = Collector()
    dsub = event_bus.subscribe("t.dead", dead)
    wait_until(lambda: dead.count() == 1)
    time.sleep(0.2)
    sub.stop(timeout=5)
    dsub.stop(timeout=5)
    assert attempts == [1, 2, 3]
    assert (dead.messages[0].topic, dict(dead.messages[0].data), dead.messages[0].attempt) == (
        "t.dead",
        {"file": "poison"},
        1,
    )


def test_competing_consumers_handle_each_message_once(event_bus: EventBus) -> None:
    n = 150
    ids = {event_bus.publish("work", {"i": i}) for i in range(n)}
    c1, c2 = Collector(), Collector()
    s1 = event_bus.subscribe("work", c1, concurrency=2)
    s2 = event_bus.subscribe("work", c2, concurrency=2)
    wait_until(lambda: c1.count() + c2.count() >= n, timeout=30)
    time.sleep(0.2)  # nothing further arrives
    s1.stop(timeout=5)
    s2.stop(timeout=5)
    handled = Counter(m.id for m in c1.messages + c2.messages)
    assert set(handled) == ids
    assert max(handled.values()) == 1
    assert sorted(m.data["i"] for m in c1.messages + c2.messages) == list(range(n))


def test_concurrency_runs_handlers_in_parallel(event_bus: EventBus) -> None:
    # Four handlers must be inside the barrier at the same time, else it times out.
    barrier = threading.Barrier(4, timeout=10)
    done = Collector()

    def handler(msg: Message) -> None:
        barrier.wait()
        done(msg)

    for i in range(4):
        event_bus.publish("par", {"i": i})
    sub = event_bus.subscribe("par", handler, concurrency=4)
    wait_until(lambda: done.count() == 4, timeout=15)
    sub.stop(timeout=5)
    assert sorted(m.data["i"] for m in done.messages) == [0, 1, 2, 3]
    assert all(m.attempt == 1 for m in done.messages)


def test_stop_waits_for_in_flight_handler(event_bus: EventBus) -> None:
    started = threading.Event()
    finished = threading.Event()
    calls = Collector()

    def slow(msg: Message) -> None:
        calls(msg)
        started.set()
        time.sleep(0.3)
        finished.set()

    event_bus.publish("slow", {})
    sub = event_bus.subscribe("slow", slow)
    assert started.wait(10)
    sub.stop(timeout=10)
    assert finished.is_set()
    # After stop the subscription takes nothing more; the message waits for another.
    event_bus.publish("slow", {"late": True})
    time.sleep(0.2)
    assert calls.count() == 1
    late = Collector()
    sub2 = event_bus.subscribe("slow", late)
    wait_until(lambda: late.count() == 1)
    sub2.stop(timeout=5)
    assert dict(late.messages[0].data) == {"late": True}


def test_payload_is_json(event_bus: EventBus) -> None:
    payload = {"s": "ü", "n": 2**40, "f": 1.5, "b": False, "z": None, "l": [1, {"k": [2]}]}
    got = Collector()
    event_bus.publish("j", payload)
    sub = event_bus.subscribe("j", got)
    wait_until(lambda: got.count() == 1)
    sub.stop(timeout=5)
    assert dict(got.messages[0].data) == payload
    with pytest.raises(TypeError):
        event_bus.publish("j", {"bad": object()})


def test_ping_answers_and_publishes_nothing(event_bus: EventBus) -> None:
    t0 = time.monotonic()
    event_bus.ping(timeout=5)
    event_bus.ping(timeout=5)
    assert time.monotonic() - t0 < 5
    # A probe must not leave anything a consumer could receive.
    got = Collector()
    sub = event_bus.subscribe("p", got)
    event_bus.publish("p", {"marker": 1})
    wait_until(lambda: got.count() == 1)
    event_bus.ping(timeout=5)
    time.sleep(0.2)
    sub.stop(timeout=5)
    assert [dict(m.data) for m in got.messages] == [{"marker": 1}]


def test_message_carries_publish_time(event_bus: EventBus) -> None:
    before = time.time()
    event_bus.publish("lag", {"n": 1})
    after = time.time()
    time.sleep(0.3)  # the message waits in the queue: its age at delivery is >= 0.3 s
    got = Collector()
    sub = event_bus.subscribe("lag", got)
    wait_until(lambda: got.count() == 1)
    received = time.time()
    sub.stop(timeout=5)
    published = got.messages[0].published_at
    assert published is not None
    # Emulators stamp with their own clock, here the same machine's; 50 ms for granularity.
    assert before - 0.05 <= published <= after + 0.05
    assert received - published >= 0.25
