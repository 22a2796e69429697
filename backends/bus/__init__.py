"""backends/bus."""
