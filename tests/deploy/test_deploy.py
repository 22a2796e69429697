"""deploy/ validates offline: Dockerfiles, Cloud Run and Kubernetes manifests, Terraform.

What runs here (deploy/README.md, "Validation"): hadolint and checkov on the
Dockerfiles; the Kubernetes OpenAPI schemas of a pinned version (kubernetes-validate,
strict) on every manifest and on the Cloud Run revisions' pod specs; HashiCorp's HCL
parser and formatter and checkov on the Terraform, plus a reference check; yamllint;
and drift checks against the code: every flag parses with the stage's own argparse
parser, every env var is one the code reads, every backend URL opens with the real
factory, and the Terraform's tables, indexes, topics, retry policy and staging prefixes
are the ones the code uses. The last tests feed the checks broken copies to show that
they fail.

Not run (no Docker daemon, no cloud, no cluster): docker build, terraform
init/validate/plan/apply against the provider schema, kubectl apply.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.deploy import deploycheck as dc

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="session")
def tools() -> None:
    """checkov and the HCL tools (tests/deploy/install_tools.sh: PyPI and npm only)."""
    if not dc.tools_ready():
        dc.install_tools()
    assert dc.tools_ready()


@pytest.fixture(scope="session")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Broken copies for the external tools, checked in the same run as deploy/."""
    d = tmp_path_factory.mktemp("broken")
    ugly = d / "ugly.tf"
    ugly.write_text('variable "a" {\n  type = string\n  description   = "x"\n}\n')
    bad_syntax = d / "bad_syntax.tf"
    bad_syntax.write_text('resource "a" "b" {\n  x = [1,\n}\n')
    k8s = d / "k8s"
    k8s.mkdir()
    dep = copy.deepcopy(dc._find(dc.k8s_docs(), "Deployment", "rvcloud-converter"))
    dep["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    (k8s / "privileged.yaml").write_text(json.dumps(dep))
    return {"ugly": ugly, "bad_syntax": bad_syntax, "k8s": k8s}


@pytest.fixture(scope="session")
def hcl_errors(tools: None, broken: dict[str, Path]) -> list[str]:
    files = sorted((dc.DEPLOY / "terraform").glob("*.tf"))
    return dc.hcl_check([*files, broken["ugly"], broken["bad_syntax"]])


@pytest.fixture(scope="session")
def checkov_report(tools: None, broken: dict[str, Path]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    return dc.checkov(
        [dc.DEPLOY / "terraform", dc.DEPLOY / "k8s", dc.DEPLOY / "docker", broken["k8s"]],
        ["terraform", "kubernetes", "dockerfile"],
    )


def _no_errors(errs: list[str]) -> None:
    assert not errs, "\n".join(errs)


# ---- Dockerfiles ---------------------------------------------------------------------


def test_one_dockerfile_per_stage_multistage_non_root() -> None:
    files = dc.dockerfiles()
    for stage, path in files.items():
        assert path.exists(), f"no Dockerfile for {stage}"
        _no_errors(dc.check_dockerfile(stage, path))
    # The build stage is shared text, so a builder caches it once for the three images.
    builds = {stage: dc.dockerfile_stages(p)[0] for stage, p in files.items()}
    assert builds["gateway"] == builds["converter"] == builds["loader"]


def test_dockerfiles_pass_hadolint() -> None:
    _no_errors(dc.hadolint(list(dc.dockerfiles().values())))


def test_dockerfile_cmd_parses_with_the_stage() -> None:
    for stage, path in dc.dockerfiles().items():
        ns, errs, warns = dc.parse_stage_args(stage, dc.docker_cmd(path))
        _no_errors(errs)
        for w in warns:
            warnings.warn(w, stacklevel=1)
        ports = dc.docker_exposed(path)
        if stage == "gateway":
            assert ns is not None
            assert int(ns["listen"].rsplit(":", 1)[1]) in ports
            assert ns["metrics_port"] in ports


def _no_build_isolation() -> list[str]:
    """Build with the venv's setuptools when it is new enough (pyproject's build-system
    asks for >= 77), which saves a download; else let pip fetch it."""
    try:
        import setuptools
    except ImportError:
        return []
    return ["--no-build-isolation"] if int(setuptools.__version__.split(".")[0]) >= 77 else []


def test_docker_context_builds_the_package(tmp_path: Path) -> None:
    """What .dockerignore lets into the context is enough for `pip install .[server,cloud]`:
    build the wheel from exactly those files and look for every stage in it."""
    ctx = tmp_path / "ctx"
    copied = dc.docker_context(ctx)
    assert "pyproject.toml" in copied
    assert not any(p.startswith(("tests/", ".venv/", ".git/", "bench/", "deploy/")) for p in copied)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            *_no_build_isolation(),
            "-w",
            str(tmp_path / "whl"),
            str(ctx),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "whl").glob("rvcloud-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in dc.STAGES.values():
        assert module.replace(".", "/") + "/__main__.py" in names, module
    assert "rvcloud/v1/gateway_pb2.py" in names
    assert "rvcloud/backends/settings.py" in names
    # The C accelerators (converter, warehouse Avro decoder) are compiled from the context's
    # sources (a stray local build is kept out by .dockerignore); their stubs ship.
    assert not any(p.endswith(".so") for p in copied)
    for module in ("converter_worker/_ribfast", "backends/warehouse/_avrocols"):
        assert f"{module}.c" in copied
        assert f"rvcloud/{module}.pyi" in names
        assert any(re.fullmatch(rf"rvcloud/{module}\..*\.so", n) for n in names), sorted(names)


# ---- Kubernetes ----------------------------------------------------------------------


def test_k8s_manifests_match_the_pinned_schema() -> None:
    docs = dc.k8s_docs()
    kinds = {d["kind"] for _, d in docs}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
        "ConfigMap",
    } <= kinds
    _no_errors(dc.check_k8s_schema(docs))


def test_k8s_references_and_security() -> None:
    _no_errors(dc.check_k8s_refs(dc.k8s_docs()))


def test_k8s_gateway_probes_and_routing() -> None:
    docs = dc.k8s_docs()
    dep = dc._find(docs, "Deployment", "rvcloud-gateway")
    assert dep is not None
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    ns, errs, _ = dc.parse_stage_args("gateway", c["args"])
    _no_errors(errs)
    grpc_port = int(ns["listen"].rsplit(":", 1)[1])
    # Readiness asks grpc.health.v1 natively on the port the gateway listens on.
    assert c["readinessProbe"]["grpc"]["port"] == grpc_port
    assert {p["containerPort"] for p in c["ports"] if p["name"] == "grpc"} == {grpc_port}
    # Kubernetes' grace covers the gateway's own shutdown grace.
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > ns["shutdown_grace"]
    policy = dc._find(docs, "GCPBackendPolicy", "rvcloud-gateway")
    assert policy is not None and policy["spec"]["default"]["timeoutSec"] >= 3600


def test_k8s_hpas_scale_on_the_terraform_subscriptions() -> None:
    tfv = dc.tf_defaults()
    subs = {tfv[t] + tfv["subscription_suffix"] for t in ("topic_stored", "topic_converted")}
    cm = dc._find(dc.k8s_docs(), "ConfigMap", "rvcloud-backends")
    assert cm is not None
    assert cm["data"]["RVCLOUD_TOPIC_STORED"] == tfv["topic_stored"]
    assert cm["data"]["RVCLOUD_TOPIC_CONVERTED"] == tfv["topic_converted"]
    seen = set()
    for _, d in dc.k8s_docs():
        if d["kind"] != "HorizontalPodAutoscaler":
            continue
        for m in d["spec"]["metrics"]:
            if m["type"] == "External":
                metric = m["external"]["metric"]
                assert metric["name"] == "pubsub.googleapis.com|subscription|num_undelivered_messages"
                seen.add(metric["selector"]["matchLabels"]["resource.labels.subscription_id"])
    assert seen == subs


def test_workload_identity_matches_terraform() -> None:
    tf = dc.terraform()
    tfv = dc.tf_defaults()
    sa = tf["resource"][("google_service_account", "stage")]
    assert dc.unquote(sa["account_id"]) == "rvcloud-${each.key}"
    stages = set(re.findall(r'"(\w+)"', tf["locals"]["stages"]))
    assert stages == set(dc.STAGES)
    wi = tf["resource"][("google_service_account_iam_member", "workload_identity")]
    assert "[${var.gke_namespace}/rvcloud-${each.key}]" in wi["member"]
    for _, d in dc.k8s_docs():
        if d["kind"] == "ServiceAccount":
            assert d["metadata"]["namespace"] == tfv["gke_namespace"]
            assert d["metadata"]["name"] in {f"rvcloud-{s}" for s in stages}
    for stage, _, doc, _c in dc.workloads():
        spec = dc.pod_spec(doc)
        want = (
            f"rvcloud-{stage}"
            if doc.get("kind") == "Deployment"
            else f"rvcloud-{stage}@PROJECT_ID.iam.gserviceaccount.com"
        )
        assert spec["serviceAccountName"] == want


# ---- Cloud Run -----------------------------------------------------------------------


def test_cloudrun_revisions_are_valid_pod_specs() -> None:
    docs = dc.cloudrun_docs()
    stages = {dc.stage_of_image(c["image"]) for _, d in docs for c in dc.pod_spec(d)["containers"]}
    assert stages == set(dc.STAGES)
    _no_errors(dc.check_cloudrun_podspec(docs))


def test_cloudrun_gateway_is_http2_end_to_end() -> None:
    for _, d in dc.cloudrun_docs():
        spec = dc.pod_spec(d)
        (c,) = spec["containers"]
        stage = dc.stage_of_image(c["image"])
        ann = d["spec"]["template"]["metadata"]["annotations"]
        assert 0 < spec["timeoutSeconds"] <= 3600
        assert int(ann["autoscaling.knative.dev/minScale"]) >= 1, "workers and the gateway keep an instance"
        assert int(ann["autoscaling.knative.dev/maxScale"]) >= int(ann["autoscaling.knative.dev/minScale"])
        assert ann["run.googleapis.com/cpu-throttling"] == "false", "CPU must stay allocated between requests"
        ns, errs, _ = dc.parse_stage_args(stage, c["args"])
        _no_errors(errs)
        (port,) = c["ports"]
        if stage == "gateway":
            assert port["name"] == "h2c", "HTTP/2 end to end (HTTP/1 caps a request at 32 MiB)"
            assert spec["timeoutSeconds"] == 3600
            assert int(ns["listen"].rsplit(":", 1)[1]) == port["containerPort"]
            assert spec["containerConcurrency"] <= ns["max_workers"], "more streams than gRPC threads"
            assert ns["max_uploads"] < ns["max_workers"], "keep threads for queries and health"
            assert c["startupProbe"]["grpc"]["port"] == port["containerPort"]
            # Cloud Run gives 10 s from SIGTERM to SIGKILL.
            assert ns["shutdown_grace"] < 10
        else:
            assert f"--metrics-port={port['containerPort']}" in c["args"], (
                "Cloud Run needs the worker to listen on $PORT"
            )


def test_terraform_cloud_run_equals_the_yaml() -> None:
    tf = dc.terraform()
    tfv = dc.tf_defaults(project_id="PROJECT_ID", location="US")
    services = dc.tf_eval(tf["locals"]["cloud_run"], tfv, tf)
    for _, d in dc.cloudrun_docs():
        spec = dc.pod_spec(d)
        (c,) = spec["containers"]
        stage = dc.stage_of_image(c["image"])
        s = services[stage]
        ann = d["spec"]["template"]["metadata"]["annotations"]
        assert s["args"] == c["args"], stage
        assert s["env"] == {e["name"]: e["value"] for e in c["env"]}, stage
        assert (s["port_name"], s["port"]) == (c["ports"][0]["name"], c["ports"][0]["containerPort"])
        assert (s["cpu"], s["memory"]) == (
            c["resources"]["limits"]["cpu"],
            c["resources"]["limits"]["memory"],
        )
        assert (s["min"], s["max"]) == (
            int(ann["autoscaling.knative.dev/minScale"]),
            int(ann["autoscaling.knative.dev/maxScale"]),
        )
        assert s["concurrency"] == spec["containerConcurrency"]
        assert s["timeout"] == f"{spec['timeoutSeconds']}s"


# ---- every stage's command line, env and backends ----------------------------------


def test_workloads_flags_env_and_backend_urls() -> None:
    """The drift check: k8s Deployments and Cloud Run services, against the code."""
    seen = set()
    errs: list[str] = []
    for stage, path, doc, c in dc.workloads():
        seen.add(stage)
        where = f"{path.parent.name}/{path.name}"
        e, w = dc.check_workload(stage, where, c.get("args", []), dc.container_env(doc, c))
        errs += e
        for x in w:
            warnings.warn(x, stacklevel=1)
        env = dc.container_env(doc, c)
        if stage == "converter":
            # One decoder process (the accelerated conversion is bzip2-bound), set
            # explicitly: the default would count the node's CPUs; two CPUs for it and
            # its decompression/deflate threads.
            res = c["resources"]
            cpu = res.get("requests", {}).get("cpu") or res["limits"]["cpu"]
            assert env.get("RVCLOUD_CONVERT_WORKERS") == "1", f"{where}: decoder processes"
            assert str(cpu) == "2", f"{where}: converter CPUs"
    assert seen == set(dc.STAGES)
    _no_errors(errs)


def test_terraform_cloud_run_flags_and_env() -> None:
    tf = dc.terraform()
    tfv = dc.tf_defaults(project_id="PROJECT_ID")
    errs: list[str] = []
    for stage, s in dc.tf_eval(tf["locals"]["cloud_run"], tfv, tf).items():
        e, _ = dc.check_workload(stage, f"terraform cloud_run.{stage}", s["args"], s["env"])
        errs += e
    _no_errors(errs)


def test_max_attempts_match_the_dead_letter_policy() -> None:
    from rvcloud.backends.bus.pubsub import MAX_POLICY_ATTEMPTS, MIN_POLICY_ATTEMPTS

    tfv = dc.tf_defaults()
    assert MIN_POLICY_ATTEMPTS <= tfv["max_delivery_attempts"] <= MAX_POLICY_ATTEMPTS
    for stage, path, _, c in dc.workloads():
        if stage == "gateway":
            continue
        ns, errs, _ = dc.parse_stage_args(stage, c["args"])
        _no_errors(errs)
        assert ns["max_attempts"] == tfv["max_delivery_attempts"], f"{path.name}: --max-attempts"


# ---- Terraform -----------------------------------------------------------------------


def test_terraform_parses_and_is_formatted(hcl_errors: list[str]) -> None:
    files = sorted((dc.DEPLOY / "terraform").glob("*.tf"))
    assert {f.name for f in files} >= {
        "storage.tf",
        "pubsub.tf",
        "datastore.tf",
        "bigquery.tf",
        "iam.tf",
        "variables.tf",
        "outputs.tf",
    }
    _no_errors([e for e in hcl_errors if not e.startswith(("ugly.tf:", "bad_syntax.tf:"))])


def test_terraform_matches_the_provider_schema(tools: None) -> None:
    """Resource types, arguments, blocks and required ones, against google 6.50's schema."""
    _no_errors(dc.check_terraform_schema())
    schema = json.loads(dc.PROVIDER_SCHEMA.read_text())
    major, minor = (int(x) for x in schema["provider_version"].split(".")[:2])
    raw = dc.terraform()["raw"]["versions.tf"]
    # The constraint admits only the major version the schema is of, from its minor on.
    assert f'version = ">= {major}.{minor}, < {major + 1}.0"' in raw, raw


def test_provider_schema_check_fails_on_broken_copies(tools: None, tmp_path: Path) -> None:
    tfdir = tmp_path / "terraform"
    tfdir.mkdir()
    (tfdir / "x.tf").write_text(
        'resource "google_storage_bucket" "a" {\n'
        '  location       = "US"\n'  # no name (required)
        "  uniform_access = true\n"  # no such argument
        "  versioning = {\n    enabled = true\n  }\n"  # a block written as an argument
        '  dynamic "lifecycle" {\n    for_each = []\n    content {}\n  }\n'  # no such block
        "  lifecycle_rule {\n    condition {\n      age = 1\n    }\n  }\n"  # no action (required)
        "}\n\n"
        'resource "google_pubsub_subscripton" "b" {\n  name = "x"\n}\n\n'
        'data "google_projectz" "c" {\n  project_id = "p"\n}\n'
    )
    errs = "\n".join(dc.check_terraform_schema(tfdir))
    for want in [
        "google_storage_bucket.a: required argument 'name' missing",
        "google_storage_bucket.a: 'uniform_access' is no argument or block",
        "google_storage_bucket.a: versioning is a block, written as an argument",
        "google_storage_bucket.a: dynamic 'lifecycle' is no block",
        "google_storage_bucket.a.lifecycle_rule: required block 'action' missing",
        "google_pubsub_subscripton.b: no resource type",
        "data.google_projectz.c: no data type",
    ]:
        assert want in errs, errs


def test_terraform_references_resolve() -> None:
    _no_errors(dc.check_terraform_refs())


def test_terraform_tables_are_deploy_bigquery() -> None:
    """Schemas and partitioning come from deploy/bigquery/*.json (themselves generated
    from the code; tests/cloud_bq checks them), read with file()/jsondecode()."""
    from rvcloud.backends.warehouse import bigquery as bq

    tf = dc.terraform()
    table = tf["resource"][("google_bigquery_table", "tables")]
    assert table["for_each"] == "${local.bq_tables}"
    assert table["schema"] == '${file("${path.module}/../bigquery/${each.key}.json")}'
    assert tf["locals"]["bq_tables"] == '${jsondecode(file("${path.module}/../bigquery/tables.json"))}'
    tables = json.loads((dc.DEPLOY / "bigquery" / "tables.json").read_text())
    assert set(tables) == set(bq.TABLES)
    for name, spec in tables.items():
        schema = json.loads((dc.DEPLOY / "bigquery" / f"{name}.json").read_text())
        assert [f["name"] for f in schema] == [f.name for f in bq.schema_fields()]
        assert spec["clustering"] == list(bq.CLUSTERING[name])
        assert spec["time_partitioning"]["field"] == bq.PARTITION_FIELD
    ds = tf["resource"][("google_bigquery_dataset", "warehouse")]
    assert ds["location"] == "${var.location}"
    assert dc.tf_defaults()["location"] == "US"


def test_terraform_datastore_indexes_are_index_yaml() -> None:
    tf = dc.terraform()
    idx = tf["resource"][("google_firestore_index", "datastore")]
    assert dc.unquote(idx["api_scope"]) == "DATASTORE_MODE_API"
    assert dc.unquote(idx["query_scope"]) == "COLLECTION_GROUP"
    assert "../datastore/index.yaml" in tf["locals"]["datastore_indexes"]
    # The for expression keys indexes by kind + properties: they must be unique.
    indexes = dc.yaml_docs(dc.DEPLOY / "datastore" / "index.yaml")[0]["indexes"]
    keys = ["-".join([i["kind"], *(p["name"] for p in i["properties"])]) for i in indexes]
    assert len(keys) == len(set(keys))
    assert all(not i.get("ancestor") or i["ancestor"] == "no" for i in indexes), (
        "ancestor indexes need COLLECTION_RECURSIVE"
    )


def test_terraform_pubsub_matches_the_bus() -> None:
    """Names, ack deadline, retention, retry and dead-letter policy as PubSubBus makes them."""
    from rvcloud.backends.bus import pubsub
    from rvcloud.backends.settings import Settings

    bus = pubsub.PubSubBus("p")
    tfv = dc.tf_defaults()
    assert tfv["subscription_suffix"] == bus.subscription_suffix
    assert tfv["ack_deadline_seconds"] == bus.ack_deadline
    assert tfv["max_delivery_attempts"] == max(bus.max_attempts, pubsub.MIN_POLICY_ATTEMPTS)
    assert tfv["min_retry_backoff_seconds"] == bus.min_backoff
    assert tfv["max_retry_backoff_seconds"] == bus.max_backoff
    assert tfv["message_retention"] == f"{7 * 24 * 3600}s"
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert (tfv["topic_stored"], tfv["topic_converted"]) == (
        defaults["topic_stored"],
        defaults["topic_converted"],
    )
    tf = dc.terraform()
    dead = tf["resource"][("google_pubsub_topic", "dead")]
    assert dc.unquote(dead["name"]) == "${each.key}" + pubsub.DEAD_SUFFIX
    sub = tf["resource"][("google_pubsub_subscription", "main")]
    assert dc.unquote(sub["name"]) == "${each.key}${var.subscription_suffix}"
    (dlp,) = sub["dead_letter_policy"]
    assert dlp["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert dlp["dead_letter_topic"] == "${google_pubsub_topic.dead[each.key].id}"
    # Subscriptions never expire (a quiet dead-letter subscription would after 31 days).
    for name in ("main", "dead"):
        (exp,) = tf["resource"][("google_pubsub_subscription", name)]["expiration_policy"]
        assert dc.unquote(exp["ttl"]) == ""


def test_terraform_lifecycle_covers_the_staging_prefixes() -> None:
    from rvcloud.backends.blob import base

    prefixes = set(dc.tf_defaults()["staging_prefixes"])
    assert base.SCRATCH_PREFIX in prefixes
    try:
        from rvcloud.backends.blob import staging
    except ImportError:  # resumable uploads not in this tree yet
        pass
    else:
        assert staging.PREFIX in prefixes
    assert dc.tf_defaults()["staging_max_age_days"] == 7
    raw = dc.terraform()["raw"]["storage.tf"]
    assert "matches_prefix = [lifecycle_rule.value]" in raw
    assert "for_each = var.staging_prefixes" in raw


def test_iam_roles_are_least_privilege() -> None:
    """No stage may administer anything; only the roles the code needs."""
    raw = "\n".join(dc.terraform()["raw"].values())
    roles = set(re.findall(r'"(roles/[\w.]+)"', raw))
    allowed = {
        "roles/storage.objectUser",
        "roles/storage.objectViewer",
        "roles/pubsub.publisher",
        "roles/pubsub.subscriber",
        "roles/datastore.user",
        "roles/bigquery.user",
        "roles/bigquery.dataEditor",
        "roles/iam.workloadIdentityUser",
        "roles/run.invoker",
        "roles/secretmanager.secretAccessor",
    }
    assert roles <= allowed, roles - allowed
    assert not re.search(r"roles/(owner|editor|[\w.]*admin)\b", raw, re.I)


# ---- checkov and yamllint -------------------------------------------------------------


@pytest.mark.parametrize(
    ("directory", "framework"),
    [("terraform", "terraform"), ("k8s", "kubernetes"), ("docker", "dockerfile")],
)
def test_checkov(
    checkov_report: tuple[list[dict[str, str]], list[dict[str, str]]], directory: str, framework: str
) -> None:
    failed, skipped = checkov_report
    root = str(dc.DEPLOY / directory)
    mine = [c for c in failed if c["framework"] == framework and c["file"].startswith(root)]
    _no_errors([f"{c['id']} {c['name']}: {c['resource']} ({c['file']})" for c in mine])
    skips = {c["id"] for c in skipped if c["framework"] == framework and c["file"].startswith(root)}
    assert skips == dc.CHECKOV_SKIPS[framework], (
        "a new checkov skip: list it (with its reason) in deploy/README.md"
    )


def test_yamllint() -> None:
    files = [*(dc.DEPLOY / "k8s").glob("*.yaml"), *(dc.DEPLOY / "cloudrun").glob("*.yaml")]
    _no_errors(dc.yamllint(files))


# ---- the checks catch what they are for --------------------------------------------------


def test_checks_fail_on_broken_copies(tmp_path: Path) -> None:
    docs = dc.k8s_docs()
    # A misspelt probe field, and a string where the gRPC probe wants a port number.
    bad = copy.deepcopy(docs)
    dep = next(d for _, d in bad if d["kind"] == "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["livenessProbe"]["periodSecond"] = 5
    assert dc.check_k8s_schema(bad)
    bad = copy.deepcopy(docs)
    dep = next(d for _, d in bad if d["metadata"]["name"] == "rvcloud-gateway" and d["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"
    assert dc.check_k8s_schema(bad)
    # A Service selecting nothing; a Deployment running as root.
    bad = copy.deepcopy(docs)
    svc = next(d for _, d in bad if d["kind"] == "Service")
    svc["spec"]["selector"] = {"app": "nothing"}
    dep = next(d for _, d in bad if d["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
    errs = dc.check_k8s_refs(bad)
    assert any("matches no Deployment" in e for e in errs) and any("runAsUser" in e for e in errs)
    # A flag the stage does not have, a bad choice, a bad type.
    for stage, args in [
        ("gateway", ["--no-such-flag=1"]),
        ("gateway", ["--auth=kerberos"]),
        ("loader", ["--batch-files=many"]),
    ]:
        assert dc.parse_stage_args(stage, args)[1], (stage, args)
    # An env var nobody reads; a bus URL that may create topics; an unknown URL parameter.
    base = {
        "RVCLOUD_BLOB": "gs://b",
        "RVCLOUD_STATUS": "datastore://p",
        "RVCLOUD_BUS": "pubsub://p?auto_create=0",
    }
    for stage, env in [
        ("converter", {**base, "RVCLOUD_BLOBS": "x"}),
        ("converter", {**base, "RVCLOUD_TOKEN": "x"}),  # the uploader's, not a stage's
        ("converter", {**base, "RVCLOUD_BUS": "pubsub://p"}),
        ("converter", {**base, "RVCLOUD_BUS": "pubsub://p?auto_create=0&ack=9"}),
        ("loader", base),  # no warehouse
    ]:
        assert dc.check_workload(stage, "x", [], env)[0], (stage, env)
    assert not dc.check_workload("converter", "x", [], base)[0]
    # Terraform: an undeclared variable and resource, an unused variable.
    tfdir = tmp_path / "terraform"
    shutil.copytree(dc.DEPLOY / "terraform", tfdir)
    (tfdir.parent / "bigquery").symlink_to(dc.DEPLOY / "bigquery")
    (tfdir.parent / "datastore").symlink_to(dc.DEPLOY / "datastore")
    with open(tfdir / "extra.tf", "w") as f:
        f.write('output "x" {\n  value = "${var.nope}-${google_storage_bucket.nope.name}"\n}\n\n')
        f.write('variable "unused" {\n  type        = string\n  description = "x"\n}\n')
    errs = dc.check_terraform_refs(tfdir)
    assert "var.nope is not declared" in errs
    assert "google_storage_bucket.nope is not declared" in errs
    assert "variable unused is declared but never used" in errs
    # Dockerfile: root user, an extra that does not exist; hadolint on an unpinned apt-get.
    df = tmp_path / "gateway.Dockerfile"
    text = dc.dockerfiles()["gateway"].read_text()
    df.write_text(text.replace("USER 10001:10001", "USER root").replace(".[server,cloud]", ".[server,gpu]"))
    errs = dc.check_dockerfile("gateway", df)
    assert any("non-root" in e for e in errs) and any("[gpu]" in e for e in errs)
    df.write_text("FROM python:3.11-slim\nRUN apt-get update && apt-get install -y curl\n")
    assert dc.hadolint([df])


def test_external_tools_fail_on_broken_copies(
    hcl_errors: list[str],
    checkov_report: tuple[list[dict[str, str]], list[dict[str, str]]],
    broken: dict[str, Path],
) -> None:
    assert any(e.startswith("ugly.tf: not in canonical format") for e in hcl_errors), hcl_errors
    assert any(e.startswith("bad_syntax.tf:") and "canonical" not in e for e in hcl_errors), hcl_errors
    failed, _ = checkov_report
    privileged = [c["id"] for c in failed if c["file"].startswith(str(broken["k8s"]))]
    assert "CKV_K8S_16" in privileged, privileged  # "Container should not be privileged"
