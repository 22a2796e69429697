# Dataset and tables: schemas from deploy/bigquery/<table>.json, partitioning and
# clustering from deploy/bigquery/tables.json (all generated from the code), so these
# are the tables the loader's ensure_tables() would create.
locals {
  bq_tables = jsondecode(file("${path.module}/../bigquery/tables.json"))
}

resource "google_bigquery_dataset" "warehouse" {
  #checkov:skip=CKV_GCP_81:public BGP data; Google-managed encryption (CMEK adds a KMS key to run)
  dataset_id  = var.dataset_id
  location    = var.location
  description = "rvcloud: BGP MRT records (ribs, updates)"
}

resource "google_bigquery_table" "tables" {
  #checkov:skip=CKV_GCP_80:public BGP data; Google-managed encryption (CMEK adds a KMS key to run)
  for_each            = local.bq_tables
  dataset_id          = google_bigquery_dataset.warehouse.dataset_id
  table_id            = each.key
  description         = "rvcloud ${each.key}: one row per MRT ${each.key == "ribs" ? "RIB entry" : "update"}"
  schema              = file("${path.module}/../bigquery/${each.key}.json")
  clustering          = each.value.clustering
  deletion_protection = true

  time_partitioning {
    type  = each.value.time_partitioning.type
    field = each.value.time_partitioning.field
  }
}
