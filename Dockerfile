# hotmess: reproduce "The Hot Mess of AI" (arXiv 2601.23045) in a container.
#
# The default build is the CUDA image for SGLang on a GPU host (every package from the full
# CUDA lock constraints-cuda.txt, made by `nox -s lock`):
#   docker build -t hotmess \
#       --build-arg GIT_REVISION="$(git rev-parse HEAD)" --build-arg VERSION=0.1.0 .
# The CPU image is this same file on a Debian base with the CPU lock (what CI builds and runs,
# `nox -s image`, which also makes the Debian base with mmdebstrap):
#   docker build -t hotmess:cpu --build-arg BASE=debian:bookworm \
#       --build-arg LOCK=constraints.txt --build-arg EXTRAS=hf,datasets,api,embed,swebench,synthetic \
#       --build-arg GIT_REVISION="$(git rev-parse HEAD)" --build-arg VERSION=0.1.0 .
#
# Run as yourself, so the cubes and figures on the bind mounts belong to you; model weights
# and the GGUF conversion go to the /cache volume; keys are passed by name only (their values
# come from your environment and never enter the image or the command line):
#   mkdir -p results figures cache
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" \
#       -v "$PWD/results:/work/results" -v "$PWD/figures:/work/figures" -v "$PWD/cache:/cache" \
#       -e HF_TOKEN -e OPENAI_API_KEY -e ANTHROPIC_API_KEY \
#       hotmess reproduce --scale paper
#   docker run --rm --user "$(id -u):$(id -g)" \
#       -v "$PWD/results:/work/results" -v "$PWD/figures:/work/figures" hotmess paper
# SWE-bench (experiment swebench_frontier) does not run inside this image: its harness starts
# one Docker container per task, and the image has neither a Docker CLI nor the host's socket.
# Run that experiment on the host (README, "SWE-bench"); `hotmess paper` in the image builds its
# figures from the cube it leaves under results/.
#
# Base: CUDA 13.0 (the CUDA build of torch that SGLang 0.5.23 pins in constraints-cuda.txt)
# on Ubuntu 24.04 (Python 3.12). `devel`, not `runtime`: FlashInfer, DeepGEMM and Triton compile
# kernels with nvcc and gcc at first use. No `cudnn` tag: torch brings cuDNN as a wheel.
# Pinned by digest (the multi-arch index digest of the tag, as published; no registry is
# reachable from the machine that wrote this). Update the pin on a host that reaches Docker Hub:
#   docker buildx imagetools inspect nvidia/cuda:13.0.1-devel-ubuntu24.04 --format '{{json .Manifest.Digest}}'
# (or `skopeo inspect --format '{{.Digest}}' docker://nvidia/cuda:13.0.1-devel-ubuntu24.04`).
ARG BASE=nvidia/cuda:13.0.1-devel-ubuntu24.04@sha256:7d2f6a8c2071d911524f95061a0db363e24d27aa51ec831fcccf9e76eb72bc92
FROM ${BASE}

# LOCK: the constraints file every package is installed from (constraints-cuda.txt: CUDA torch
# and SGLang for Python 3.12 on Linux x86-64; constraints.txt: the CPU lock, Python 3.11).
# EXTRAS: the project extras installed (the CPU lock has no SGLang, so its image drops `sglang`).
ARG LOCK=constraints-cuda.txt
ARG EXTRAS=hf,datasets,api,sglang,embed,swebench,synthetic

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/hotmess \
    XDG_CACHE_HOME=/cache \
    HOTMESS_CACHE=/cache/hotmess \
    HF_HOME=/cache/huggingface \
    MPLCONFIGDIR=/cache/matplotlib

# System packages from the base's own release (Debian 12 or Ubuntu 24.04): not pinned to
# versions because the two bases carry different ones and the archives drop superseded builds;
# the base itself is pinned (digest, or the mmdebstrap base CI builds). The user `hotmess`
# (UID/GID 1000) is the default; any other UID works with `--user`, because /cache, /work and
# $HOME are world-writable (sticky) and nothing else is written at run time.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv python3-dev gcc libc6-dev netcdf-bin \
    && rm -rf /var/lib/apt/lists/* \
    && if getent passwd 1000 >/dev/null; then userdel "$(getent passwd 1000 | cut -d: -f1)"; fi \
    && if getent group 1000 >/dev/null; then groupdel "$(getent group 1000 | cut -d: -f1)"; fi \
    && groupadd -g 1000 hotmess \
    && useradd -u 1000 -g 1000 -M -d /home/hotmess -s /bin/bash hotmess \
    && mkdir -p /cache /work /home/hotmess /src \
    && chmod 1777 /cache /work /home/hotmess \
    && python3 -m venv /opt/venv

# Dependencies first, in their own layer (a code edit does not reinstall torch): the
# requirements of the chosen extras, every version from the lock. Pip's settings for this
# build (indexes, find-links, a CA bundle) come only as build secrets, never into a layer:
#   docker build --secret id=pipconf,src=my-pip.conf [--secret id=cacert,src=ca.pem] ...
# (absent secrets: pip uses PyPI with its own CA bundle). Not -q: on a conflict pip's
# "The conflict is caused by" lines are what the build log needs.
WORKDIR /src
COPY pyproject.toml scripts/image_requirements.py ./
COPY ${LOCK} /src/lock.txt
RUN --mount=type=secret,id=pipconf --mount=type=secret,id=cacert \
    export PIP_CONFIG_FILE=/run/secrets/pipconf \
    && python3 image_requirements.py pyproject.toml "${EXTRAS}" > /tmp/requirements.txt \
    && pip install -q "setuptools==80.9.0" "wheel==0.45.1" \
    && pip install --progress-bar off -c lock.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The source (.dockerignore keeps out .git, results, caches), installed without dependencies
# and without network; GIT_REVISION goes into the package's _build_info.json, which every cube's
# provenance (attribute git_revision) reads.
COPY . /src
ARG BASE
ARG GIT_REVISION=unknown
ARG VERSION=unknown
RUN HOTMESS_GIT_REVISION="${GIT_REVISION}" pip install -q --no-deps --no-build-isolation --no-index . \
    && pip check \
    && rm -rf /src/build /src/*.egg-info \
    && hotmess plugins
LABEL org.opencontainers.image.title="hotmess" \
      org.opencontainers.image.description="Reproduce 'The Hot Mess of AI' (arXiv 2601.23045)" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE}"

USER 1000:1000
WORKDIR /work
VOLUME ["/cache"]
ENTRYPOINT ["hotmess"]
CMD ["--help"]
