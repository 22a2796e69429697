"""The row model: one list of columns from which every storage schema is generated.

A row is a plain ``dict`` keyed by column name (that is what fastavro writes). The
Avro schema, the DuckDB DDL and the BigQuery schema are all derived from ``COLUMNS``
so that the three can never drift apart.

Design choices (see README "Row model"):
- IPv4 and IPv6 prefixes share one canonical text column (``prefix``), as bgpdump prints.
- ASNs are 64-bit everywhere (4-byte ASNs exceed int32).
- Absent optional attributes are NULL, never 0 (bgpdump prints 0 for a missing MED).
- RIB rows carry the dump time in ``timestamp`` and the route's age in ``originated_time``.
- List columns are never NULL: an absent attribute is an empty list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

ColumnType = Literal["timestamp", "int64", "int32", "string", "bool", "int64_list", "string_list"]

ELEM_TYPES: Final = ("RIB", "ANNOUNCE", "WITHDRAW", "STATE")
TABLES: Final = ("ribs", "updates")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool
    doc: str


COLUMNS: Final[tuple[Column, ...]] = (
    Column("timestamp", "timestamp", False, "Record time in microseconds (UTC); for RIB rows the dump time."),
    Column("originated_time", "timestamp", True, "RIB rows: when the collector learned the route."),
    Column("project", "string", False, "Archive project: routeviews, ris, ..."),
    Column("collector", "string", False, "Collector name, e.g. route-views2, route-views.jinx, rrc00."),
    Column("source_file", "string", False, "Archive path of the MRT file this row came from."),
    Column("elem_type", "string", False, "RIB, ANNOUNCE, WITHDRAW or STATE."),
    Column("peer_ip", "string", False, "Address of the BGP peer that sent the route."),
    Column("peer_asn", "int64", False, "ASN of the peer (4-byte ASNs as plain integers)."),
    Column("prefix", "string", True, "Canonical CIDR prefix, IPv4 or IPv6; NULL for STATE rows."),
    Column("path_id", "int64", True, "ADD-PATH path identifier (RFC 7911/8050)."),
    Column("afi", "int32", True, "Address family of the prefix: 1 IPv4, 2 IPv6."),
    Column("safi", "int32", True, "Subsequent AFI: 1 unicast, 2 multicast, 128 VPN, ..."),
    Column("next_hop", "string", True, "Next hop (NEXT_HOP or the MP_REACH global address)."),
    Column("next_hop_link_local", "string", True, "IPv6 link-local next hop from MP_REACH, if any."),
    Column(
        "as_path", "string", True, "AS path as bgpdump prints it: sets {a,b}, confederations (a b) / [a,b]."
    ),
    Column("as_path_asns", "int64_list", False, "AS path flattened to its ASNs (AS4_PATH merged)."),
    Column(
        "origin_asns",
        "int64_list",
        False,
        "Origin ASN(s): the last ASN, or all members of a trailing AS_SET.",
    ),
    Column("origin", "string", True, "ORIGIN attribute: IGP, EGP or INCOMPLETE."),
    Column("local_pref", "int64", True, "LOCAL_PREF; NULL when absent."),
    Column("med", "int64", True, "MULTI_EXIT_DISC; NULL when absent."),
    Column("communities", "string_list", False, "Standard communities as 'asn:value'."),
    Column("large_communities", "string_list", False, "Large communities as 'global:local1:local2'."),
    Column(
        "extended_communities",
        "string_list",
        False,
        "Extended communities (and IPv6 extended) as hex of the 8/20 bytes.",
    ),
    Column("atomic_aggregate", "bool", False, "ATOMIC_AGGREGATE present."),
    Column("aggregator_asn", "int64", True, "AGGREGATOR ASN (AS4_AGGREGATOR merged)."),
    Column("aggregator_ip", "string", True, "AGGREGATOR address."),
    Column("only_to_customer", "int64", True, "ONLY_TO_CUSTOMER (RFC 9234) ASN."),
    Column("originator_id", "string", True, "ORIGINATOR_ID (route reflection)."),
    Column("cluster_list", "string_list", False, "CLUSTER_LIST (route reflection)."),
    Column(
        "unknown_attributes",
        "string_list",
        False,
        "Unknown or deprecated attributes kept raw: 'type:flags:hex'.",
    ),
    Column("old_state", "string", True, "STATE rows: previous BGP FSM state name."),
    Column("new_state", "string", True, "STATE rows: new BGP FSM state name."),
    Column("record_index", "int64", False, "Index of the MRT record in the file (0-based)."),
    Column("record_offset", "int64", False, "Byte offset of the MRT record in the decompressed stream."),
)

COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in COLUMNS)

BGP_STATES: Final[dict[int, str]] = {
    0: "Unknown",
    1: "Idle",
    2: "Connect",
    3: "Active",
    4: "OpenSent",
    5: "OpenConfirm",
    6: "Established",
    7: "Clearing",
    8: "Deleted",
}


def table_for(elem_type: str) -> str:
    """The warehouse table a row of this element type belongs to."""
    return "ribs" if elem_type == "RIB" else "updates"


def empty_row() -> dict[str, Any]:
    """A row with every column at its 'absent' value (NULL or empty list)."""
    row: dict[str, Any] = {}
    for c in COLUMNS:
        row[c.name] = [] if c.type.endswith("_list") else (False if c.type == "bool" else None)
    return row


# ---- Avro -------------------------------------------------------------------------

_AVRO_BASE: Final[dict[ColumnType, Any]] = {
    "timestamp": {"type": "long", "logicalType": "timestamp-micros"},
    "int64": "long",
    "int32": "int",
    "string": "string",
    "bool": "boolean",
    "int64_list": {"type": "array", "items": "long"},
    "string_list": {"type": "array", "items": "string"},
}


def avro_schema(table: str) -> dict[str, Any]:
    """Avro record schema for one table (timestamps as timestamp-micros)."""
    fields: list[dict[str, Any]] = []
    for c in COLUMNS:
        base = _AVRO_BASE[c.type]
        if c.type.endswith("_list"):
            fields.append({"name": c.name, "type": base, "default": [], "doc": c.doc})
        elif c.nullable:
            fields.append({"name": c.name, "type": ["null", base], "default": None, "doc": c.doc})
        else:
            fields.append({"name": c.name, "type": base, "doc": c.doc})
    return {"type": "record", "name": f"{table}_row", "namespace": "rvcloud.v1", "fields": fields}


# ---- DuckDB -----------------------------------------------------------------------

_DUCKDB: Final[dict[ColumnType, str]] = {
    "timestamp": "TIMESTAMP",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "int64_list": "BIGINT[]",
    "string_list": "VARCHAR[]",
}


def duckdb_ddl(table: str) -> str:
    """CREATE TABLE statement for DuckDB (timestamps are naive UTC)."""
    cols = ",\n  ".join(
        f'"{c.name}" {_DUCKDB[c.type]}{"" if c.nullable or c.type.endswith("_list") else " NOT NULL"}'
        for c in COLUMNS
    )
    return f'CREATE TABLE IF NOT EXISTS "{table}" (\n  {cols}\n)'


# ---- BigQuery ---------------------------------------------------------------------

_BQ: Final[dict[ColumnType, str]] = {
    "timestamp": "TIMESTAMP",
    "int64": "INT64",
    "int32": "INT64",
    "string": "STRING",
    "bool": "BOOL",
    "int64_list": "INT64",
    "string_list": "STRING",
}


def bigquery_schema() -> list[dict[str, str]]:
    """BigQuery JSON schema (the same for both tables)."""
    out = []
    for c in COLUMNS:
        mode = "REPEATED" if c.type.endswith("_list") else ("NULLABLE" if c.nullable else "REQUIRED")
        out.append({"name": c.name, "type": _BQ[c.type], "mode": mode, "description": c.doc})
    return out


def bigquery_schema_json() -> str:
    return json.dumps(bigquery_schema(), indent=2) + "\n"
