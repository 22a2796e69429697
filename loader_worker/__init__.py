"""loader_worker."""
