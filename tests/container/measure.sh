#!/usr/bin/env bash
# Figures for the README's container section.
#   tests/container/measure.sh [--files N]       the size the action's image adds over its
#       base, a cold build of the image (base cached), and the wall time of a no-change
#       deploy run in the container as the runner runs it
#   tests/container/measure.sh startup [--repeats N]   what a user waits for before the
#       deploy starts: `image: Dockerfile` (pull the base, build) vs a prebuilt image
#       (pull it), both then create and start, from an engine holding neither; compressed
#       and uncompressed sizes through a registry on loopback; then a no-change deploy of
#       examples/site for scale (tests/container/startup.py)
set -euo pipefail
# shellcheck source=tests/container/lib.sh
source "$(dirname "$0")/lib.sh"

ensure_docker
ensure_base >/dev/null
cd "$ROOT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
if [[ ${1:-} == startup ]]; then
    shift
    # shellcheck disable=SC2119 # no extra docker build arguments
    build_action_image
    start_registry
    "$PYTHON" tests/container/driver.py startup \
        --image "$ACTION_IMAGE" --base "$BASE_IMAGE" --registry "$REGISTRY" "$@"
else
    "$PYTHON" tests/container/driver.py measure \
        --image "$ACTION_IMAGE" --base "$BASE_IMAGE" "$@"
fi
