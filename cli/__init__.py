"""Command-line tools: ``upload-to-cloudz`` for archive hosts and ``rvcloud`` for everything else.

The uploader commands (upload, backfill, watch, status, list, config) need only grpcio
and protobuf at import time; rich is imported only when progress is drawn on a
terminal and watchdog only when ``watch`` starts. The server-only packages (fastavro,
duckdb, pyarrow, google-cloud-*) are imported inside the subcommands that need them
(convert, local, query), so an archive host runs the uploader without the ``[server]``
extra (tests/uploader/test_packaging.py blocks them and runs the uploader).
"""

import os as _os

# gRPC's C core logs handshake failures and the like on stderr at INFO level; the CLI
# reports errors itself, so only the core's own errors may reach the terminal.
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
