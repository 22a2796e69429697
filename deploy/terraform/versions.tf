terraform {
  required_version = ">= 1.5"
  # tests/deploy validates against the schema of google 6.50 (deploy/README.md)
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.50, < 7.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project_id
}
