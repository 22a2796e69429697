"""``rvcloud status`` and ``rvcloud list``: what the service knows about archive files."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from typing import Final

import grpc

from rvcloud.cli.client import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Endpoint,
    GatewayClient,
    UsageError,
    is_not_found,
    open_channel,
    rpc_error_exit,
)
from rvcloud.cli.config import Settings, resolve
from rvcloud.cli.records import describe, format_table, human_size, record_to_dict, status_name, total_rows
from rvcloud.cli.upload import _positive_int, add_gateway_arguments
from rvcloud.metadata.record import STATUSES
from rvcloud.v1 import gateway_pb2

DEFAULT_PAGE_SIZE: Final = 100
_DATE_ONLY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")

STATUS_EXAMPLES: Final = """\
examples:
  rvcloud status -d localhost:50051 route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2
  rvcloud status -d https://ingest.example.org --project ris --json rrc00/2024.01/updates.20240101.0000.gz

exit codes: 0 found; 1 no such file (or another error from the service); 2 usage error;
3 service unreachable.
"""

LIST_EXAMPLES: Final = """\
examples:
  rvcloud list -d localhost:50051 --collector route-views.jinx --type RIB --since 2024-01-01
  rvcloud list -d localhost:50051 --status FAILED --all
  rvcloud list -d localhost:50051 --since 2024-01-01T06:00 --until 2024-01-02 --json

--since and --until compare with the time in the file name, in UTC unless an offset is
given. --since is inclusive, --until exclusive; a bare date as --until includes that day.
"""


def _connect(args: argparse.Namespace) -> tuple[Settings, Endpoint, grpc.Channel] | int:
    """Settings, endpoint and an open channel for a gateway query, or a usage exit code."""
    try:
        settings = resolve(args)
        endpoint = settings.endpoint()
        return settings, endpoint, open_channel(endpoint, ca_file=settings.ca)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("filename", metavar="FILENAME", help="archive path of the file, as uploaded")
    parser.add_argument("--json", action="store_true", help="print the status record as one JSON object")


def run_status(args: argparse.Namespace) -> int:
    connected = _connect(args)
    if isinstance(connected, int):
        return connected
    settings, endpoint, channel = connected
    with channel:
        try:
            record = GatewayClient(channel, token=settings.token).get_file(settings.project, args.filename)
        except grpc.RpcError as e:
            if is_not_found(e):
                print(f"not found: {args.filename} (project {settings.project})", file=sys.stderr)
                return EXIT_FAILED
            return rpc_error_exit(e, endpoint)
    if args.json:
        print(json.dumps(record_to_dict(record)))
    else:
        lines = describe(record)
        width = max(len(label) for label, _ in lines)
        for label, value in lines:
            print(f"{label + ':':<{width + 1}} {value}")
    # Scripts ask `rvcloud status NAME && ...`: a FAILED file is a failure, as for upload.
    return EXIT_FAILED if record.status == gateway_pb2.STATUS_FAILED else EXIT_OK


def _timestamp(text: str, *, end_of_day: bool) -> int:
    """Unix seconds of an ISO date or date-time (UTC unless it carries an offset)."""
    if _DATE_ONLY.fullmatch(text):
        day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end_of_day else 0)
        return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp())


def since(text: str) -> int:
    """argparse type of --since: an ISO date or date-time as unix seconds (inclusive)."""
    return _timestamp(text, end_of_day=False)


def until(text: str) -> int:
    """argparse type of --until: exclusive, but a bare date includes that whole day."""
    return _timestamp(text, end_of_day=True)


def _since(text: str) -> int:
    return _timestamp(text, end_of_day=False)


def _until(text: str) -> int:
    # "--until 2024-01-31" reads as "up to and including the 31st".
    return _timestamp(text, end_of_day=True)


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--collector", default="", help="only this collector, e.g. route-views.jinx or rrc00")
    parser.add_argument(
        "--type", type=str.upper, choices=("RIB", "UPDATES"), help="only RIB or only UPDATES files"
    )
    parser.add_argument(
        "--status", type=str.upper, choices=STATUSES, help="only files with this status (case-insensitive)"
    )
    parser.add_argument(
        "--since",
        type=_since,
        metavar="ISO_DATE_OR_DATETIME",
        help="only files whose name time is at or after this",
    )
    parser.add_argument(
        "--until",
        type=_until,
        metavar="ISO_DATE_OR_DATETIME",
        help="only files whose name time is before this",
    )
    parser.add_argument(
        "--page-size",
        type=_positive_int,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"files per request (default {DEFAULT_PAGE_SIZE})",
    )
    parser.add_argument("--all", action="store_true", help="follow page tokens and list every matching file")
    parser.add_argument("--json", action="store_true", help="print a JSON array of status records")


def run_list(args: argparse.Namespace) -> int:
    connected = _connect(args)
    if isinstance(connected, int):
        return connected
    settings, endpoint, channel = connected
    request = gateway_pb2.ListFilesRequest(
        project=settings.project,
        collector=args.collector,
        mrt_type=args.type or "",
        status=args.status or "",
        file_time_from=args.since,
        file_time_to=args.until,
        page_size=args.page_size,
    )
    files: list[gateway_pb2.FileStatus] = []
    with channel:
        client = GatewayClient(channel, token=settings.token)
        while True:
            try:
                page = client.list_files(request)
            except grpc.RpcError as e:
                return rpc_error_exit(e, endpoint)
            files.extend(page.files)
            if not page.next_page_token:
                break
            if not args.all:
                print(f"(first {len(files)} files shown; pass --all to list every page)", file=sys.stderr)
                break
            request.page_token = page.next_page_token
    if args.json:
        print(json.dumps([record_to_dict(f) for f in files], indent=1))
    elif files:
        rows = [["FILENAME", "STATUS", "STAGE", "ROWS", "SIZE"]]
        rows.extend(
            [f.filename, status_name(f), f.stage, f"{total_rows(f):,}", human_size(f.size)] for f in files
        )
        print(format_table(rows, right=frozenset({3, 4})))
    else:
        print("no matching files", file=sys.stderr)
    return EXIT_OK
