locals {
  bucket_name = coalesce(var.bucket_name, "${var.project_id}-rvcloud-archive")
}

resource "google_storage_bucket" "archive" {
  #checkov:skip=CKV_GCP_62:access logs are optional (a second bucket); Cloud Audit Logs record admin access
  #checkov:skip=CKV_GCP_78:versioning is a variable (bucket_versioning), off by default: see its description
  name                        = local.bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = var.bucket_versioning
  }

  # Staged parts of uploads nobody resumed, and compose scratch objects left by an
  # interrupted compose: the gateway also collects them, this rule needs no process.
  dynamic "lifecycle_rule" {
    for_each = var.staging_prefixes
    content {
      action {
        type = "Delete"
      }
      condition {
        age            = var.staging_max_age_days
        matches_prefix = [lifecycle_rule.value]
      }
    }
  }

  # With versioning on, also drop noncurrent versions of anything after 30 days.
  dynamic "lifecycle_rule" {
    for_each = var.bucket_versioning ? [1] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        days_since_noncurrent_time = 30
        with_state                 = "ARCHIVED"
      }
    }
  }
}
