# lab-ci GitHub App bot: `lab-ci serve` (webhook service + job workers).
# Build:  docker build -t lab-ci-bot .
# Run:    docker run -d --name lab-ci -p 8080:8080 -v lab-ci-data:/data \
#           -e LAB_CI_WEBHOOK_SECRET -e LAB_CI_APP_ID -e LAB_CI_PRIVATE_KEY_PATH=/run/secrets/app.pem \
#           -v /etc/lab-ci/app.pem:/run/secrets/app.pem:ro lab-ci-bot
# No torch in this image: checks and previews run here, each in a limited job process
# (docs/operators/security.md); release builds are dispatched to GitHub Actions
# (docs/maintainers/approvals.md). Add the `train` extra only if you want the local
# build executor.
# -- builder: llama-cpp-python (the `preview` extra) has no manylinux wheel for every
# platform and is compiled from source here; it needs a C/C++ toolchain and CMake, which
# stay out of the final image.
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY lab_ci ./lab_ci
COPY schemas ./schemas
# Wheels for lab-ci and every dependency (llama-cpp-python built once, here), without
# ggml's AMX kernels on x86_64: they crash on some AMX Xeons (docs/operators/teachers.md).
RUN case "$(uname -m)" in x86_64) F="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" ;; *) F="" ;; esac \
    && CFLAGS="$F" CXXFLAGS="$F" pip wheel --wheel-dir /wheels ".[bot,preview]"

# -- runtime
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: the bot fetches pull request heads into local mirrors (lab-ci runs the git binary).
# libgomp1: the OpenMP runtime the compiled llama.cpp links against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links /wheels "lab-ci[bot,preview]" \
    && rm -rf /wheels

# Run as an unprivileged user; all state (queue database, git mirrors, caches) lives in
# the LAB_CI_DATA_DIR volume.
RUN useradd --system --create-home --home-dir /home/labci --uid 10001 labci \
    && mkdir -p /data && chown labci:labci /data
USER labci
WORKDIR /home/labci
ENV LAB_CI_DATA_DIR=/data \
    LAB_CI_WORKERS=2
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"

# SIGTERM (docker stop) shuts down gracefully: stop accepting, let running jobs finish for
# --shutdown-grace seconds, give the rest back to the queue, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["lab-ci"]
# The container listens on all interfaces, so `lab-ci serve` refuses to start (exit 2)
# without LAB_CI_WEBHOOK_SECRET: unsigned deliveries are only accepted on loopback or
# with --insecure-no-signature (a proxy in front verifies signatures).
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
