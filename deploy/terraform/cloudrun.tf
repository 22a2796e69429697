# Optional (deploy_cloud_run = true): the stages as Cloud Run services, the same
# settings as deploy/cloudrun/*.yaml (tests/deploy compares args and env of both).
# deploy/README.md explains why GKE suits the pull workers better.
locals {
  backend_env = {
    RVCLOUD_BLOB            = "gs://${local.bucket_name}"
    RVCLOUD_BUS             = "pubsub://${var.project_id}?auto_create=0"
    RVCLOUD_STATUS          = "datastore://${var.project_id}"
    RVCLOUD_WAREHOUSE       = "bigquery://${var.project_id}/${var.dataset_id}?location=${var.location}"
    RVCLOUD_TOPIC_STORED    = var.topic_stored
    RVCLOUD_TOPIC_CONVERTED = var.topic_converted
  }

  cloud_run = {
    gateway = {
      args = [
        "--listen=0.0.0.0:8080", "--max-workers=32", "--max-uploads=24", "--shutdown-grace=8",
        "--auth=tokens", "--tokens=/secrets/tokens/tokens", "--log-format=json",
      ]
      env         = local.backend_env
      port_name   = "h2c"
      port        = 8080
      cpu         = "2"
      memory      = "2Gi"
      min         = 1
      max         = 20
      concurrency = 32
      timeout     = "3600s"
      ingress     = "INGRESS_TRAFFIC_ALL"
    }
    converter = {
      args = [
        "--metrics-port=9090", "--concurrency=1", "--max-attempts=${var.max_delivery_attempts}", "--log-format=json",
      ]
      env = {
        RVCLOUD_BLOB            = local.backend_env.RVCLOUD_BLOB
        RVCLOUD_BUS             = local.backend_env.RVCLOUD_BUS
        RVCLOUD_STATUS          = local.backend_env.RVCLOUD_STATUS
        RVCLOUD_TOPIC_STORED    = local.backend_env.RVCLOUD_TOPIC_STORED
        RVCLOUD_TOPIC_CONVERTED = local.backend_env.RVCLOUD_TOPIC_CONVERTED
        # One decoder process (C accelerator: bzip2-bound; the second CPU runs the
        # decompression and deflate threads). CPU affinity shows the host's CPUs.
        RVCLOUD_CONVERT_WORKERS = "1"
      }
      port_name   = "http1"
      port        = 9090
      cpu         = "2"
      memory      = "2Gi"
      min         = 1
      max         = 10
      concurrency = 1
      timeout     = "60s"
      ingress     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
    }
    loader = {
      args = [
        "--metrics-port=9090", "--batch-files=500", "--batch-seconds=300",
        "--max-attempts=${var.max_delivery_attempts}", "--log-format=json",
      ]
      env         = local.backend_env
      port_name   = "http1"
      port        = 9090
      cpu         = "1"
      memory      = "2Gi"
      min         = 1
      max         = 1
      concurrency = 1
      timeout     = "60s"
      ingress     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
    }
  }
}

resource "google_cloud_run_v2_service" "stage" {
  for_each            = var.deploy_cloud_run ? local.cloud_run : {}
  name                = "rvcloud-${each.key}"
  location            = var.region
  ingress             = each.value.ingress
  deletion_protection = false

  template {
    service_account                  = google_service_account.stage[each.key].email
    timeout                          = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = each.value.min
      max_instance_count = each.value.max
    }

    containers {
      image = var.images[each.key]
      args  = each.value.args

      ports {
        name           = each.value.port_name
        container_port = each.value.port
      }

      dynamic "env" {
        for_each = each.value.env
        content {
          name  = env.key
          value = env.value
        }
      }

      resources {
        limits = {
          cpu    = each.value.cpu
          memory = each.value.memory
        }
        cpu_idle          = false # CPU always allocated: workers pull between requests
        startup_cpu_boost = true
      }

      # The gateway: traffic once grpc.health.v1 says SERVING; the workers: once the
      # metrics port listens.
      startup_probe {
        period_seconds    = 5
        failure_threshold = 24
        dynamic "grpc" {
          for_each = each.key == "gateway" ? [1] : []
          content {
            port = each.value.port
          }
        }
        dynamic "tcp_socket" {
          for_each = each.key == "gateway" ? [] : [1]
          content {
            port = each.value.port
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = each.key == "gateway" ? [1] : []
        content {
          name       = "tokens"
          mount_path = "/secrets/tokens"
        }
      }
    }

    dynamic "volumes" {
      for_each = each.key == "gateway" ? [1] : []
      content {
        name = "tokens"
        secret {
          secret = var.gateway_tokens_secret
          items {
            version = "latest"
            path    = "tokens"
          }
        }
      }
    }
  }
}

# The gateway authenticates callers itself (--auth tokens): Cloud Run lets everyone reach it.
resource "google_cloud_run_v2_service_iam_member" "gateway_public" {
  count    = var.deploy_cloud_run ? 1 : 0
  name     = google_cloud_run_v2_service.stage["gateway"].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_secret_manager_secret_iam_member" "gateway_tokens" {
  count     = var.deploy_cloud_run ? 1 : 0
  secret_id = var.gateway_tokens_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["gateway"]
}
