"""Row counts against the MANIFEST (bgpdump -m line counts) and the stats invariant on every file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvcloud.mrt import DecodeStats, is_record_reason, mrt_kind
from tests.conftest import ManifestEntry, load_manifest
from tests.mrt.mrt_helpers import iter_rows

_KEY = {"B": "RIB", "A": "ANNOUNCE", "W": "WITHDRAW", "STATE": "STATE"}
_ENTRIES = load_manifest()


_STATS: dict[str, DecodeStats] = {}


def _decode_counts(entry: ManifestEntry) -> DecodeStats:
    """Decode once per file for both tests (rows are counted, not kept)."""
    stats = _STATS.get(entry.name)
    if stats is None:
        stats = DecodeStats()
        for _ in iter_rows(entry.path, stats):
            pass
        _STATS[entry.name] = stats
    return stats


@pytest.mark.parametrize("entry", [e for e in _ENTRIES if e.all_ok], ids=lambda e: e.name)
def test_rows_by_type_equal_bgpdump(manifest: list[ManifestEntry], entry: ManifestEntry) -> None:
    stats = _decode_counts(entry)
    expected = {_KEY[k]: v for k, v in entry.bgpdump_counts.items()}
    got = {k: v for k, v in stats.rows_by_type.items() if v}
    assert got == expected
    assert stats.invariant_ok(), stats.to_dict()


@pytest.mark.parametrize("entry", _ENTRIES, ids=lambda e: e.name)
def test_every_record_is_accounted_for(manifest: list[ManifestEntry], entry: ManifestEntry) -> None:
    stats = _decode_counts(entry)
    record_skips = sum(v for k, v in stats.skipped_by_reason.items() if is_record_reason(k))
    assert stats.records_read == stats.records_with_rows + record_skips
    assert stats.records_read == sum(stats.mrt_types.values()) + stats.skipped_by_reason.get(
        "truncated_record", 0
    )
    assert sum(stats.rows_by_type.values()) >= stats.records_with_rows
    assert len(stats.first_errors) <= 20
    rib = "TABLE_DUMP" in entry.types or "BGP4MP/ENTRY" in entry.types
    assert mrt_kind(stats) == ("RIB" if rib else "UPDATES")


def test_manifest_has_all_files(shared_mrt: Path) -> None:
    assert len(_ENTRIES) == 43
    assert all(e.path.exists() for e in _ENTRIES)
