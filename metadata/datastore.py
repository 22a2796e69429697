"""Status store on Firestore in Datastore mode (URL ``datastore://PROJECT[?namespace=NS]``).

The cloud counterpart of ``metadata/sqlite.py``, with the same contract:

- One entity per (project, filename): kind ``File``, key name ``"{project}/{filename}"``
  (archive paths are at most 1024 bytes, so the key stays under Datastore's 1500-byte
  limit for key names).
- The properties the list filters use are indexed: ``project``, ``filename`` (the sort
  order), ``collector``, ``mrt_type``, ``status`` and ``file_time``. Every other field of
  the record is stored unindexed (an index entry per property would cost writes and
  storage for nothing); lists and dicts are JSON text, which also keeps them out of the
  per-value index limits. ``file_time`` is omitted when unknown, so an entity without a
  file time never matches a time range (Datastore skips entities lacking a filtered
  property), which is what the SQLite store's ``file_time >= ?`` does with NULL.
- ``update`` reads, mutates a copy and writes inside one Datastore transaction; a
  transaction that loses to a concurrent one (``Aborted``/``Conflict``) is retried with
  jittered exponential back-off, so a stage moves a file only from the state it read.
- ``list`` orders by the ``project`` and ``filename`` properties, not by key: the key name
  ``"a-b/x"`` sorts before ``"a/x"`` ('-' < '/'), but the interface promises
  (project, filename) order. Page tokens wrap Datastore query cursors, bound to the
  filter they were issued for (like the SQLite store's tokens).

Indexes: ``deploy/datastore/index.yaml`` has the composite indexes the filter
combinations need; its header explains which combinations are supported and why. The
emulator does not enforce indexes, so the conformance suite cannot catch a missing
one; ``tests/cloud_bq/test_datastore_indexes.py`` checks every combination
``list`` can issue against that file instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import random
import time
from dataclasses import dataclass, fields
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from google.api_core import exceptions as gexc
from google.cloud import datastore as _datastore
from google.cloud.datastore.query import PropertyFilter as _PropertyFilter

from rvcloud.metadata.record import FileRecord
from rvcloud.metadata.store import ListFilter, Mutator, Page, StatusStore

KIND: Final = "File"
MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 100
MAX_TX_TRIES: Final = 200
# A file_time range query reads all its matching keys to sort them (see
# _list_time_range); past this many it asks for a narrower filter instead.
MAX_RANGE_KEYS: Final = 200_000

# Indexed properties: what list() filters and sorts on.
INDEXED: Final[tuple[str, ...]] = ("project", "filename", "collector", "mrt_type", "status", "file_time")
# Equality filters list() can apply, in the order their composite indexes list them.
EQUALITY_FILTERS: Final[tuple[str, ...]] = ("collector", "mrt_type", "status")
SORT_ORDER: Final[tuple[str, ...]] = ("project", "filename")

# The library leaves most callables unannotated, which mypy --strict rejects call by call.
datastore: Any = _datastore
PropertyFilter: Any = _PropertyFilter

_FIELDS: Final = {f.name: f for f in fields(FileRecord)}
_JSON_FIELDS: Final = frozenset(
    name for name, f in _FIELDS.items() if str(f.type).startswith(("list", "dict"))
)
# Errors that mean "another transaction won; read again and retry".
_RETRYABLE: Final = (gexc.Aborted, gexc.Conflict, gexc.ServiceUnavailable, gexc.DeadlineExceeded)


class ConcurrentUpdateError(RuntimeError):
    """update() lost to concurrent transactions too many times in a row."""


def entity_key_name(project: str, filename: str) -> str:
    return f"{project}/{filename}"


def _filter_fingerprint(flt: ListFilter) -> str:
    raw = json.dumps(
        [flt.project, flt.collector, flt.mrt_type, flt.status, flt.file_time_from, flt.file_time_to]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_page_token(flt: ListFilter, kind: str, position: str) -> str:
    """Opaque token bound to the filter: ``kind`` "c" holds a Datastore cursor (the
    client's base64 form), "k" the key name of the last record returned."""
    raw = json.dumps({"f": _filter_fingerprint(flt), kind: position})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(flt: ListFilter, token: str) -> str:
    """The position in ``token`` (a cursor or a key name, whichever ``flt`` uses)."""
    kind = "k" if query_shape(flt).range_property is not None else "c"
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = json.loads(raw)
        position = d[kind]
        fp = d["f"]
        if not isinstance(position, str):
            raise TypeError(position)
        if kind == "c":
            base64.urlsafe_b64decode(position.encode())  # reject garbage before Datastore does
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"invalid page token {token!r}") from e
    if fp != _filter_fingerprint(flt):
        raise ValueError("page token was issued for a different filter")
    return position


def _split_key_name(name: str) -> tuple[str, str]:
    project, sep, filename = name.partition("/")
    if not sep:
        raise ValueError(f"not a File key name: {name!r}")
    return project, filename


def _matches(rec: FileRecord, flt: ListFilter) -> bool:
    ft = rec.file_time
    return (
        all(not getattr(flt, p) or getattr(rec, p) == getattr(flt, p) for p in ("project", *EQUALITY_FILTERS))
        and (flt.file_time_from is None or (ft is not None and ft >= flt.file_time_from))
        and (flt.file_time_to is None or (ft is not None and ft < flt.file_time_to))
    )


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What a list() query asks of the indexes: equality properties, range property, order."""

    equality: tuple[str, ...]
    range_property: str | None
    order: tuple[str, ...] = SORT_ORDER


def query_shape(flt: ListFilter) -> QueryShape:
    """The Datastore query list() issues for ``flt`` (used by the index.yaml check too)."""
    eq = tuple(p for p in ("project", *EQUALITY_FILTERS) if getattr(flt, p))
    if flt.file_time_from is not None or flt.file_time_to is not None:
        # Datastore: the first sort order must be the inequality property.
        return QueryShape(eq, "file_time", ("file_time",))
    return QueryShape(eq, None)


def record_to_properties(rec: FileRecord) -> dict[str, Any]:
    """Entity properties for a record (lists and dicts as JSON text; no None file_time)."""
    props: dict[str, Any] = {}
    for name, value in rec.to_dict().items():
        if name == "file_time" and value is None:
            continue  # absent, so no range filter matches it (see the module docstring)
        props[name] = json.dumps(value, sort_keys=True) if name in _JSON_FIELDS else value
    return props


def properties_to_record(props: dict[str, Any]) -> FileRecord:
    d: dict[str, Any] = {}
    for name, value in props.items():
        if name not in _FIELDS:
            continue  # a property written by a newer version: ignore, as from_dict does
        d[name] = json.loads(value) if name in _JSON_FIELDS and isinstance(value, str) else value
    return FileRecord.from_dict(d)


# ---- composite indexes ------------------------------------------------------------


def composite_indexes() -> list[tuple[str, ...]]:
    """The composite indexes (property lists, all ascending) list() needs; see index.yaml.

    - No time range: the query has equality filters and sorts by (project, filename).
      One index (X, project, filename) per equality property X, plus (project,
      filename); Datastore's zigzag merge join combines them for any set of equality
      filters, so 4 indexes serve all 16 combinations.
    - A file_time range: Datastore sorts by file_time first; the equality filters
      must prefix it. Merge joins are not used with inequality filters, so each
      non-empty equality set gets its own (equalities..., file_time) index (15); the
      range alone uses the built-in single-property index.
    """
    out: list[tuple[str, ...]] = [SORT_ORDER]
    out += [(p, *SORT_ORDER) for p in EQUALITY_FILTERS]
    props = ("project", *EQUALITY_FILTERS)
    for n in range(1, len(props) + 1):
        for combo in itertools.combinations(props, n):
            out.append((*combo, "file_time"))
    return out


def index_yaml() -> str:
    """deploy/datastore/index.yaml (``python -m rvcloud.metadata.datastore index-yaml``)."""
    lines = [
        "# Composite indexes of the Datastore status store (kind File).",
        "# Generated by `python -m rvcloud.metadata.datastore index-yaml > deploy/datastore/index.yaml`;",
        "# tests/cloud_bq/test_datastore_indexes.py fails when this file is stale.",
        "# Deploy: gcloud datastore indexes create deploy/datastore/index.yaml",
        "#",
        "# list() filters: project, collector, mrt_type, status (equality), file_time (range).",
        "# Without a time range it sorts by (project, filename): one (X, project, filename)",
        "# index per equality property plus (project, filename); zigzag merge joins combine",
        "# them for every set of equality filters (16 combinations, 4 indexes).",
        "# With a time range Datastore must sort by file_time first; list() then reads the",
        "# matching keys (keys-only) and sorts them itself. Every non-empty set of equality",
        "# filters gets its own (equalities..., file_time) index (15); a range alone uses the",
        "# built-in file_time index. The emulator does not enforce indexes.",
        "indexes:",
    ]
    for props in composite_indexes():
        lines.append(f"- kind: {KIND}")
        lines.append("  properties:")
        lines.extend(f"  - name: {p}" for p in props)
    return "\n".join(lines) + "\n"


def index_serves(shape: QueryShape, indexes: list[tuple[str, ...]]) -> bool:
    """Whether ``indexes`` (plus the built-in ones) serve a query of ``shape``."""
    eq = set(shape.equality)
    if shape.range_property is not None:
        if not eq:
            return True  # built-in single-property index on the range property
        return any(
            set(ix[:-1]) == eq and ix[-1] == shape.range_property and len(ix) == len(eq) + 1 for ix in indexes
        )
    # Equality filters + sort (zigzag merge join): each equality property X needs an
    # index (X, *order); an equality on the first sort property is served by the
    # sort-order index itself.
    for p in eq or {shape.order[0]}:
        want = shape.order if p == shape.order[0] else (p, *shape.order)
        if want not in indexes:
            return False
    return True


class DatastoreStatusStore(StatusStore):
    """See the module docstring. Thread-safe (the client is; transactions are per call)."""

    def __init__(self, client: _datastore.Client, namespace: str | None = None) -> None:
        self._client: Any = client
        self.namespace = namespace or None

    @classmethod
    def from_url(cls, url: str) -> DatastoreStatusStore:
        """``datastore://PROJECT[?namespace=NS]``; the emulator via DATASTORE_EMULATOR_HOST."""
        parts = urlsplit(url)
        if parts.scheme != "datastore" or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"invalid Datastore URL {url!r}: expected datastore://PROJECT[?namespace=NS]")
        params = parse_qs(parts.query)
        unknown = set(params) - {"namespace"}
        if unknown:
            raise ValueError(f"URL {url!r}: unknown parameter(s) {sorted(unknown)} (allowed: namespace)")
        namespace = params.get("namespace", [""])[-1] or None
        # With DATASTORE_EMULATOR_HOST set the client talks to the emulator without
        # credentials by itself (and refuses explicit ones).
        return cls(datastore.Client(project=parts.netloc, namespace=namespace), namespace)

    def __repr__(self) -> str:
        return f"DatastoreStatusStore(project={self._client.project!r}, namespace={self.namespace!r})"

    def _key(self, project: str, filename: str) -> Any:
        if "/" in project:  # the key name splits at the first '/'
            raise ValueError(f"invalid project {project!r}: must not contain '/'")
        return self._client.key(KIND, entity_key_name(project, filename), namespace=self.namespace)

    def _entity(self, rec: FileRecord) -> Any:
        props = record_to_properties(rec)
        ent: Any = datastore.Entity(
            key=self._key(rec.project, rec.filename),
            exclude_from_indexes=tuple(p for p in props if p not in INDEXED),
        )
        ent.update(props)
        return ent

    def get(self, project: str, filename: str) -> FileRecord | None:
        ent = self._client.get(self._key(project, filename))
        return None if ent is None else properties_to_record(dict(ent))

    def update(self, project: str, filename: str, mutate: Mutator) -> tuple[FileRecord | None, bool]:
        key = self._key(project, filename)
        delay = 0.01
        for _attempt in range(MAX_TX_TRIES):
            try:
                with self._client.transaction() as txn:
                    ent = self._client.get(key, transaction=txn)
                    current = None if ent is None else properties_to_record(dict(ent))
                    # A fresh decode is the mutator's private copy: in-place changes
                    # to it cannot leak into `current`.
                    arg = None if ent is None else properties_to_record(dict(ent))
                    new = mutate(arg)
                    if new is None or new == current:
                        return current, False  # commits an empty (read-only) transaction
                    if new.project != project or new.filename != filename:
                        raise ValueError(
                            f"mutator changed the record key to ({new.project!r}, {new.filename!r}); "
                            f"expected ({project!r}, {filename!r})"
                        )
                    txn.put(self._entity(new))
                return new, True
            except _RETRYABLE:
                # Another transaction touched the entity first: back off (with jitter,
                # so contending writers spread out) and run the mutator on fresh data.
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 1.0)
        raise ConcurrentUpdateError(f"update of ({project!r}, {filename!r}) lost {MAX_TX_TRIES} transactions")

    def _query(self, flt: ListFilter, shape: QueryShape, *, keys_only: bool = False) -> Any:
        q = self._client.query(kind=KIND, namespace=self.namespace)
        for prop in shape.equality:
            q.add_filter(filter=PropertyFilter(prop, "=", getattr(flt, prop)))
        if flt.file_time_from is not None:
            q.add_filter(filter=PropertyFilter("file_time", ">=", flt.file_time_from))
        if flt.file_time_to is not None:
            q.add_filter(filter=PropertyFilter("file_time", "<", flt.file_time_to))
        q.order = list(shape.order)
        if keys_only:
            q.keys_only()
        return q

    def list(self, flt: ListFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page:
        if page_size <= 0:
            page_size = DEFAULT_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)
        shape = query_shape(flt)
        if shape.range_property is not None:
            return self._list_time_range(flt, shape, page_size, page_token)
        start = decode_page_token(flt, page_token).encode() if page_token else None
        try:
            it = self._query(flt, shape).fetch(limit=page_size, start_cursor=start)
            records = [properties_to_record(dict(e)) for e in it]
        except gexc.InvalidArgument as e:  # a cursor Datastore cannot parse
            raise ValueError(f"invalid page token {page_token!r}: {e}") from e
        token = ""
        end = it.next_page_token  # None once Datastore says there are no more results
        if len(records) == page_size and end:
            # A page that ends exactly at the last match would otherwise hand out a
            # token for an empty page; one keys-only probe tells the two apart.
            cursor = end if isinstance(end, bytes) else str(end).encode()
            if list(self._query(flt, shape, keys_only=True).fetch(limit=1, start_cursor=cursor)):
                token = encode_page_token(flt, "c", cursor.decode())
        return Page(records, token)

    def _list_time_range(self, flt: ListFilter, shape: QueryShape, page_size: int, page_token: str) -> Page:
        """A file_time range: Datastore sorts such a query by file_time first, never by
        (project, filename). So fetch the matching *keys* (keys-only: cheap small
        operations) in file_time order, sort them by (project, filename) here, and read
        only the entities of the requested page. The token is the last key returned."""
        after = _split_key_name(decode_page_token(flt, page_token)) if page_token else None
        keys: list[tuple[str, str]] = []
        for ent_key in self._query(flt, shape, keys_only=True).fetch(limit=MAX_RANGE_KEYS + 1):
            keys.append(_split_key_name(str(ent_key.key.name)))
        if len(keys) > MAX_RANGE_KEYS:
            raise ValueError(
                f"the file_time range matches more than {MAX_RANGE_KEYS} files; "
                "narrow it or add a collector, type or status filter"
            )
        keys.sort()
        if after is not None:
            keys = [k for k in keys if k > after]
        page_keys = keys[:page_size]
        ents = self._client.get_multi([self._key(p, f) for p, f in page_keys]) if page_keys else []
        by_key = {(str(e["project"]), str(e["filename"])): properties_to_record(dict(e)) for e in ents}
        # An entity changed since the key query may no longer match: drop it.
        records = [by_key[k] for k in page_keys if k in by_key and _matches(by_key[k], flt)]
        token = ""
        if len(keys) > page_size:
            last = page_keys[-1]
            token = encode_page_token(flt, "k", entity_key_name(*last))
        return Page(records, token)

    def ping(self) -> None:
        q = self._client.query(kind=KIND, namespace=self.namespace)
        q.keys_only()
        list(q.fetch(limit=1))

    def close(self) -> None:
        self._client.close()


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["index-yaml"]:
        sys.exit("usage: python -m rvcloud.metadata.datastore index-yaml")
    sys.stdout.write(index_yaml())
