"""ingest_gateway."""
