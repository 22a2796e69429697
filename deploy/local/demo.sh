#!/usr/bin/env bash
# `make demo`: the whole service on one machine, on real RouteViews files.
# Starts `rvcloud local` in a temporary directory, uploads files with the real CLI,
# prints their status records and an example query, then stops the service.
set -euo pipefail
BIN=${BIN:-.venv/bin}
SHARED=${SHARED:-../shared/data/mrt}
WORK=$(mktemp -d -t rvcloud-demo.XXXXXX)
PORT=${PORT:-$((20000 + RANDOM % 20000))}
ADDR=127.0.0.1:$PORT

cleanup() {
  if [[ -n "${SVC:-}" ]] && kill -0 "$SVC" 2>/dev/null; then kill -TERM "$SVC"; wait "$SVC" || true; fi
}
trap cleanup EXIT

echo "== starting rvcloud local (data in $WORK)"
"$BIN/rvcloud" local --data-dir "$WORK" --listen "$ADDR" > "$WORK/local.out" 2> "$WORK/local.log" &
SVC=$!
for _ in $(seq 1 100); do grep -q "gateway on" "$WORK/local.out" 2>/dev/null && break; sleep 0.2; done
cat "$WORK/local.out"

uploads=()
if [[ -n "${FILE:-}" ]]; then
  uploads+=("$FILE|${FILENAME:-}")
elif [[ -d "$SHARED" ]]; then
  uploads+=("$SHARED/libbgpstream__routeviews.route-views.jinx.ribs.1401487200.bz2|route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2")
  uploads+=("$SHARED/mrtparser__updates.20260222.1530.bz2|route-views2/bgpdata/2026.02/UPDATES/updates.20260222.1530.bz2")
else
  echo "no $SHARED and no FILE=...: generating a small synthetic RIB"
  "$BIN/python" -m rvcloud.mrt.synth rib "$WORK/rib.20200101.0000.bz2" --scale 0.01
  uploads+=("$WORK/rib.20200101.0000.bz2|route-views.synthetic/bgpdata/2020.01/RIBS/rib.20200101.0000.bz2")
fi

rc=0
for u in "${uploads[@]}"; do
  f=${u%%|*}; name=${u#*|}
  echo
  echo "== upload-to-cloudz -f $(basename "$f") ${name:+--filename $name}"
  args=(-f "$f" -d "$ADDR")
  [[ -n "$name" ]] && args+=(--filename "$name")
  if ! "$BIN/upload-to-cloudz" "${args[@]}"; then rc=1; fi
  echo "== rvcloud status"
  "$BIN/rvcloud" status -d "$ADDR" "${name:-$(basename "$f")}" || rc=1
done

echo
echo "== rvcloud list"
"$BIN/rvcloud" list -d "$ADDR" --all || rc=1

cleanup; SVC=
echo
echo "== example query: who originates 8.8.8.0/24 (and through which peers)?"
"$BIN/rvcloud" query --data-dir "$WORK" "SELECT prefix, origin_asns, count(*) AS peers, min(as_path) AS example_path
  FROM ribs WHERE prefix = '8.8.8.0/24' GROUP BY ALL"
echo "== rows per table and element type"
"$BIN/rvcloud" query --data-dir "$WORK" "SELECT 'ribs' AS t, elem_type, count(*) FROM ribs GROUP BY ALL
  UNION ALL SELECT 'updates', elem_type, count(*) FROM updates GROUP BY ALL ORDER BY 1, 2"
echo
echo "demo data kept in $WORK (remove it when done)"
exit $rc
