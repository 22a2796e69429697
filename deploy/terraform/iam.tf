# One service account per stage, each with only what its code calls:
#
# gateway   writes raw objects and staged parts (create, compose, delete parts), lists
#           for the health check and resumption; publishes 'stored'; reads/writes the
#           status store.
# converter reads raw and writes Avro objects (a retry overwrites: delete); pulls
#           'stored'; publishes 'converted' and, for its own dead-lettering path, to
#           <stored>.dead; status store.
# loader    BigQuery load jobs read the Avro objects with the loader's credentials
#           (objectViewer); runs jobs and ensure_tables() (create_dataset(exists_ok)
#           needs bigquery.datasets.create at project level: roles/bigquery.user);
#           writes the tables and its MERGE staging tables (dataEditor on the dataset);
#           pulls 'converted', dead-letters to <converted>.dead; its sweeper re-publishes
#           stuck files to both topics; status store.
# Nobody may create topics or subscriptions (Terraform does): hence auto_create=0 in
# the pubsub:// URLs of deploy/k8s and deploy/cloudrun.
locals {
  stages = toset(["gateway", "converter", "loader"])
}

resource "google_service_account" "stage" {
  for_each     = local.stages
  account_id   = "rvcloud-${each.key}"
  display_name = "rvcloud ${each.key}"
}

locals {
  sa = { for k, v in google_service_account.stage : k => "serviceAccount:${v.email}" }

  bucket_roles = {
    gateway   = "roles/storage.objectUser"
    converter = "roles/storage.objectUser"
    loader    = "roles/storage.objectViewer"
  }

  # Who publishes where (roles/pubsub.publisher on the topic).
  publishes = {
    "gateway-stored"          = { stage = "gateway", topic = google_pubsub_topic.main[var.topic_stored].name }
    "converter-converted"     = { stage = "converter", topic = google_pubsub_topic.main[var.topic_converted].name }
    "converter-stored-dead"   = { stage = "converter", topic = google_pubsub_topic.dead[var.topic_stored].name }
    "loader-converted-dead"   = { stage = "loader", topic = google_pubsub_topic.dead[var.topic_converted].name }
    "loader-sweeps-stored"    = { stage = "loader", topic = google_pubsub_topic.main[var.topic_stored].name }
    "loader-sweeps-converted" = { stage = "loader", topic = google_pubsub_topic.main[var.topic_converted].name }
  }

  subscribes = {
    converter = google_pubsub_subscription.main[var.topic_stored].name
    loader    = google_pubsub_subscription.main[var.topic_converted].name
  }
}

resource "google_storage_bucket_iam_member" "stage" {
  for_each = local.bucket_roles
  bucket   = google_storage_bucket.archive.name
  role     = each.value
  member   = local.sa[each.key]
}

resource "google_pubsub_topic_iam_member" "publish" {
  for_each = local.publishes
  topic    = each.value.topic
  role     = "roles/pubsub.publisher"
  member   = local.sa[each.value.stage]
}

resource "google_pubsub_subscription_iam_member" "subscribe" {
  for_each     = local.subscribes
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.sa[each.key]
}

# Datastore has no per-kind IAM: the status store needs project-level datastore.user.
resource "google_project_iam_member" "datastore_user" {
  for_each = local.stages
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = local.sa[each.key]
}

resource "google_project_iam_member" "loader_bigquery_user" {
  project = var.project_id
  role    = "roles/bigquery.user"
  member  = local.sa["loader"]
}

resource "google_bigquery_dataset_iam_member" "loader_data_editor" {
  dataset_id = google_bigquery_dataset.warehouse.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.sa["loader"]
}

# GKE Workload Identity: Kubernetes service account NAMESPACE/rvcloud-STAGE acts as the
# stage's Google service account (deploy/k8s/serviceaccounts.yaml annotates the other side).
resource "google_service_account_iam_member" "workload_identity" {
  for_each           = var.gke_namespace == null ? toset([]) : local.stages
  service_account_id = google_service_account.stage[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.gke_namespace}/rvcloud-${each.key}]"
}
