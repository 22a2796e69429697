"""Fixtures of the uploader tests: a generated archive tree and a HOME without settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import gateway
from tests.uploader.tree import Tree, make_tree

__all__ = ["archive_tree", "gateway", "home"]  # gateway: the in-process fake of tests/cli


@pytest.fixture(scope="session")
def archive_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Two collectors + old route-views2 + RIS over two months, synthetic and real files (read-only)."""
    return make_tree(tmp_path_factory.mktemp("archive"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h
