"""The file status record: what the service knows about one archive file.

One record per (project, filename). Every stage moves it with a compare-and-set on
(sha256, stage), so a duplicate or late event changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

STATUSES: Final = ("NONE", "IN_PROGRESS", "DONE", "FAILED")
# Stage order; a record's stage only moves forward for one sha256.
STAGES: Final = ("receiving", "stored", "converting", "converted", "loading", "loaded")


@dataclass(slots=True)
class FileRecord:
    project: str
    filename: str  # archive path, e.g. route-views.amsix/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2
    status: str = "NONE"
    stage: str = ""
    collector: str = ""
    mrt_type: str = ""  # RIB or UPDATES (from content; path checked against it)
    content_type: str = ""
    content_encoding: str = ""  # bzip2, gzip, none (from magic bytes)
    size: int = 0
    sha256: str = ""
    file_time: int | None = None  # unix seconds, from the name
    created_at: float = 0.0
    updated_at: float = 0.0
    bytes_received: int = 0
    raw_uri: str = ""
    avro_uris: list[str] = field(default_factory=list)
    records_read: int = 0
    rows_by_type: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)
    warehouse_tables: list[str] = field(default_factory=list)
    load_id: str = ""
    # sha256 of the version this upload replaces when that version had reached the
    # warehouse: the loader must delete its rows (only then, to spare DML quota).
    replaced_sha256: str = ""
    # Times the sweeper re-published this file's event (see metadata/sweeper.py).
    sweeps: int = 0
    error: str = ""
    attempts: int = 0
    lease_owner: str = ""
    lease_until: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
