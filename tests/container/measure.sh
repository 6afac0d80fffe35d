#!/usr/bin/env bash
# Figures for the README's performance section: the size the action's image adds over its
# base, a cold build of the image (base cached), and the wall time of a no-change deploy
# run in the container as the runner runs it. Usage: tests/container/measure.sh [--files N]
set -euo pipefail
# shellcheck source=tests/container/lib.sh
source "$(dirname "$0")/lib.sh"

ensure_docker
ensure_base
cd "$ROOT"
PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} "$PYTHON" tests/container/driver.py measure \
    --image "$ACTION_IMAGE" --base "$BASE_IMAGE" "$@"
