output "bucket" {
  description = "The archive bucket."
  value       = google_storage_bucket.archive.name
}

output "backend_urls" {
  description = "RVCLOUD_* settings for the stages (deploy/k8s/config.yaml, deploy/cloudrun)."
  value = {
    RVCLOUD_BLOB            = "gs://${google_storage_bucket.archive.name}"
    RVCLOUD_BUS             = "pubsub://${var.project_id}?auto_create=0"
    RVCLOUD_STATUS          = "datastore://${var.project_id}"
    RVCLOUD_WAREHOUSE       = "bigquery://${var.project_id}/${google_bigquery_dataset.warehouse.dataset_id}?location=${var.location}"
    RVCLOUD_TOPIC_STORED    = google_pubsub_topic.main[var.topic_stored].name
    RVCLOUD_TOPIC_CONVERTED = google_pubsub_topic.main[var.topic_converted].name
  }
}

output "subscriptions" {
  description = "Shared subscriptions (the HPAs of deploy/k8s scale on their backlog)."
  value       = { for k, v in google_pubsub_subscription.main : k => v.name }
}

output "service_accounts" {
  description = "Service account e-mail of each stage."
  value       = { for k, v in google_service_account.stage : k => v.email }
}

output "cloud_run_urls" {
  description = "URLs of the Cloud Run services (empty unless deploy_cloud_run)."
  value       = { for k, v in google_cloud_run_v2_service.stage : k => v.uri }
}
