# syntax=docker/dockerfile:1
# opsbot, the Slack bot (CPU only). Build from the repository root:
#   docker build -t opsbot .
# The model server is a separate image: see Dockerfile.gpu and deploy/vllm.md.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtualenv with torch (CPU build) and opsbot --------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH="/opt/venv/bin:${PATH}"

# The CPU build of the torch pinned in pyproject.toml, first and in its own layer: a plain
# install would pull the CUDA build (several GB), and this layer stays cached across code edits.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /src
COPY . .

# With the runtime lock (requirements/lock-runtime.txt: no dev or local-llm extras, which
# would need a compiler) the dependencies are exactly the locked ones, hash-checked; torch is
# already there from the layer above. Without it pip resolves them from pyproject.toml.
# `pip check` fails the build on an incomplete lock.
RUN if [ -f requirements/lock-runtime.txt ]; then \
        pip install --no-cache-dir --no-deps -r requirements/lock-runtime.txt \
        && pip install --no-cache-dir --no-deps . ; \
    else \
        pip install --no-cache-dir . ; \
    fi \
    && pip check

# --- runtime: the virtualenv, the sample runbooks, a non-root user ------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="opsbot" \
      org.opencontainers.image.description="Chat-ops Slack bot: evidence-first answers from runbooks, metrics and logs" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 opsbot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin opsbot \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv
# Sample runbooks; `opsbot index /opt/opsbot/runbooks` indexes them (mount your own instead).
COPY --from=builder /src/knowledge/runbooks /opt/opsbot/runbooks

# Writable paths are /data (OPSBOT_DATA_DIR) and /tmp only, so that the root filesystem can be
# read-only; caches that libraries would put under $HOME go to /tmp.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPSBOT_DATA_DIR=/data \
    OPSBOT_PORT=3000 \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache

USER 10001:10001
WORKDIR /data
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('OPSBOT_PORT', '3000') + '/livez', timeout=4)"]

ENTRYPOINT ["opsbot"]
CMD ["serve"]
