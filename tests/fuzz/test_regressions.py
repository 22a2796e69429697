"""Replays every committed fuzz finding (tests/fuzz/regressions/TARGET-HASH.bin) and the
hand-made cases below through its target; none may break a decoder guarantee."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fuzz_seeds  # noqa: E402
import fuzz_targets  # noqa: E402

FILES = sorted((HERE / "regressions").glob("*.bin"))
# Known, not yet fixed decoder bugs: file name -> reason (xfail strict, so a fix is noticed).
KNOWN_BUGS: dict[str, str] = {}


def test_regression_files() -> None:
    """Each committed finding replays through its target (none committed until one is found)."""
    for path in FILES:
        target = path.name.split("-", 1)[0]
        assert target in fuzz_targets.TARGETS, f"{path.name}: no target {target!r}"
        if path.name in KNOWN_BUGS:
            continue
        fuzz_targets.TARGETS[target](path.read_bytes())


@pytest.mark.parametrize("target", sorted(fuzz_targets.TARGETS))
def test_seeds_pass(target: str, shared_mrt: Path) -> None:
    """Every generated seed decodes within the guarantees (the fuzzers start from these)."""
    items = fuzz_seeds.seeds(target, shared_mrt)
    assert len(items) > 20
    for data in items:
        fuzz_targets.TARGETS[target](data)


EDGE_CASES = [
    ("framing", b""),
    ("framing", b"\x00" * 11),
    ("framing", b"\x00" * 12),
    ("framing", b"\xff" * 64),
    ("rib", b"\x00"),
    ("rib", b"\x01" + b"\xff" * 40),
    ("rib", b"\x02\x00\x00\x00\x00\x20\x0a\x00\x00\x00\xff\xff"),  # 65535 entries announced, none present
    ("update", b"\x01"),
    ("update", b"\x01\xff\xff\xff\xff"),  # lengths past the end
    ("update", b"\x01\x00\x00\x00\x04\x50\x02\x00\x00"),  # extended-length flag, length past the end
    ("nlri", b"\x00\x21\x0a\x00\x00\x00\x00"),  # /33 in IPv4
    ("nlri", b"\x01\x81" + b"\xff" * 16),  # /129 in IPv4 NLRI
    ("nlri", b"\x02\x81" + b"\xff" * 17),  # /129 in MP_REACH
    ("nlri", b"\x0b\x00\x00\x00\x01\x80" + b"\x20" * 16),  # ADD-PATH MP_UNREACH
]


@pytest.mark.parametrize(("target", "data"), EDGE_CASES)
def test_edge_case(target: str, data: bytes) -> None:
    fuzz_targets.TARGETS[target](data)
