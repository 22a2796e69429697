"""backends/warehouse."""
