# syntax=docker/dockerfile:1
# Ingest gateway image: `python -m rvcloud.ingest_gateway` (gRPC on 8080, metrics on 9090).
#   docker build -f deploy/docker/gateway.Dockerfile -t rvcloud-gateway .
# The build stage is the same in the three Dockerfiles (tests/deploy checks it), so a
# builder caches it once.

# ---- build: install the package with its server and cloud extras into /opt/venv ------
# The full image has gcc, which builds the C accelerators (converter_worker/_ribfast.c,
# backends/warehouse/_avrocols.c); the runtime image is the slim one of the same release.
FROM python:3.11-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# .dockerignore keeps the context to pyproject.toml, README.md and the package sources;
# rvcloud/'s subpackages are symlinks to the top-level directories copied alongside.
COPY . .
RUN /opt/venv/bin/pip install --no-cache-dir ".[server,cloud]" \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---- runtime: the venv only, non-root ---------------------------------------------
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 rvcloud \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rvcloud --create-home \
      --shell /usr/sbin/nologin rvcloud
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/rvcloud
USER 10001:10001
EXPOSE 8080 9090
# For plain `docker run`: ask the gateway's own grpc.health.v1 service (SERVING only
# while the blob store, bus and status store answer). Kubernetes and Cloud Run ignore
# HEALTHCHECK and use their own gRPC probes (deploy/k8s, deploy/cloudrun).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; s = g.HealthStub(grpc.insecure_channel('127.0.0.1:8080')).Check(h.HealthCheckRequest(), timeout=4); sys.exit(s.status != h.HealthCheckResponse.SERVING)"]
ENTRYPOINT ["python", "-m", "rvcloud.ingest_gateway"]
CMD ["--listen=0.0.0.0:8080", "--metrics-port=9090", "--log-format=json"]
