"""PubSubBus behaviour beyond the conformance suite, against the gcloud Pub/Sub emulator.

Found while writing these (emulator 0.8.20): it implements dead-letter policies and
``delivery_attempt`` (tested below), but a cancelled StreamingPull stays registered and
swallows later messages -- why the bus uses unary pull (see the module docstring).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rvcloud.backends.bus.base import Message
from rvcloud.backends.bus.pubsub import PubSubBus, check_name
from tests.emulators import PROJECT, Emulator


def wait_for(pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        time.sleep(0.02)


@pytest.fixture
def bus(pubsub_emulator: Emulator) -> Iterator[PubSubBus]:
    b = PubSubBus.from_url(f"pubsub://{PROJECT}?topic_prefix=s{uuid.uuid4().hex[:10]}-&min_backoff=0")
    yield b
    b.close()


def pull_raw(bus: PubSubBus, topic: str, n: int, timeout: float = 20.0) -> list[Any]:
    """Messages of ``topic``'s subscription with their attributes (bypassing the bus)."""
    client = bus._subscriber()
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        r = client.pull(subscription=bus.subscription_path(topic), max_messages=10, timeout=5)
        out += [m.message for m in r.received_messages]
        if r.received_messages:
            client.acknowledge(
                subscription=bus.subscription_path(topic), ack_ids=[m.ack_id for m in r.received_messages]
            )
    return out


def test_our_dead_letter_carries_error_and_attempts(bus: PubSubBus) -> None:
    def fails(msg: Message) -> None:
        raise RuntimeError(f"broken file {msg.data['file']}")

    bus.publish("stored", {"file": "x.bz2"})
    sub = bus.subscribe("stored", fails, max_attempts=2)
    (dead,) = pull_raw(bus, "stored.dead", 1)
    sub.stop(timeout=5)
    assert json.loads(dead.data) == {"file": "x.bz2"}
    assert dead.attributes["rvcloud_error"] == "RuntimeError: broken file x.bz2"
    assert dead.attributes["rvcloud_attempts"] == "2"
    assert dead.attributes["rvcloud_source"] == bus.subscription_path("stored")


def test_emulator_applies_the_subscriptions_dead_letter_policy(bus: PubSubBus) -> None:
    # max_attempts above the policy's 5: our subscriber keeps nacking, so it is the
    # server's policy that forwards the message after its 5th delivery.
    attempts: list[int] = []

    def fails(msg: Message) -> None:
        attempts.append(msg.attempt)
        raise RuntimeError("poison")

    bus.publish("conv", {"file": "y"})
    sub = bus.subscribe("conv", fails, max_attempts=50)
    (dead,) = pull_raw(bus, "conv.dead", 1, timeout=40)
    sub.stop(timeout=5)
    assert attempts == [1, 2, 3, 4, 5]  # delivery_attempt, filled in by the service
    assert json.loads(dead.data) == {"file": "y"}
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"


def test_non_json_payload_is_dead_lettered_without_running_the_handler(bus: PubSubBus) -> None:
    calls: list[Message] = []
    bus.ensure("raw")
    bus._publish_raw("raw", b"\xff not json", {})
    sub = bus.subscribe("raw", calls.append)
    (dead,) = pull_raw(bus, "raw.dead", 1)
    sub.stop(timeout=5)
    assert calls == []
    assert dead.data == b"\xff not json"
    assert dead.attributes["rvcloud_error"].startswith("payload is not JSON")


def test_lease_is_extended_while_the_handler_runs(pubsub_emulator: Emulator) -> None:
    # ack deadline 10 s, handler 13 s: without extension it would be redelivered.
    bus = PubSubBus.from_url(f"pubsub://{PROJECT}?topic_prefix=l{uuid.uuid4().hex[:10]}-&ack_deadline=10")
    calls: list[int] = []
    done = threading.Event()

    def slow(msg: Message) -> None:
        calls.append(msg.attempt)
        time.sleep(13)
        done.set()

    try:
        bus.publish("long", {"n": 1})
        sub = bus.subscribe("long", slow, concurrency=2)  # a free slot that could take a redelivery
        assert done.wait(30)
        time.sleep(1)
        sub.stop(timeout=5)
    finally:
        bus.close()
    assert calls == [1]


def test_competing_consumers_on_separate_clients(pubsub_emulator: Emulator) -> None:
    prefix = f"m{uuid.uuid4().hex[:10]}-"
    a = PubSubBus.from_url(f"pubsub://{PROJECT}?topic_prefix={prefix}")
    b = PubSubBus.from_url(f"pubsub://{PROJECT}?topic_prefix={prefix}")
    seen: dict[str, list[str]] = {"a": [], "b": []}
    lock = threading.Lock()

    def handler(name: str) -> Any:
        def h(msg: Message) -> None:
            time.sleep(0.02)
            with lock:
                seen[name].append(msg.id)

        return h

    try:
        ids = {a.publish("work", {"i": i}) for i in range(40)}
        sa = a.subscribe("work", handler("a"), concurrency=2)
        sb = b.subscribe("work", handler("b"), concurrency=2)
        wait_for(lambda: len(seen["a"]) + len(seen["b"]) >= 40)
        time.sleep(0.5)
        sa.stop(timeout=5)
        sb.stop(timeout=5)
    finally:
        a.close()
        b.close()
    all_ids = seen["a"] + seen["b"]
    assert sorted(all_ids) == sorted(ids)  # each exactly once
    assert seen["a"] and seen["b"]  # both replicas took work


def test_names_and_urls() -> None:
    assert check_name("rvcloud-stored.dead") == "rvcloud-stored.dead"
    for bad in ["t", "1abc", "goog-x", "a b c", "x" * 256]:
        with pytest.raises(ValueError):
            check_name(bad)
    bus = PubSubBus.from_url("pubsub://proj?subscription_suffix=-workers&ack_deadline=120&max_attempts=7")
    assert bus.subscription_path("rvcloud-stored") == "projects/proj/subscriptions/rvcloud-stored-workers"
    assert bus.topic_path("rvcloud-stored.dead") == "projects/proj/topics/rvcloud-stored.dead"
    assert (bus.ack_deadline, bus.max_attempts) == (120, 7)
    with pytest.raises(ValueError):
        bus.topic_path("t")  # too short for Pub/Sub without a prefix
    for url in ["pubsub://", "pubsub://p?nope=1", "pubsub://p?ack_deadline=5", "pubsub://p/extra"]:
        with pytest.raises(ValueError):
            PubSubBus.from_url(url)


def test_setup_command_is_idempotent(pubsub_emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    from rvcloud.backends.bus.pubsub import main

    url = f"pubsub://{PROJECT}?topic_prefix=u{uuid.uuid4().hex[:10]}-"
    assert main(["setup", url, "rvcloud-stored", "rvcloud-converted"]) == 0
    assert main(["setup", url, "rvcloud-stored"]) == 0
    out = capsys.readouterr().out
    assert "rvcloud-stored-sub" in out and "rvcloud-converted.dead" in out
    bus = PubSubBus.from_url(url)
    try:
        sub = bus._subscriber().get_subscription(subscription=bus.subscription_path("rvcloud-stored"))
        assert sub.dead_letter_policy.dead_letter_topic == bus.topic_path("rvcloud-stored.dead")
        assert sub.dead_letter_policy.max_delivery_attempts == 5
        assert sub.ack_deadline_seconds == 60
    finally:
        bus.close()
