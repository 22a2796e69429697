"""converter_worker."""
