"""``rvcloud``: one command with a subcommand per task.

upload, backfill, watch and config are the operators' uploader (grpcio, protobuf, rich
and watchdog only); convert, local and query need the ``[server]`` extra and import it
only when they run.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable
from typing import Final

from rvcloud import __version__
from rvcloud.cli import backfill, config, files, local, offline, upload, watch
from rvcloud.cli.client import EXIT_INTERRUPTED

EXIT_BROKEN_PIPE: Final = 141  # as a shell reports a process killed by SIGPIPE

DESCRIPTION: Final = """\
Archive RouteViews/RIS MRT files: upload them to the ingest gateway, follow their status,
convert them offline, or run the whole service on one machine.
"""

EPILOG: Final = """\
examples:
  rvcloud local --data-dir ./rvcloud-data &
  rvcloud upload -d 127.0.0.1:50051 -f route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2
  rvcloud backfill /archive -d 127.0.0.1:50051 --since 2024-01-01 --workers 8
  rvcloud watch /archive -d 127.0.0.1:50051 --settle 60
  rvcloud status -d 127.0.0.1:50051 route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2
  rvcloud list -d 127.0.0.1:50051 --status FAILED --all
  rvcloud query "SELECT count(*) FROM ribs"

Run `rvcloud COMMAND --help` for a command's options.
exit codes: 0 success; 1 failed; 2 usage error; 3 service unreachable or timed out.
settings: flags, then RVCLOUD_* variables, then --config FILE (default
~/.config/rvcloud/config.toml or /etc/rvcloud/config.toml); see `rvcloud config show`.
"""

Runner = Callable[[argparse.Namespace], int]

# name, one-line help, description, epilog, argument builder, runner
_COMMANDS: Final[list[tuple[str, str, str, str, Callable[[argparse.ArgumentParser], None], Runner]]] = [
    (
        "upload",
        "upload one archive file and wait until it is loaded",
        "Upload one finished MRT archive file to the ingest gateway (the same as upload-to-cloudz) "
        "and wait until it is stored, converted and loaded.",
        upload.EXAMPLES.replace("upload-to-cloudz ", "rvcloud upload "),
        upload.add_upload_arguments,
        upload.run_upload,
    ),
    (
        "backfill",
        "upload every archive file of a local tree that the service lacks",
        "Walk a local archive tree (RouteViews or RIS layout), ask the service which files it "
        "already has (by SHA-256, no content sent) and upload the rest, N at a time, each "
        "followed until DONE or FAILED. Safe and cheap to re-run.",
        backfill.EXAMPLES,
        backfill.add_backfill_arguments,
        backfill.run_backfill,
    ),
    (
        "watch",
        "daemon: upload each new archive file once it is complete",
        "Watch a local archive tree and upload each new file once it stopped changing (or was "
        "renamed into place); on start, send whatever was missed while it was not running.",
        watch.EXAMPLES,
        watch.add_watch_arguments,
        watch.run_watch,
    ),
    (
        "config",
        "show the effective uploader settings and where each came from",
        "Print the settings the uploader commands use, resolved from flags, RVCLOUD_* "
        "variables, the config file and defaults (in that precedence), secrets masked.",
        config.CONFIG_EXAMPLES,
        config.add_config_arguments,
        config.run_config,
    ),
    (
        "status",
        "show the status record of one file",
        "Show everything the service knows about one archive file.",
        files.STATUS_EXAMPLES,
        files.add_status_arguments,
        files.run_status,
    ),
    (
        "list",
        "list files by collector, type, status and time",
        "List status records matching filters as a table (or JSON).",
        files.LIST_EXAMPLES,
        files.add_list_arguments,
        files.run_list,
    ),
    (
        "convert",
        "convert MRT files to Avro or NDJSON offline",
        "Convert local MRT files to Avro or NDJSON rows, exactly as the service does, without the service.",
        offline.CONVERT_EXAMPLES,
        offline.add_convert_arguments,
        offline.run_convert,
    ),
    (
        "local",
        "run the whole service on this machine",
        "Run the gateway, converter workers and loader on this machine as separate processes. "
        "By default on the embedded backends (files, SQLite, DuckDB under the data directory); "
        "each backend flag or RVCLOUD_* variable swaps in another, e.g. the Google ones.",
        local.EXAMPLES,
        local.add_local_arguments,
        local.run_local,
    ),
    (
        "query",
        "run a read-only SQL query on the warehouse",
        "Run a read-only SQL query on the warehouse (tables ribs and updates) and print the rows.",
        offline.QUERY_EXAMPLES,
        offline.add_query_arguments,
        offline.run_query,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvcloud",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rvcloud {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary, description, epilog, add_arguments, run in _COMMANDS:
        p = sub.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, 88),
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rvcloud`` console script."""
    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`rvcloud query ... | head`): stop quietly, as cat does.
        # stdout is pointed at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
