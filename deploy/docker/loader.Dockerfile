# syntax=docker/dockerfile:1
# Loader worker image: `python -m rvcloud.loader_worker` (pulls from Pub/Sub; serves only
# Prometheus metrics, on 9090, with --metrics-port).
#   docker build -f deploy/docker/loader.Dockerfile -t rvcloud-loader .
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
EXPOSE 9090
# No HEALTHCHECK: a worker answers no requests, so there is nothing to ask beyond "the
# process runs" (which the runtime already knows); a stuck file is caught by its lease
# running out (the sweeper re-queues it), not by a probe. Kubernetes and Cloud Run
# ignore HEALTHCHECK anyway.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "rvcloud.loader_worker"]
CMD ["--metrics-port=9090", "--log-format=json"]
