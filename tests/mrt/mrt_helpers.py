"""Helpers for the MRT decoder tests: decode a shared file, run and parse bgpdump -m."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rvcloud.mrt import DecodeStats, decode_rows, open_decompressed
from rvcloud.mrt.schema import BGP_STATES

BGPDUMP = shutil.which("bgpdump") or "/usr/bin/bgpdump"

ELEM = {"B": "RIB", "A": "ANNOUNCE", "W": "WITHDRAW", "STATE": "STATE"}
WELL_KNOWN = {"no-export": "65535:65281", "no-advertise": "65535:65282", "local-AS": "65535:65283"}
_STATE_NUM = {v: k for k, v in BGP_STATES.items()}


def iter_rows(path: Path, stats: DecodeStats) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        stream, _ = open_decompressed(f)
        yield from decode_rows(stream, project="test", collector="c", source_file=path.name, stats=stats)


def decode_file(path: Path) -> tuple[list[dict[str, Any]], DecodeStats]:
    stats = DecodeStats()
    return list(iter_rows(path, stats)), stats


def bgpdump_lines(path: Path) -> Iterator[str]:
    """``bgpdump -m -v -l`` output lines, streamed."""
    proc = subprocess.Popen(
        [BGPDUMP, "-m", "-v", "-l", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            yield line.rstrip("\n")
    finally:
        proc.stdout.close()
        proc.wait()


def _net(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False).compressed)


def _ip(text: str) -> str:
    """bgpdump's IPv6 text is not RFC 5952 (it writes "::" for one zero group): normalise."""
    return str(ipaddress.ip_address(text).compressed)


def compare_line(row: dict[str, Any], line: str) -> list[str]:
    """Differences between one of our rows and one ``bgpdump -m -l`` line (empty when equal)."""
    f = line.split("|")
    diffs: list[str] = []

    def check(name: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            diffs.append(f"{name}: ours={ours!r} bgpdump={theirs!r}")

    sec, _, usec = f[1].partition(".")
    check("timestamp", row["timestamp"], int(sec) * 1_000_000 + int(usec or 0))
    check("elem_type", row["elem_type"], ELEM[f[2]])
    check("peer_ip", row["peer_ip"], _ip(f[3]))
    check("peer_asn", row["peer_asn"], int(f[4]))
    if f[2] == "STATE":
        check("old_state", _STATE_NUM.get(row["old_state"]), int(f[5]))
        check("new_state", _STATE_NUM.get(row["new_state"]), int(f[6]))
        return diffs
    if f[0] == "BGP" and f[2] == "W":
        # bgpdump -m prints the peer address instead of the withdrawn prefix of type 5 records.
        return diffs
    check("prefix", row["prefix"], _net(f[5]))
    rest = f[6:]
    if f[0].endswith("_AP"):
        check("path_id", row["path_id"], int(rest[0]))
        rest = rest[1:]
    if f[2] == "W":
        return diffs
    if f[0] == "BGP":
        # Legacy type 5 lines have no large-communities field, and bgpdump glues the
        # communities onto the MED ("0" + "8918:60 8918:1000" -> "08918:60 8918:1000").
        med_comm, ag, agg = rest[4:7]
        names = {v: k for k, v in WELL_KNOWN.items()}
        ours = " ".join(names.get(c, c) for c in row["communities"])
        check("med+communities", f"{row['med'] or 0}{ours}", med_comm)
        rest = [*rest[:4], str(row["med"] or 0), " ".join(row["communities"]), "", ag, agg]
    path, origin, nh, lp, med, comm, lcomm, ag, agg = rest[:9]
    check("as_path", row["as_path"] or "", path)
    check("origin", row["origin"] or "INCOMPLETE", origin)
    if row["next_hop"] is None:
        if nh not in ("0.0.0.0", "255.255.255.255", "::"):
            diffs.append(f"next_hop: ours=None bgpdump={nh!r}")
    else:
        check("next_hop", row["next_hop"], _ip(nh))
    check("local_pref", row["local_pref"] or 0, int(lp))
    check("med", row["med"] or 0, int(med))
    check("communities", row["communities"], [WELL_KNOWN.get(c, c) for c in comm.split()])
    check("large_communities", row["large_communities"], lcomm.split())
    check("atomic_aggregate", row["atomic_aggregate"], ag == "AG")
    theirs_agg = agg.split() if agg else [None, None]
    check(
        "aggregator",
        [row["aggregator_asn"], row["aggregator_ip"]],
        [
            int(theirs_agg[0]) if theirs_agg[0] else None,
            theirs_agg[1],
        ],
    )
    return diffs
