# The status store's composite indexes, read from deploy/datastore/index.yaml (the file
# `gcloud datastore indexes create` takes, generated from the code): one list, no drift.
resource "google_firestore_database" "datastore" {
  count                   = var.create_datastore_database ? 1 : 0
  name                    = "(default)"
  location_id             = lower(var.location) == "us" ? "nam5" : var.region
  type                    = "DATASTORE_MODE"
  deletion_policy         = "ABANDON"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
}

locals {
  datastore_indexes = {
    for idx in yamldecode(file("${path.module}/../datastore/index.yaml")).indexes :
    join("-", concat([idx.kind], [for p in idx.properties : p.name])) => idx
  }
}

resource "google_firestore_index" "datastore" {
  for_each    = local.datastore_indexes
  database    = "(default)"
  collection  = each.value.kind
  api_scope   = "DATASTORE_MODE_API"
  query_scope = "COLLECTION_GROUP"

  dynamic "fields" {
    for_each = each.value.properties
    content {
      field_path = fields.value.name
      order      = upper(lookup(fields.value, "direction", "asc")) == "DESC" ? "DESCENDING" : "ASCENDING"
    }
  }

  depends_on = [google_firestore_database.datastore]
}
