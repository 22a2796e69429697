"""Fixtures for the MRT decoder tests."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def bgpdump_available() -> str:
    path = shutil.which("bgpdump")
    if path is None:
        pytest.fail("bgpdump not installed (Debian package bgpdump)")
    return path
