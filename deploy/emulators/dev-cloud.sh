#!/usr/bin/env bash
# `make dev-cloud`: the cloud topology on one machine. Starts the four emulators, creates
# the bucket, topics/subscriptions (with dead-letter topics), dataset and tables, then
# runs the gateway, two converters and the loader as separate processes against them.
# Upload with: upload-to-cloudz -d 127.0.0.1:50051 -f FILE. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
PROJECT=rvcloud-test
eval "$(PY=$BIN/python deploy/emulators/start.sh)"
trap 'deploy/emulators/stop.sh >/dev/null 2>&1 || true' EXIT
FLAGS=(--blob "gs://rvcloud-dev" --bus "pubsub://$PROJECT" --status "datastore://$PROJECT"
       --warehouse "bigquery://$PROJECT/rvcloud")
"$BIN/python" -m rvcloud.backends.setup "${FLAGS[@]}"
echo "emulators: STORAGE_EMULATOR_HOST=$STORAGE_EMULATOR_HOST PUBSUB_EMULATOR_HOST=$PUBSUB_EMULATOR_HOST"
echo "           DATASTORE_EMULATOR_HOST=$DATASTORE_EMULATOR_HOST BIGQUERY_EMULATOR_HOST=$BIGQUERY_EMULATOR_HOST"
"$BIN/rvcloud" local --data-dir .emu/dev-cloud --listen "${LISTEN:-127.0.0.1:50051}" --converters 2 "${FLAGS[@]}"
