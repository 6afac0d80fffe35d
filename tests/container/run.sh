#!/usr/bin/env bash
# The container test (`make test-container`, `.ci/run`): build the action's image, then
# rehearse the release and run the image exactly as the GitHub runner runs a `docker://`
# action, against SeaweedFS and moto server on loopback:
#   1. build the image from the Dockerfile (FROM the base below);
#   2. push it to a private registry on loopback and remove it locally;
#   3. pin a copy of action.yml to the pushed digest with scripts/pin_image.py;
#   4. `docker pull` the pinned reference as the runner does (no build), check it is the
#      image that was built and that it is for this host's architecture, then run every
#      container check against it (tests/container/driver.py);
#   5. build the Dockerfile for the other architecture (arm64 on an amd64 host) under QEMU
#      user emulation and start it, where binfmt_misc can be used; otherwise say so.
#
# Needs root when no Docker engine is reachable: it then installs docker.io and debootstrap
# (apt-get) if missing and runs a private dockerd for the duration of the test. The registry
# (Debian's docker-registry) and QEMU (qemu-user-static) are unpacked from their Debian
# packages into the state folder, not installed. The Debian base images are cached in that
# dockerd's data root ($S3CFD_DOCKER_STATE, default /var/lib/s3cfd-docker) between runs.
# Set S3CFD_BASE_IMAGE (e.g. python:3.12-slim) where a registry is reachable to test on that
# base instead; S3CFD_OTHER_ARCH=0 skips step 5. Arguments go to `docker build` (e.g.
# `bash tests/container/run.sh --no-cache`).
set -euo pipefail
# shellcheck source=tests/container/lib.sh
source "$(dirname "$0")/lib.sh"

started=$SECONDS
ensure_docker
ensure_base >/dev/null
build_action_image "$@"
log "ready after $((SECONDS - started)) s; rehearsing the release"
start_registry
cd "$ROOT"
PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} "$PYTHON" tests/container/driver.py rehearse \
    --image "$ACTION_IMAGE" --base "$BASE_IMAGE" --registry "$REGISTRY"
stop_registry
log "host architecture checked after $((SECONDS - started)) s"

other=$(other_arch)
if [[ ${S3CFD_OTHER_ARCH:-1} == 0 ]]; then
    log "SKIP linux/$other build: S3CFD_OTHER_ARCH=0"
elif [[ -z $other ]]; then
    log "SKIP other-architecture build: no other architecture known for $(uname -m)"
elif ! ensure_emulator "$other"; then
    log "NOT AVAILABLE linux/$other build: $EMULATOR_MISSING"
else
    build_other_arch "$other"
fi
log "container test took $((SECONDS - started)) s"
