#!/usr/bin/env bash
# Start the local Google Cloud emulators in the background for `make dev-cloud`:
#   eval "$(deploy/emulators/start.sh)"     # exports STORAGE_EMULATOR_HOST etc.
#   deploy/emulators/stop.sh
# STATE (default .emu/state) holds their logs and pids. ONLY=gcs,pubsub picks a subset.
# Start-up on 2 cores: fake-gcs 0.1 s, Pub/Sub ~2 s, Datastore ~1.5-2.5 s (both Java via
# gcloud), local-bigquery ~2-3.5 s; about 5 s for all four, started one after another.
# Memory: ~30 MB + 190 MB + 170 MB + 300 MB idle (the gcloud wrappers are ~60 MB each).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[[ -x .emu/venv-bq/bin/local-bigquery && -s .emu/fakegcs.path ]] || bash deploy/emulators/install.sh >&2
exec "$PY" -m tests.emulators start --state "${STATE:-.emu/state}" --only "${ONLY:-gcs,pubsub,datastore,bigquery}"
