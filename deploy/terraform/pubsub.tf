# Topics, shared subscriptions and dead-letter topics as backends/bus/pubsub.py names
# and creates them (python -m rvcloud.backends.setup): topic T, subscription
# T<subscription_suffix> with a dead-letter policy to T.dead, and T.dead's own
# subscription so dead letters are kept.
locals {
  topics = toset([var.topic_stored, var.topic_converted])
}

resource "google_pubsub_topic" "dead" {
  #checkov:skip=CKV_GCP_83:events name public files; Google-managed encryption (CMEK adds a KMS key to run)
  for_each = local.topics
  name     = "${each.key}.dead"
}

resource "google_pubsub_subscription" "dead" {
  for_each                   = local.topics
  name                       = "${each.key}.dead${var.subscription_suffix}"
  topic                      = google_pubsub_topic.dead[each.key].id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention
  expiration_policy {
    ttl = "" # never expires, however quiet
  }
}

resource "google_pubsub_topic" "main" {
  #checkov:skip=CKV_GCP_83:events name public files; Google-managed encryption (CMEK adds a KMS key to run)
  for_each = local.topics
  name     = each.key
}

resource "google_pubsub_subscription" "main" {
  for_each                   = local.topics
  name                       = "${each.key}${var.subscription_suffix}"
  topic                      = google_pubsub_topic.main[each.key].id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention

  retry_policy {
    minimum_backoff = "${var.min_retry_backoff_seconds}s"
    maximum_backoff = "${var.max_retry_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards dead letters: it must publish to the dead-letter
# topics and acknowledge on the source subscriptions.
locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "agent_publishes_dead" {
  for_each = local.topics
  topic    = google_pubsub_topic.dead[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscribes_main" {
  for_each     = local.topics
  subscription = google_pubsub_subscription.main[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
