#!/usr/bin/env bash
# Create rvcloud's Google Cloud resources with the gcloud/bq CLIs (idempotent where the
# CLIs allow). The same resources are created by `python -m rvcloud.backends.setup`
# from the service's own backend URLs; this script is for operators who prefer gcloud.
#
#   PROJECT=my-project BUCKET=rv-archive DATASET=routeviews REGION=us-west1 deploy/gcp/setup.sh
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${BUCKET:?set BUCKET}" "${DATASET:=rvcloud}" "${REGION:=US}"
TOPIC_STORED=${TOPIC_STORED:-rvcloud-stored}
TOPIC_CONVERTED=${TOPIC_CONVERTED:-rvcloud-converted}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)

gcloud storage buckets create "gs://$BUCKET" --project "$PROJECT" --location "$REGION" \
  --uniform-bucket-level-access 2>/dev/null || echo "bucket gs://$BUCKET exists"

for t in "$TOPIC_STORED" "$TOPIC_CONVERTED"; do
  gcloud pubsub topics create "$t.dead" --project "$PROJECT" 2>/dev/null || true
  gcloud pubsub subscriptions create "$t.dead-sub" --topic "$t.dead" --project "$PROJECT" 2>/dev/null || true
  gcloud pubsub topics create "$t" --project "$PROJECT" 2>/dev/null || true
  # Long conversions keep their lease through the client's lease extension; the ack
  # deadline is only the unit of extension.
  gcloud pubsub subscriptions create "$t-sub" --topic "$t" --project "$PROJECT" \
    --ack-deadline 60 --message-retention-duration 7d \
    --min-retry-delay 10s --max-retry-delay 600s \
    --dead-letter-topic "$t.dead" --max-delivery-attempts "$MAX_ATTEMPTS" 2>/dev/null || true
done
echo "grant the Pub/Sub service agent publish on the dead-letter topics and subscribe on the subscriptions:"
echo "  https://cloud.google.com/pubsub/docs/handling-failures#grant_forwarding_permissions"

gcloud datastore indexes create "$HERE/datastore/index.yaml" --project "$PROJECT" --quiet

bq --project_id "$PROJECT" mk --dataset --location "$REGION" "$PROJECT:$DATASET" 2>/dev/null || true
for t in ribs updates; do
  bq --project_id "$PROJECT" mk --table --schema "$HERE/bigquery/$t.json" \
    --time_partitioning_field timestamp --time_partitioning_type DAY \
    --clustering_fields collector,prefix,peer_asn "$PROJECT:$DATASET.$t" 2>/dev/null || echo "table $t exists"
done
echo "done: gs://$BUCKET, pubsub://$PROJECT ($TOPIC_STORED, $TOPIC_CONVERTED), datastore://$PROJECT, bigquery://$PROJECT/$DATASET"
