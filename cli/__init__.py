"""Command-line tools: ``upload-to-cloudz`` for archive hosts and ``rvcloud`` for everything else.

Only grpcio and protobuf are imported at module level; the server-only packages
(fastavro, duckdb, pyarrow) are imported inside the subcommands that need them, so an
archive host can run the uploader without the ``[server]`` extra.
"""
