"""``rvcloud convert`` and ``rvcloud query``: work on local files without the service.

Both need the ``[server]`` extra (fastavro, duckdb); those packages are imported only
when one of these commands runs, so the uploader keeps working without them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Final

from rvcloud.cli.client import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rvcloud.cli.records import format_table
from rvcloud.cli.upload import DEFAULT_PROJECT

CONVERT_EXAMPLES: Final = """\
examples:
  rvcloud convert -o out/ route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2
  rvcloud convert --format ndjson -o out/ ~/mrt/route-views2/bgpdata/2024.01/UPDATES/*.bz2
  rvcloud convert -o out/ ./rib.bz2 --filename route-views.amsix/bgpdata/2024.01/RIBS/rib.20240101.0000.bz2

One JSON summary line per converted file goes to stdout; errors go to stderr and the
other files are still converted. Exit code 1 if any file failed.
"""

QUERY_EXAMPLES: Final = """\
examples:
  rvcloud query "SELECT count(*) FROM ribs"
  rvcloud query --data-dir /srv/rvcloud-data --json \\
      "SELECT peer_asn, count(*) FROM updates GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
  rvcloud query --warehouse duckdb:///srv/wh.duckdb "SELECT * FROM ribs LIMIT 5"

Without --data-dir or --warehouse the warehouse comes from RVCLOUD_WAREHOUSE (blob store
from RVCLOUD_BLOB), else ./rvcloud-data.
"""

# A guard against running a modifying statement by mistake, not a security boundary:
# whoever can run this command can open the warehouse file directly anyway.
_READ_ONLY_STATEMENTS: Final = frozenset(
    {"SELECT", "WITH", "FROM", "VALUES", "TABLE", "SHOW", "DESCRIBE", "SUMMARIZE", "EXPLAIN"}
)


def _server_extra_missing(command: str, err: ImportError) -> int:
    print(
        f"error: rvcloud {command} needs the server packages ({err.name or err} is missing): "
        "pip install 'rvcloud[server]'",
        file=sys.stderr,
    )
    return EXIT_USAGE


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="MRT files (bzip2, gzip or uncompressed)")
    parser.add_argument(
        "--format", choices=("avro", "ndjson"), default="avro", help="output format (default avro)"
    )
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the output files")
    parser.add_argument(
        "--project", default=DEFAULT_PROJECT, help=f"project recorded in the rows (default {DEFAULT_PROJECT})"
    )
    parser.add_argument(
        "--filename",
        metavar="ARCHIVE_PATH",
        help="archive path recorded in the rows (only with one FILE; default: FILE's path "
        "from the collector directory on)",
    )


def run_convert(args: argparse.Namespace) -> int:
    if args.filename and len(args.files) > 1:
        print("error: --filename applies to one FILE only", file=sys.stderr)
        return EXIT_USAGE
    names = [os.path.basename(f) for f in args.files]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        # Outputs are named after the input's file name: one would overwrite the other.
        print(
            f"error: several inputs are named {', '.join(clash)}; convert them into different -o directories",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        from rvcloud.converter_worker.convert import convert_local_file
    except ImportError as e:
        return _server_extra_missing("convert", e)
    os.makedirs(args.output, exist_ok=True)
    failed = 0
    for path in args.files:
        if not os.path.isfile(path):
            print(f"error: {path}: no such file", file=sys.stderr)
            failed += 1
            continue
        try:
            summary = convert_local_file(path, args.output, args.format, args.project, args.filename)
        except Exception as e:
            # One bad file in a batch must not stop the others.
            print(f"error: {path}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(json.dumps(summary), flush=True)
    if failed:
        print(f"{failed} of {len(args.files)} files failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def add_query_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", metavar="DIR", help="data directory of `rvcloud local`")
    where.add_argument(
        "--warehouse", metavar="URL", help="warehouse URL, e.g. duckdb:///path/warehouse.duckdb"
    )
    parser.add_argument("sql", metavar="SQL", help="a read-only query (SELECT, WITH, SHOW, DESCRIBE, ...)")
    parser.add_argument("--json", action="store_true", help="print each row as a JSON array on its own line")


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def run_query(args: argparse.Namespace) -> int:
    words = args.sql.lstrip(" \t\r\n(").split(None, 1)
    if not words or words[0].upper() not in _READ_ONLY_STATEMENTS:
        first = words[0] if words else "(empty)"
        print(
            f"error: {first!r} does not start a read-only query; only read-only queries are allowed "
            "(SELECT, WITH, SHOW, DESCRIBE, ...)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from rvcloud.backends.settings import Settings, embedded_urls

    if args.data_dir is not None:
        if not os.path.isdir(args.data_dir):
            print(f"error: {args.data_dir}: no such directory", file=sys.stderr)
            return EXIT_USAGE
        urls = embedded_urls(args.data_dir)
    else:
        settings = Settings.from_env({"warehouse": args.warehouse})
        urls = {"blob": settings.blob, "warehouse": settings.warehouse}
        local = urls["warehouse"].removeprefix("duckdb://")
        if urls["warehouse"].startswith("duckdb://") and not os.path.exists(local):
            # Opening would create an empty warehouse here: say what is missing instead.
            print(
                f"error: no warehouse at {local}: pass --data-dir DIR (the service's data directory) "
                "or --warehouse URL",
                file=sys.stderr,
            )
            return EXIT_USAGE
    try:
        from rvcloud.backends.factory import open_blob_store, open_warehouse

        warehouse = open_warehouse(urls["warehouse"], open_blob_store(urls["blob"]))
    except ImportError as e:
        return _server_extra_missing("query", e)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        rows = warehouse.query(args.sql)
    except Exception as e:
        # The warehouse library's own error types are not importable here without it.
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        warehouse.close()
    if args.json:
        for row in rows:
            # default=str covers dates, decimals and other non-JSON column types.
            print(json.dumps(list(row), default=str))
    else:
        print(format_table([[_cell(v) for v in row] for row in rows]))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", file=sys.stderr)
    return EXIT_OK
