"""rvcloud: archive RouteViews/RIS MRT files into cloud storage and a warehouse.

The repository keeps the user's top-level layout (``cli/``, ``metadata/``, ...); this
package directory holds only symlinks to those folders so that everything installs and
imports under one namespace (``rvcloud.cli``, ``rvcloud.metadata``, ...) and no generic
top-level name lands in site-packages.
"""

__version__ = "0.1.0"
