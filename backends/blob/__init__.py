"""backends/blob."""
