"""Emulator fixtures for the cloud-backend tests.

Until ``tests/conftest.py`` loads ``tests.emulators`` as a plugin, importing the
fixtures here registers them for this directory (the manager is a per-process
singleton, so a second registration does not start a second set of emulators).
"""

from tests.emulators import (  # noqa: F401 -- imported to register the fixtures
    bigquery_emulator,
    cloud_emulators,
    datastore_emulator,
    emulator_manager,
    gcs_emulator,
    pubsub_emulator,
)
