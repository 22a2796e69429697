"""The emulator harness itself: every emulator answers, its variables are exported, and
the official client libraries reach it through them."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from tests.emulators import PROJECT, CloudEmulators


def test_all_emulators_answer_and_export_env(cloud_emulators: CloudEmulators) -> None:
    env = cloud_emulators.env
    assert env["STORAGE_EMULATOR_HOST"] == cloud_emulators.gcs.url
    assert env["PUBSUB_EMULATOR_HOST"] == cloud_emulators.pubsub.address
    assert env["DATASTORE_EMULATOR_HOST"] == cloud_emulators.datastore.address
    assert env["BIGQUERY_EMULATOR_HOST"] == cloud_emulators.bigquery.url
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT
    for k, v in env.items():
        assert os.environ[k] == v
    for emu in (
        cloud_emulators.gcs,
        cloud_emulators.pubsub,
        cloud_emulators.datastore,
        cloud_emulators.bigquery,
    ):
        assert emu.alive(), emu.name
        assert emu.host == "127.0.0.1" and emu.port > 0
    with urllib.request.urlopen(cloud_emulators.gcs.url + "/storage/v1/b", timeout=5) as r:
        assert r.status == 200


def test_subprocesses_inherit_the_emulator_env(cloud_emulators: CloudEmulators) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; print(os.environ['PUBSUB_EMULATOR_HOST'], os.environ['STORAGE_EMULATOR_HOST'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [cloud_emulators.pubsub.address, cloud_emulators.gcs.url]


def test_clients_reach_the_emulators(cloud_emulators: CloudEmulators) -> None:
    from google.api_core.exceptions import NotFound
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, datastore, pubsub_v1, storage

    gcs = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    b = gcs.create_bucket("emulator-selftest")
    b.blob("x").upload_from_string(b"hi")
    assert b.blob("x").download_as_bytes() == b"hi"

    pub = pubsub_v1.PublisherClient()
    topic = pub.topic_path(PROJECT, "emulator-selftest")
    pub.create_topic(name=topic)
    assert pub.get_topic(topic=topic).name == topic

    ds = datastore.Client(project=PROJECT)
    key = ds.key("SelfTest", "a")
    ent = datastore.Entity(key)
    ent["v"] = 1
    ds.put(ent)
    assert ds.get(key)["v"] == 1
    # Firestore-in-Datastore mode: a non-ancestor query sees the write at once.
    assert [e["v"] for e in ds.query(kind="SelfTest").fetch()] == [1]

    bq = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())
    bq.create_dataset("emulator_selftest")
    assert bq.get_dataset("emulator_selftest").dataset_id == "emulator_selftest"
    try:
        bq.get_table("emulator_selftest.missing")
        raise AssertionError("expected NotFound")
    except NotFound:
        pass
