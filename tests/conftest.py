"""Shared fixtures: where the real MRT sample files live, and their MANIFEST."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

# Session fixtures that start the Google emulators on demand (tests/emulators.py).
pytest_plugins = ["tests.emulators"]

REPO = Path(__file__).resolve().parent.parent


def shared_mrt_dir() -> Path:
    """`../shared/data/mrt` beside the repository (or $RVCLOUD_SHARED_MRT)."""
    env = os.environ.get("RVCLOUD_SHARED_MRT")
    return Path(env) if env else (REPO.parent / "shared" / "data" / "mrt")


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    size: int
    sha256: str
    types: str
    bgpdump_counts: dict[str, int]  # "B", "A", "W", "STATE" -> lines of bgpdump -m
    oracles: str  # "ok / ok / ok" or a description of disagreements

    @property
    def path(self) -> Path:
        return shared_mrt_dir() / self.name

    @property
    def all_ok(self) -> bool:
        return self.oracles.startswith("ok / ok / ok")


def load_manifest() -> list[ManifestEntry]:
    text = (shared_mrt_dir() / "MANIFEST.md").read_text()
    out = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        counts: dict[str, int] = {}
        for key, val in re.findall(r"\b(B|A|W|STATE)=(\d+)", cells[10]):
            counts[key] = int(val)
        out.append(ManifestEntry(name, int(cells[1]), cells[2].strip("`"), cells[6], counts, cells[11]))
    return out


@pytest.fixture(scope="session")
def shared_mrt() -> Path:
    d = shared_mrt_dir()
    if not (d / "MANIFEST.md").exists():
        pytest.fail(f"shared MRT files not found at {d} (set RVCLOUD_SHARED_MRT)")
    return d


@pytest.fixture(scope="session")
def manifest(shared_mrt: Path) -> list[ManifestEntry]:
    return load_manifest()
