#!/usr/bin/env bash
# Stop the emulators deploy/emulators/start.sh started (kills each process group).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PY:-.venv/bin/python}" -m tests.emulators stop --state "${STATE:-.emu/state}"
