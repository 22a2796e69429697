"""Storage and messaging backends behind small interfaces, selected by URL.

Each kind has one abstract interface (``base.py``), one module per implementation and
one conformance suite in ``tests/conformance/`` that every implementation runs.
"""
