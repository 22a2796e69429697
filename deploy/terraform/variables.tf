variable "project_id" {
  description = "Google Cloud project that holds every rvcloud resource."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run services (and the provider's default region)."
  type        = string
  default     = "us-west1"
}

variable "location" {
  description = "Location of the bucket and the BigQuery dataset (a multi-region such as US, or a region). The warehouse URL's ?location= must name the same."
  type        = string
  default     = "US"
}

variable "bucket_name" {
  description = "Archive bucket (raw MRT files, Avro conversions, staged upload parts). Default: PROJECT_ID-rvcloud-archive."
  type        = string
  default     = null
}

variable "bucket_versioning" {
  description = "Keep noncurrent object versions. Off by default: the archive is a copy of public archives, objects are created once (re-published files get new keys) and versioning would also keep every deleted staged upload part."
  type        = bool
  default     = false
}

variable "staging_prefixes" {
  description = "Object name prefixes of the gateway's staged upload parts and compose scratch objects (backends/blob/staging.py PREFIX, backends/blob/base.py SCRATCH_PREFIX). A lifecycle rule deletes objects under them after staging_max_age_days."
  type        = list(string)
  default     = [".rvcloud-uploads/", ".rvcloud-scratch/"]
}

variable "staging_max_age_days" {
  description = "Age in days after which staged parts of an upload nobody resumed are deleted."
  type        = number
  default     = 7
}

variable "dataset_id" {
  description = "BigQuery dataset of the ribs and updates tables."
  type        = string
  default     = "rvcloud"
}

variable "topic_stored" {
  description = "Topic of 'stored' events (gateway -> converter); RVCLOUD_TOPIC_STORED."
  type        = string
  default     = "rvcloud-stored"
}

variable "topic_converted" {
  description = "Topic of 'converted' events (converter -> loader); RVCLOUD_TOPIC_CONVERTED."
  type        = string
  default     = "rvcloud-converted"
}

variable "subscription_suffix" {
  description = "Suffix of each topic's shared subscription (the pubsub:// URL's subscription_suffix)."
  type        = string
  default     = "-sub"
}

variable "max_delivery_attempts" {
  description = "Dead-letter policy: deliveries before Pub/Sub forwards a message to <topic>.dead. Equal to the workers' --max-attempts (Pub/Sub accepts 5..100)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5..100 delivery attempts."
  }
}

variable "ack_deadline_seconds" {
  description = "Subscriptions' ack deadline; the workers extend leases in units of it (the pubsub:// URL's ack_deadline)."
  type        = number
  default     = 60
}

variable "min_retry_backoff_seconds" {
  description = "Subscriptions' retry policy: first redelivery delay after a nack (min_backoff)."
  type        = number
  default     = 1
}

variable "max_retry_backoff_seconds" {
  description = "Subscriptions' retry policy: longest redelivery delay (max_backoff)."
  type        = number
  default     = 60
}

variable "message_retention" {
  description = "How long subscriptions keep unacknowledged messages."
  type        = string
  default     = "604800s"
}

variable "create_datastore_database" {
  description = "Create the (default) Firestore database in Datastore mode. Leave false when the project already has one (it cannot be deleted and re-created freely)."
  type        = bool
  default     = false
}

variable "gke_namespace" {
  description = "Kubernetes namespace of deploy/k8s; its service accounts get Workload Identity on the stage service accounts. Null: no bindings (no GKE)."
  type        = string
  default     = "rvcloud"
}

variable "deploy_cloud_run" {
  description = "Also deploy the three stages as Cloud Run services (deploy/cloudrun has the same as YAML)."
  type        = bool
  default     = false
}

variable "images" {
  description = "Container images of the stages (deploy/docker) when deploy_cloud_run: gateway, converter, loader -> REGION-docker.pkg.dev/PROJECT/rvcloud/STAGE:TAG."
  type        = map(string)
  default     = {}
}

variable "gateway_tokens_secret" {
  description = "Secret Manager secret (its latest version is mounted) with the gateway's --tokens file, for Cloud Run."
  type        = string
  default     = "rvcloud-gateway-tokens"
}
