"""Offline checks of deploy/ (docker, cloudrun, k8s, terraform): the library behind
tests/deploy/test_deploy.py and `make deploy-check`.

Each ``check_*`` function returns a list of problems (empty: fine), so the tests can
also feed them broken copies and show that they fail.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = Path(os.environ.get("DEPLOY_TOOLS", ROOT / "build" / "deploy-tools"))

# The Kubernetes version every manifest is validated against (GKE's channels carry it;
# the native gRPC probe is GA since 1.27).
K8S_VERSION = "1.33.0"
STAGES = {
    "gateway": "rvcloud.ingest_gateway",
    "converter": "rvcloud.converter_worker",
    "loader": "rvcloud.loader_worker",
}
# What the placeholders of deploy/k8s and deploy/cloudrun stand for in these checks.
PLACEHOLDERS = {"PROJECT_ID": "rvcloud-check", "REGION": "us-west1", "TAG": "0.0.0"}
# Kinds that are not in the Kubernetes OpenAPI schemas (CRDs and kustomize's own file):
# checked by check_k8s_refs instead.
CRD_KINDS = {
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("networking.gke.io/v1", "GCPBackendPolicy"),
    ("networking.gke.io/v1", "HealthCheckPolicy"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
# Flags the manifests may use before the stage has them (a change landing in parallel):
# while a stage's --help does not list one, it is a warning, not an error, and is left
# out of the argument parse. Keep it empty otherwise.
PENDING_FLAGS: set[tuple[str, str]] = set()
# Checks checkov may skip: every skip is an inline annotation/comment with its reason
# in the manifest; one not listed here fails the test (no silent new skips).
CHECKOV_SKIPS = {
    "terraform": {"CKV_GCP_62", "CKV_GCP_78", "CKV_GCP_80", "CKV_GCP_81", "CKV_GCP_83"},
    "kubernetes": {"CKV_K8S_9", "CKV_K8S_11", "CKV_K8S_43"},
    "dockerfile": set(),
}


# ---- files ----------------------------------------------------------------------------


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def substitute(obj: Any, mapping: dict[str, str] = PLACEHOLDERS) -> Any:
    """Replace the placeholders in every string of ``obj``."""
    if isinstance(obj, str):
        for k, v in mapping.items():
            obj = obj.replace(k, v)
        return obj
    if isinstance(obj, list):
        return [substitute(x, mapping) for x in obj]
    if isinstance(obj, dict):
        return {k: substitute(v, mapping) for k, v in obj.items()}
    return obj


def k8s_files() -> list[Path]:
    return sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in k8s_files() for d in yaml_docs(p)]


def cloudrun_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in sorted((DEPLOY / "cloudrun").glob("*.yaml")) for d in yaml_docs(p)]


def dockerfiles() -> dict[str, Path]:
    return {stage: DEPLOY / "docker" / f"{stage}.Dockerfile" for stage in STAGES}


def stage_of_image(image: str) -> str:
    m = re.search(r"/rvcloud/(gateway|converter|loader):", image)
    if not m:
        raise ValueError(f"image {image!r} is none of the stages' (…/rvcloud/STAGE:TAG)")
    return m.group(1)


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a Deployment or a Cloud Run (Knative) Service; None for others."""
    if doc.get("kind") == "Deployment" or doc.get("apiVersion") == "serving.knative.dev/v1":
        return doc["spec"]["template"]["spec"]
    return None


def workloads() -> list[tuple[str, Path, dict[str, Any], dict[str, Any]]]:
    """(stage, file, document, container) for every container of deploy/k8s and deploy/cloudrun."""
    out = []
    for path, doc in [*k8s_docs(), *cloudrun_docs()]:
        spec = pod_spec(doc)
        for c in (spec or {}).get("containers", []):
            out.append((stage_of_image(c["image"]), path, doc, c))
    return out


def container_env(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: envFrom ConfigMaps of deploy/k8s, then env entries."""
    env: dict[str, str] = {}
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for _, d in k8s_docs() if d["kind"] == "ConfigMap"}
    for src in container.get("envFrom", []):
        name = src["configMapRef"]["name"]
        env.update(configmaps.get(name, {f"<missing ConfigMap {name}>": ""}))
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", "")
    return env


# ---- Dockerfiles --------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in path.read_text().splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in dockerfile_instructions(path):
        if ins[0] == "FROM":
            stages.append([])
        stages[-1].append(ins)
    return stages


def check_dockerfile(stage: str, path: Path) -> list[str]:
    """Multi-stage (built on python:3.11-bookworm, run on its slim twin), extras that
    exist, non-root, the stage's module."""
    errs: list[str] = []
    stages = dockerfile_stages(path)
    if len(stages) < 2:
        errs.append(f"{path.name}: not a multi-stage build")
        return errs
    # Build on the full image (gcc for the converter's C accelerator), run on the slim
    # one of the same Python and Debian release (the venv points at its interpreter).
    want_images = ["python:3.11-bookworm"] * (len(stages) - 1) + ["python:3.11-slim-bookworm"]
    for st, want_image in zip(stages, want_images, strict=True):
        image = st[0][1].split()[0]
        if image != want_image:
            errs.append(f"{path.name}: base image {image}, expected {want_image}")
    final = stages[-1]
    users = [a for i, a in final if i == "USER"]
    if not users:
        errs.append(f"{path.name}: final stage runs as root (no USER)")
    else:
        uid = users[-1].split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            errs.append(
                f"{path.name}: USER {users[-1]} is not a numeric non-root uid (runAsNonRoot needs one)"
            )
    if any(i == "RUN" for i, _ in final if "pip install" in _):
        errs.append(f"{path.name}: the final stage installs packages (build stage's job)")
    extras = set(pyproject()["project"]["optional-dependencies"])
    for i, a in stages[0]:
        if i == "RUN" and "pip install" in a:
            for m in re.finditer(r"\.\[([a-z,]+)\]", a):
                for e in m.group(1).split(","):
                    if e not in extras:
                        errs.append(f"{path.name}: extra [{e}] is not in pyproject.toml ({sorted(extras)})")
    entry = [a for i, a in final if i == "ENTRYPOINT"]
    want = ["python", "-m", STAGES[stage]]
    if not entry or json.loads(entry[-1]) != want:
        errs.append(f"{path.name}: ENTRYPOINT {entry} is not {want}")
    hc = [a for i, a in final if i == "HEALTHCHECK"]
    if not hc:
        errs.append(f"{path.name}: no HEALTHCHECK instruction (say NONE, with the reason, if none)")
    return errs


def docker_cmd(path: Path) -> list[str]:
    cmd = [a for i, a in dockerfile_stages(path)[-1] if i == "CMD"]
    return json.loads(cmd[-1]) if cmd else []


def docker_exposed(path: Path) -> set[int]:
    return {int(p.split("/")[0]) for i, a in dockerfile_stages(path)[-1] if i == "EXPOSE" for p in a.split()}


def docker_user(path: Path) -> int:
    return int([a for i, a in dockerfile_stages(path)[-1] if i == "USER"][-1].split(":")[0])


def dockerignore_admits(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes; a match on a
    directory covers what is under it."""
    parts = rel.split("/")
    admitted = True
    for raw in patterns:
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        pat = pat.strip("/")
        hit = False
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pat) or (
                pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])
            ):
                hit = True
                break
        if hit:
            admitted = neg
    return admitted


def docker_context(dest: Path) -> list[str]:
    """Copy what .dockerignore lets into the build context to ``dest``; the copied paths."""
    patterns = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copied = []
    for dirpath, dirnames, filenames in os.walk(ROOT, followlinks=False):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "build", "node_modules")]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not dockerignore_admits(rel, patterns):
                continue
            src, dst = ROOT / rel, dest / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
            copied.append(rel)
    return copied


# ---- the stages' command lines ---------------------------------------------------------

_PARSE = r"""
import argparse, json, runpy, sys
mod, args = sys.argv[1], json.loads(sys.argv[2])
orig = argparse.ArgumentParser.parse_args
def parse_args(self, a=None, ns=None):
    res = orig(self, a, ns)  # the stage's own parser: unknown flags, types, choices
    print("PARSED " + json.dumps(vars(res), default=str))
    raise SystemExit(0)
argparse.ArgumentParser.parse_args = parse_args
sys.argv = [mod, *args]
runpy.run_module(mod, run_name="__main__", alter_sys=True)
sys.exit("the module returned without parsing its arguments")
"""


@functools.cache
def help_flags(stage: str) -> frozenset[str]:
    out = subprocess.run(
        [sys.executable, "-m", STAGES[stage], "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    if out.returncode != 0:
        raise RuntimeError(f"{STAGES[stage]} --help failed: {out.stderr}")
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.stdout))


@functools.cache
def _parse(stage: str, args: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, STAGES[stage], json.dumps(list(args))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    for line in out.stdout.splitlines():
        if line.startswith("PARSED "):
            return json.loads(line[7:]), ""
    return None, (out.stderr.strip().splitlines() or ["(no output)"])[-1]


def parse_stage_args(stage: str, args: list[str]) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """Parse ``args`` with the stage's real argparse parser (without running the stage).

    Returns (namespace or None, errors, warnings). Flags in PENDING_FLAGS that the stage
    does not have yet become warnings and are left out of the parse.
    """
    errs: list[str] = []
    warns: list[str] = []
    known = help_flags(stage)
    keep: list[str] = []
    for a in args:
        flag = a.split("=", 1)[0]
        if a.startswith("--") and flag not in known:
            if (stage, flag) in PENDING_FLAGS:
                warns.append(f"{stage}: {flag} not in `{STAGES[stage]} --help` yet (pending)")
                continue
            errs.append(f"{stage}: {flag} is not a flag of `python -m {STAGES[stage]}`")
        keep.append(a)
    ns, err = _parse(stage, tuple(keep))
    if ns is None:
        errs.append(f"{stage}: {keep} rejected by its parser: {err}")
    return ns, errs, warns


def code_env_names() -> set[str]:
    """RVCLOUD_* names the stages' code mentions (settings' table, os.environ reads)."""
    names: set[str] = set()
    # Not cli/: its RVCLOUD_* settings are the uploader's, which no stage reads.
    for d in ("backends", "converter_worker", "ingest_gateway", "loader_worker", "metadata", "mrt"):
        for p in (ROOT / d).rglob("*.py"):
            names |= set(re.findall(r"[\"'](RVCLOUD_[A-Z0-9_]+)[\"']", p.read_text()))
    return names


def backend_env_names() -> dict[str, str]:
    from rvcloud.backends import settings

    return dict(settings._ENV)


_OPEN = r"""
import json, sys
from rvcloud.backends import factory
urls = json.loads(sys.argv[1])
out = {}
for kind, url in urls.items():
    try:
        if kind == "blob":
            o = factory.open_blob_store(url)
        elif kind == "bus":
            o = factory.open_event_bus(url)
            out["bus.auto_create"] = repr(getattr(o, "auto_create", None))
        elif kind == "status":
            o = factory.open_status_store(url)
        elif kind == "warehouse":
            o = factory.open_warehouse(url, factory.open_blob_store("file:///nonexistent-rvcloud-check"))
            out["warehouse.location"] = repr(getattr(o, "location", None))
        out[kind] = repr(o)
    except Exception as e:
        out[kind] = "ERROR " + type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


def open_backends(urls: dict[str, str]) -> dict[str, str]:
    """Open each backend URL with the real factory (emulator hosts pointed at a closed
    port, so no client needs credentials and nothing is contacted)."""
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    env.update(
        STORAGE_EMULATOR_HOST="http://127.0.0.1:9",
        PUBSUB_EMULATOR_HOST="127.0.0.1:9",
        DATASTORE_EMULATOR_HOST="127.0.0.1:9",
        BIGQUERY_EMULATOR_HOST="http://127.0.0.1:9",
    )
    out = subprocess.run(
        [sys.executable, "-c", _OPEN, json.dumps(urls)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def check_workload(
    stage: str, where: str, args: list[str], env: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Flags parse, env names exist in the code, backend URLs open, nothing embedded."""
    ns, errs, warns = parse_stage_args(stage, args)
    known_env = code_env_names()
    for name in env:
        if name not in known_env:
            errs.append(f"{where}: env {name} is read nowhere in the code")
    by_kind = {kind: env_name for kind, env_name in backend_env_names().items()}
    needed = ["blob", "bus", "status"] + (["warehouse"] if stage == "loader" else [])
    urls = {}
    for kind in needed:
        flag = (ns or {}).get(kind)
        url = flag or env.get(by_kind[kind])
        if not url:
            errs.append(
                f"{where}: no {by_kind[kind]} (the stage would fall back to embedded files in the container)"
            )
        else:
            urls[kind] = substitute(url)
    for kind, res in open_backends(urls).items():
        if res.startswith("ERROR"):
            errs.append(f"{where}: {kind} URL {urls.get(kind)!r}: {res}")
        if kind == "bus.auto_create" and res != "False":
            errs.append(f"{where}: the bus URL must say auto_create=0 (the stages may not create topics)")
    return errs, warns


# ---- Kubernetes ----------------------------------------------------------------------


def check_k8s_schema(docs: list[tuple[Path, dict[str, Any]]], version: str = K8S_VERSION) -> list[str]:
    import kubernetes_validate as kv

    errs = []
    for path, doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in CRD_KINDS:
            continue
        try:
            kv.validate(substitute(doc), version, strict=True)
        except kv.ValidationError as e:
            errs.append(
                f"{path.name} {key[1]}/{doc.get('metadata', {}).get('name')}: {e.message} at {list(e.path)}"
            )
        except kv.SchemaNotFoundError:
            errs.append(
                f"{path.name}: no Kubernetes {version} schema for {key} (a typo, or add it to CRD_KINDS)"
            )
    return errs


def check_cloudrun_podspec(docs: list[tuple[Path, dict[str, Any]]], version: str = K8S_VERSION) -> list[str]:
    """A Cloud Run revision's spec is a Kubernetes PodSpec plus containerConcurrency and
    timeoutSeconds: validate the rest as a Pod, strictly (catches misspelt probe,
    resource and volume fields)."""
    import kubernetes_validate as kv

    errs = []
    for path, doc in docs:
        if doc.get("apiVersion") != "serving.knative.dev/v1" or doc.get("kind") != "Service":
            errs.append(f"{path.name}: not a serving.knative.dev/v1 Service")
            continue
        spec = dict(doc["spec"]["template"]["spec"])
        for k in ("containerConcurrency", "timeoutSeconds"):
            spec.pop(k, None)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": substitute(spec)}
        try:
            kv.validate(pod, version, strict=True)
        except kv.ValidationError as e:
            errs.append(f"{path.name}: {e.message} at spec.template.spec.{'.'.join(map(str, e.path))}")
    return errs


def _find(docs: list[tuple[Path, dict[str, Any]]], kind: str, name: str) -> dict[str, Any] | None:
    for _, d in docs:
        if d.get("kind") == kind and d["metadata"]["name"] == name:
            return d
    return None


def check_k8s_refs(docs: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Names that must meet: selectors, service accounts, ConfigMaps, HPA/PDB targets,
    routes and policies, probe ports, the non-root settings, kustomization resources."""
    errs: list[str] = []
    deployments = [d for _, d in docs if d["kind"] == "Deployment"]
    for d in deployments:
        name = d["metadata"]["name"]
        tpl = d["spec"]["template"]
        sel = d["spec"]["selector"]["matchLabels"]
        if any(tpl["metadata"]["labels"].get(k) != v for k, v in sel.items()):
            errs.append(f"Deployment {name}: selector {sel} does not match its pod labels")
        spec = tpl["spec"]
        if not _find(docs, "ServiceAccount", spec.get("serviceAccountName", "default")):
            errs.append(f"Deployment {name}: ServiceAccount {spec.get('serviceAccountName')} not defined")
        psc = spec.get("securityContext", {})
        if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
            errs.append(f"Deployment {name}: pod securityContext lacks runAsNonRoot/runAsUser")
        for c in spec["containers"]:
            stage = stage_of_image(c["image"])
            uid = docker_user(dockerfiles()[stage])
            if psc.get("runAsUser") != uid:
                errs.append(f"Deployment {name}: runAsUser {psc.get('runAsUser')} != the image's USER {uid}")
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or not csc.get("readOnlyRootFilesystem"):
                errs.append(f"Deployment {name}: container {c['name']} may escalate or write its root fs")
            for src in c.get("envFrom", []):
                if not _find(docs, "ConfigMap", src["configMapRef"]["name"]):
                    errs.append(f"Deployment {name}: ConfigMap {src['configMapRef']['name']} not defined")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                pr = c.get(probe)
                if not pr:
                    continue
                for how in ("grpc", "tcpSocket", "httpGet"):
                    if how in pr:
                        port = pr[how]["port"]
                        if isinstance(port, str) and port not in ports:
                            errs.append(f"Deployment {name}: {probe} port {port!r} is no container port")
                        if isinstance(port, int) and port not in ports.values():
                            errs.append(f"Deployment {name}: {probe} port {port} is no container port")
            exposed = docker_exposed(dockerfiles()[stage])
            for p in ports.values():
                if p not in exposed:
                    errs.append(f"Deployment {name}: port {p} is not EXPOSEd by {stage}.Dockerfile {exposed}")
        mounts = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        vols = {v["name"] for v in spec.get("volumes", [])}
        if mounts - vols:
            errs.append(f"Deployment {name}: mounts without volumes {mounts - vols}")
    for _, d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "Service":
            sel = d["spec"]["selector"]
            targets = [
                x
                for x in deployments
                if all(x["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
            ]
            if not targets:
                errs.append(f"Service {name}: selector {sel} matches no Deployment")
            for p in d["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                cports = {
                    (q["name"], q["containerPort"])
                    for x in targets
                    for c in x["spec"]["template"]["spec"]["containers"]
                    for q in c.get("ports", [])
                }
                if not any(tp in pair for pair in cports):
                    errs.append(f"Service {name}: targetPort {tp} is no container port of its pods")
        elif kind in ("HorizontalPodAutoscaler",):
            ref = d["spec"]["scaleTargetRef"]
            if not _find(docs, ref["kind"], ref["name"]):
                errs.append(f"HPA {name}: target {ref['kind']}/{ref['name']} not defined")
        elif kind == "PodDisruptionBudget":
            sel = d["spec"]["selector"]["matchLabels"]
            if not any(
                all(x["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
                for x in deployments
            ):
                errs.append(f"PDB {name}: selector matches no Deployment")
        elif kind == "HTTPRoute":
            for pr in d["spec"]["parentRefs"]:
                gw = _find(docs, "Gateway", pr["name"])
                if not gw:
                    errs.append(f"HTTPRoute {name}: Gateway {pr['name']} not defined")
                elif "sectionName" in pr and pr["sectionName"] not in {
                    ls["name"] for ls in gw["spec"]["listeners"]
                }:
                    errs.append(f"HTTPRoute {name}: Gateway {pr['name']} has no listener {pr['sectionName']}")
            for rule in d["spec"]["rules"]:
                for br in rule["backendRefs"]:
                    svc = _find(docs, "Service", br["name"])
                    if not svc or br["port"] not in {p["port"] for p in svc["spec"]["ports"]}:
                        errs.append(f"HTTPRoute {name}: backend {br['name']}:{br['port']} not defined")
                    elif not any(
                        p["port"] == br["port"] and p.get("appProtocol") in ("kubernetes.io/h2c", "HTTP2")
                        for p in svc["spec"]["ports"]
                    ):
                        errs.append(
                            f"HTTPRoute {name}: backend port {br['port']} is not HTTP/2 (appProtocol)"
                        )
        elif kind in ("GCPBackendPolicy", "HealthCheckPolicy"):
            ref = d["spec"]["targetRef"]
            svc = _find(docs, ref["kind"], ref["name"])
            if not svc:
                errs.append(f"{kind} {name}: target {ref['kind']}/{ref['name']} not defined")
            if kind == "GCPBackendPolicy" and not 1 <= d["spec"]["default"].get("timeoutSec", 30) <= 86400:
                errs.append(f"{kind} {name}: timeoutSec out of range")
            if kind == "HealthCheckPolicy":
                cfg = d["spec"]["default"]["config"]
                if cfg["type"] != "GRPC" or "grpcHealthCheck" not in cfg:
                    errs.append(f"{kind} {name}: expected a GRPC health check")
                elif svc and cfg["grpcHealthCheck"].get("port") not in {
                    p.get("targetPort") if isinstance(p.get("targetPort"), int) else p["port"]
                    for p in svc["spec"]["ports"]
                }:
                    errs.append(f"{kind} {name}: health-check port is not the Service's gRPC port")
        elif kind == "ServiceAccount":
            ann = d["metadata"].get("annotations", {}).get("iam.gke.io/gcp-service-account", "")
            if ann != f"{name}@PROJECT_ID.iam.gserviceaccount.com":
                errs.append(
                    f"ServiceAccount {name}: Workload Identity annotation {ann!r} is not {name}@PROJECT_ID…"
                )
    kust = yaml_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    listed = set(kust["resources"])
    present = {p.name for p in k8s_files()}
    if listed != present:
        errs.append(f"kustomization.yaml resources {sorted(listed)} != files {sorted(present)}")
    return errs


# ---- Terraform ---------------------------------------------------------------------


def unquote(s: Any) -> Any:
    if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


@functools.cache
def terraform(dir_: Path = DEPLOY / "terraform") -> dict[str, Any]:
    """The module's blocks (python-hcl2): variables, locals, resources, data, outputs."""
    import hcl2

    tf: dict[str, Any] = {"variable": {}, "locals": {}, "resource": {}, "data": {}, "output": {}, "raw": {}}
    for p in sorted(dir_.glob("*.tf")):
        text = p.read_text()
        tf["raw"][p.name] = text
        d = hcl2.loads(text)
        for v in d.get("variable", []):
            for name, body in v.items():
                tf["variable"][unquote(name)] = body
        for loc in d.get("locals", []):
            tf["locals"].update({k: v for k, v in loc.items() if not k.startswith("__")})
        for kind in ("resource", "data"):
            for r in d.get(kind, []):
                for typ, named in r.items():
                    for name, body in named.items():
                        tf[kind][(unquote(typ), unquote(name))] = body
        for o in d.get("output", []):
            for name, body in o.items():
                tf["output"][unquote(name)] = body
    return tf


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for x in obj:
            yield from _strings(x)


def check_terraform_refs(dir_: Path = DEPLOY / "terraform") -> list[str]:
    """What `terraform validate` checks first: every var./local./resource/data reference
    names something declared; file() paths exist; every variable is used and described."""
    tf = terraform(dir_)
    errs = []
    used_vars: set[str] = set()
    bodies = [tf["locals"], *tf["resource"].values(), *tf["data"].values(), *tf["output"].values()]
    bodies += [{k: v for k, v in b.items() if k != "description"} for b in tf["variable"].values()]
    text = "\n".join(s for b in bodies for s in _strings(b))
    text += "\n" + "\n".join(s for s in _strings(tf["raw"].get("versions.tf", "")))
    declared_res = {f"{t}.{n}" for t, n in tf["resource"]}
    declared_data = {f"data.{t}.{n}" for t, n in tf["data"]}
    for m in re.finditer(r"(?<![\w.])var\.([A-Za-z_][\w-]*)", text):
        used_vars.add(m.group(1))
        if m.group(1) not in tf["variable"]:
            errs.append(f"var.{m.group(1)} is not declared")
    for m in re.finditer(r"(?<![\w.])local\.([A-Za-z_][\w-]*)", text):
        if m.group(1) not in tf["locals"]:
            errs.append(f"local.{m.group(1)} is not declared")
    for m in re.finditer(r"(?<![\w.])data\.(google_\w+)\.([A-Za-z_][\w-]*)", text):
        if f"data.{m.group(1)}.{m.group(2)}" not in declared_data:
            errs.append(f"data.{m.group(1)}.{m.group(2)} is not declared")
    for m in re.finditer(r"(?<![\w.])(google_\w+)\.([A-Za-z_][\w-]*)", text):
        if f"{m.group(1)}.{m.group(2)}" not in declared_res:
            errs.append(f"{m.group(1)}.{m.group(2)} is not declared")
    for name, body in tf["variable"].items():
        if name not in used_vars:
            errs.append(f"variable {name} is declared but never used")
        if "description" not in body or "type" not in body:
            errs.append(f"variable {name} lacks a description or type")
    for m in re.finditer(r'file\("\$\{path\.module\}/([^"]+)"\)', text.replace('\\"', '"')):
        pattern = re.sub(r"\$\{[^}]+\}", "*", m.group(1))
        if not list(dir_.glob(pattern)):
            errs.append(f"file({m.group(1)}) matches no file")
    return sorted(set(errs))


class Unsupported(ValueError):
    pass


def tf_eval(expr: Any, vars_: dict[str, Any], tf: dict[str, Any]) -> Any:
    """Evaluate the simple expressions the checks compare: literals, quoted strings with
    ${var.X}/${local.X.Y} interpolation, lists and maps of those."""
    if isinstance(expr, (int, float, bool)) or expr is None:
        return expr
    if isinstance(expr, list):
        return [tf_eval(x, vars_, tf) for x in expr]
    if isinstance(expr, dict):
        return {k: tf_eval(v, vars_, tf) for k, v in expr.items() if not k.startswith("__")}
    s = str(expr)

    def ref(path: str) -> Any:
        head, *rest = path.split(".")
        if head == "var":
            val = vars_[rest[0]]
            rest = rest[1:]
        elif head == "local":
            val = tf_eval(tf["locals"][rest[0]], vars_, tf)
            rest = rest[1:]
        else:
            raise Unsupported(path)
        for r in rest:
            val = val[r]
        return val

    m = re.fullmatch(r"\$\{([\w.]+)\}", s)
    if m:
        return ref(m.group(1))
    m = re.fullmatch(r'\$\{coalesce\(([\w.]+), ("[^"]*(?:"[^"]*"[^"]*)*")\)\}', s)
    if m:  # coalesce(var.x, "literal ${...}")
        first = ref(m.group(1))
        return first if first is not None else tf_eval(m.group(2), vars_, tf)
    if s.startswith('"') and s.endswith('"'):
        inner = s[1:-1]
        if "${" in re.sub(r"\$\{([\w.]+)\}", "", inner):
            raise Unsupported(s)
        return re.sub(r"\$\{([\w.]+)\}", lambda mm: str(ref(mm.group(1))), inner)
    raise Unsupported(s)


def tf_defaults(**overrides: Any) -> dict[str, Any]:
    tf = terraform()
    out = {}
    for name, body in tf["variable"].items():
        d = body.get("default")
        out[name] = None if d == "${null}" else tf_eval(d, {}, tf) if d is not None else None
    out.update(overrides)
    return out


# ---- external tools --------------------------------------------------------------------


PROVIDER_SCHEMA = TOOLS / "google-provider-schema.json"
# Terraform block arguments that are not the resource's own (meta-arguments).
_META = {"count", "for_each", "depends_on", "provider", "lifecycle"}


def check_terraform_schema(
    dir_: Path = DEPLOY / "terraform", schema_path: Path = PROVIDER_SCHEMA
) -> list[str]:
    """What `terraform validate` checks against the provider: every resource and data
    type exists, every argument and block is one of its schema (blocks written as
    blocks, arguments as arguments, at every nesting level, `dynamic` included) and
    every required one is there."""
    schema = json.loads(schema_path.read_text())
    ver = schema["provider_version"]
    types = schema["types"]
    errs: list[str] = []

    def body(b: dict[str, Any], key: str, where: str, top: bool) -> None:
        node = types[key]
        present = set()
        for k, v in b.items():
            if k.startswith("__") or (top and k in _META):
                continue
            if k == "dynamic":
                for dyn in v:
                    for dname, dbody in dyn.items():
                        name = unquote(dname)
                        if name not in node["blocks"]:
                            errs.append(f"{where}: dynamic {name!r} is no block of it (google {ver})")
                            continue
                        present.add(name)
                        for content in dbody.get("content", []):
                            body(content, node["blocks"][name][0], f"{where}.{name}", False)
                continue
            is_block = (
                isinstance(v, list)
                and bool(v)
                and all(isinstance(x, dict) and x.get("__is_block__") for x in v)
            )
            if k in node["blocks"]:
                present.add(k)
                if not is_block:
                    errs.append(f"{where}: {k} is a block, written as an argument")
                    continue
                for x in v:
                    body(x, node["blocks"][k][0], f"{where}.{k}", False)
            elif k in node["attrs"]:
                present.add(k)
                if is_block:
                    errs.append(f"{where}: {k} is an argument, written as a block")
            else:
                errs.append(f"{where}: {k!r} is no argument or block of it (google {ver})")
        for a, required in node["attrs"].items():
            if required and a not in present:
                errs.append(f"{where}: required argument {a!r} missing")
        for blk, (_, required) in node["blocks"].items():
            if required and blk not in present:
                errs.append(f"{where}: required block {blk!r} missing")

    tf = terraform(dir_)
    for kind in ("resource", "data"):
        for (typ, name), b in tf[kind].items():
            where = f"{'data.' if kind == 'data' else ''}{typ}.{name}"
            if typ not in schema[kind]:
                errs.append(f"{where}: no {kind} type {typ} in google {ver}")
                continue
            body(b, schema[kind][typ], where, True)
    return errs


def tools_ready() -> bool:
    return all(
        p.exists()
        for p in (
            TOOLS / "venv" / "bin" / "checkov",
            TOOLS / "node" / "node_modules" / "@cdktf",
            PROVIDER_SCHEMA,
        )
    )


def install_tools() -> None:
    subprocess.run(
        ["bash", str(ROOT / "tests" / "deploy" / "install_tools.sh")],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PY": sys.executable, "DEPLOY_TOOLS": str(TOOLS)},
        timeout=1200,
    )


def hcl_check(files: list[Path]) -> list[str]:
    """HashiCorp's parser and formatter (WebAssembly builds, via node)."""
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "deploy" / "hcl.js"), *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(TOOLS / "node" / "node_modules")},
        timeout=120,
    )
    if out.returncode != 0:
        return [f"hcl.js failed: {out.stderr.strip()}"]
    errs = []
    for line in out.stdout.splitlines():
        r = json.loads(line)
        name = Path(r["file"]).name
        if not r["parsed"]:
            errs.append(f"{name}: {r['error']}")
        elif not r["formatted"]:
            errs.append(f"{name}: not in canonical format (terraform fmt would rewrite it)")
    return errs


def checkov(
    directories: list[Path], frameworks: list[str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """One offline checkov run (its start-up is most of its time) over several
    directories: (failed checks, skipped checks), each {framework, id, name, resource, file}."""
    cmd = [
        str(TOOLS / "venv" / "bin" / "checkov"),
        "--skip-download",
        "--compact",
        "-o",
        "json",
        "--framework",
        *frameworks,
    ]
    for d in directories:
        cmd += ["-d", str(d)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    )
    # One JSON document per directory (an object, or a list of them per framework).
    reports: list[dict[str, Any]] = []
    dec, text, pos = json.JSONDecoder(), out.stdout, 0
    try:
        while text[pos:].strip():
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            doc, pos = dec.raw_decode(text, pos)
            reports += doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError as e:
        raise RuntimeError(f"checkov: no JSON report (exit {out.returncode}): {out.stderr[-2000:]}") from e
    if not reports:
        raise RuntimeError(f"checkov: no JSON report (exit {out.returncode}): {out.stderr[-2000:]}")
    failed: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for r in reports:
        if "results" not in r:  # a framework with nothing to scan
            continue
        for key, acc in (("failed_checks", failed), ("skipped_checks", skipped)):
            for c in r["results"].get(key, []):
                acc.append(
                    {
                        "framework": r["check_type"],
                        "id": c["check_id"],
                        "name": c["check_name"],
                        "resource": c["resource"],
                        "file": c.get("file_abs_path") or c["file_path"],
                    }
                )
    return failed, skipped


def hadolint(paths: list[Path]) -> list[str]:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run([exe, "--no-color", *map(str, paths)], capture_output=True, text=True, timeout=60)
    return [ln for ln in out.stdout.splitlines() if ln.strip()] if out.returncode else []


def yamllint(paths: list[Path]) -> list[str]:
    conf = (
        "{extends: default, rules: {line-length: {max: 120}, document-start: disable,"
        " truthy: {check-keys: false}}}"
    )
    out = subprocess.run(
        [sys.executable, "-m", "yamllint", "-f", "parsable", "-d", conf, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [ln for ln in out.stdout.splitlines() if ln.strip()] if out.returncode else []


@functools.cache
def pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())
