#!/usr/bin/env bash
# The container test: build the action's image and run it exactly as the GitHub runner
# does, against SeaweedFS and moto server on loopback (`make test-container`, `.ci/run`).
#
# Needs root when no Docker engine is reachable: it then installs docker.io and debootstrap
# (apt-get) if missing and runs a private dockerd for the duration of the test. The Debian
# base image is cached in that dockerd's data root ($S3CFD_DOCKER_STATE, default
# /var/lib/s3cfd-docker) between runs. Set S3CFD_BASE_IMAGE (e.g. python:3.12-slim) where a
# registry is reachable to test on that base instead. Arguments go to `docker build`
# (e.g. `bash tests/container/run.sh --no-cache`).
set -euo pipefail
# shellcheck source=tests/container/lib.sh
source "$(dirname "$0")/lib.sh"

started=$SECONDS
ensure_docker
ensure_base
build_action_image "$@"
log "ready after $((SECONDS - started)) s; running the image as the runner does"
cd "$ROOT"
PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} "$PYTHON" tests/container/driver.py test \
    --image "$ACTION_IMAGE" --base "$BASE_IMAGE"
log "container test took $((SECONDS - started)) s"
