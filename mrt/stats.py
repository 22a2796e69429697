"""Decode statistics: what was read, what became rows, and what was skipped and why.

Every MRT record the framer delimits is counted in ``records_read`` and ends up in
exactly one of two places: it produced at least one row, or it is counted once in
``skipped_by_reason`` under a *record reason*. That makes the invariant

    records_read == records_with_rows + sum(record reasons)

checkable by any consumer. Keys of ``skipped_by_reason`` come in three kinds:

- plain names (``"keepalive"``, ``"malformed_attribute"``, ``"truncated_record"`` ...)
  count MRT records; only these take part in the invariant;
- ``"bytes:..."`` count bytes of the decompressed stream that were not framed as
  records at all (damaged framing skipped by the resync scan);
- ``"note:..."`` count events inside records that did produce rows (a repaired
  length, an NLRI tail that was dropped, RIB entries that could not be decoded ...).

Record reasons: ``keepalive``, ``open``, ``notification``, ``route_refresh``,
``bgp_message_type:N``, ``end_of_rib``, ``empty_update``, ``peer_index_table``,
``missing_peer_index_table``, ``empty_rib_record``, ``malformed_rib_record``,
``malformed_attribute``, ``malformed_update``, ``malformed_bgp_message``,
``bad_bgp_marker``, ``malformed_prefix``, ``malformed_peer_index_table``,
``malformed_record``, ``short_state_change``, ``truncated_open``,
``missing_peer_address``, ``unsupported_peer_afi``, ``unsupported_afi_safi``,
``malformed_nlri``,
``unsupported_type:T/S``, ``unsupported_subtype:T/S``, ``truncated_record``.

Byte reasons: ``bytes:resync_skipped``.

Notes: ``note:td1_length_plus_4``, ``note:addpath_nlri_detected``,
``note:nlri_malformed_tail``, ``note:unsupported_afi_safi:A/S``,
``note:rib_entries_lost``, ``note:td1_trailing_bytes``, ``note:attribute_problem``,
``note:bgp_length_exceeds_record``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

MAX_ERRORS: Final = 20

BYTES_PREFIX: Final = "bytes:"
NOTE_PREFIX: Final = "note:"

_RIB_FAMILIES: Final = ("TABLE_DUMP/", "TABLE_DUMP_V2/", "BGP4MP/ENTRY")
_UPDATE_FAMILIES: Final = ("BGP4MP/", "BGP4MP_ET/", "BGP/")


def is_record_reason(reason: str) -> bool:
    """True when ``reason`` counts whole MRT records (as opposed to bytes or notes)."""
    return not (reason.startswith(BYTES_PREFIX) or reason.startswith(NOTE_PREFIX))


@dataclass
class DecodeStats:
    """Counters filled in by :func:`rvcloud.mrt.decode_rows` while it runs."""

    records_read: int = 0
    rows_by_type: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)
    truncated_at: int | None = None
    mrt_types: dict[str, int] = field(default_factory=dict)
    # Records that produced at least one row; kept so the invariant can be checked.
    records_with_rows: int = 0

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + n

    def error(self, msg: str) -> None:
        if len(self.first_errors) < MAX_ERRORS:
            self.first_errors.append(msg)

    def records_skipped(self) -> int:
        """Sum of the record reasons (the ``bytes:`` and ``note:`` keys excluded)."""
        return sum(v for k, v in self.skipped_by_reason.items() if is_record_reason(k))

    def invariant_ok(self) -> bool:
        return self.records_read == self.records_with_rows + self.records_skipped()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mrt_kind(stats: DecodeStats) -> str:
    """``"RIB"`` for table dumps, ``"UPDATES"`` for BGP message streams, ``""`` if nothing decoded.

    A file mixing both is classified by the family with more records.
    """
    rib = upd = 0
    for name, n in stats.mrt_types.items():
        if name.startswith(_RIB_FAMILIES):
            rib += n
        elif name.startswith(_UPDATE_FAMILIES):
            upd += n
    if rib == 0 and upd == 0:
        return ""
    return "RIB" if rib >= upd else "UPDATES"
