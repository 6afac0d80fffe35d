# shellcheck shell=bash
# Shared by tests/container/run.sh and tests/container/measure.sh (source it, do not run it).
#
# Gives a Docker engine (the one already reachable, e.g. on a GitHub runner, or a private
# dockerd started here and stopped on exit), a base image with python3 (a Debian bookworm
# rootfs made with debootstrap and cached by tag, since no image registry is reachable
# here; or S3CFD_BASE_IMAGE, e.g. python:3.12-slim where a registry is reachable), and the
# action image built from the repository's Dockerfile.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# dockerd's data root: kept between runs so that the debootstrap base is built only once.
STATE_DIR=${S3CFD_DOCKER_STATE:-/var/lib/s3cfd-docker}
BASE_RECIPE_TAG=s3cfd-base:bookworm-python3-v1
BASE_IMAGE=${S3CFD_BASE_IMAGE:-$BASE_RECIPE_TAG}
ACTION_IMAGE=${S3CFD_ACTION_IMAGE:-s3-cloudfront-deploy:test}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DOCKERD_PID=
CLEANUP_PATHS=()

log() { printf '[container] %s\n' "$*" >&2; }

ensure_tools() {
    local missing=()
    command -v docker >/dev/null || missing+=(docker.io)
    command -v dockerd >/dev/null || missing+=(docker.io)
    if [[ $BASE_IMAGE == "$BASE_RECIPE_TAG" ]]; then
        command -v debootstrap >/dev/null || missing+=(debootstrap)
    fi
    if ((${#missing[@]})); then
        log "installing ${missing[*]} with apt-get"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

stop_dockerd() {
    if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "stopping dockerd (pid $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID" 2>/dev/null
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    DOCKERD_PID=
}

on_exit() {
    stop_dockerd
    if ((${#CLEANUP_PATHS[@]})); then
        rm -rf "${CLEANUP_PATHS[@]}"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

ensure_docker() {
    if [[ -z ${S3CFD_OWN_DOCKERD:-} ]] && docker info >/dev/null 2>&1; then
        log "using the running Docker engine (${DOCKER_HOST:-default socket})"
        return
    fi
    if [[ $(id -u) != 0 ]]; then
        log "no Docker engine is reachable and starting dockerd needs root"
        exit 2
    fi
    ensure_tools
    mkdir -p "$STATE_DIR"
    local sock=$STATE_DIR/docker.sock
    export DOCKER_HOST=unix://$sock
    if docker info >/dev/null 2>&1; then
        log "using the dockerd already serving $sock (left running by someone else)"
        return
    fi
    rm -f "$sock"
    log "starting dockerd (data root $STATE_DIR, log $STATE_DIR/dockerd.log)"
    dockerd --iptables=false --ip6tables=false --bridge=none \
        --data-root "$STATE_DIR/data" --exec-root "$STATE_DIR/exec" \
        --pidfile "$STATE_DIR/dockerd.pid" --host "$DOCKER_HOST" \
        >"$STATE_DIR/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 300); do
        docker info >/dev/null 2>&1 && return
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            log "dockerd exited; last lines of its log:"
            tail -20 "$STATE_DIR/dockerd.log" >&2
            exit 2
        fi
        sleep 0.1
    done
    log "dockerd did not answer within 30 s"
    tail -20 "$STATE_DIR/dockerd.log" >&2
    exit 2
}

debian_mirror() {
    local uri
    uri=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
        2>/dev/null | grep -v security | head -1 | awk '{print $2}')
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

ensure_base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE is cached"
        return
    fi
    if [[ $BASE_IMAGE != "$BASE_RECIPE_TAG" ]]; then
        log "pulling $BASE_IMAGE"
        docker pull -q "$BASE_IMAGE" >/dev/null
        return
    fi
    ensure_tools
    local rootfs
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/s3cfd-rootfs.XXXXXX")
    log "building $BASE_IMAGE with debootstrap (about a minute)"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$(debian_mirror)" >"$rootfs.log" 2>&1; then
        tail -20 "$rootfs.log" >&2
        rm -rf "$rootfs" "$rootfs.log"
        exit 2
    fi
    # Package downloads here may go through a TLS-inspecting proxy: trust what the host trusts.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
}

build_action_image() {
    # Extra arguments go to `docker build` (e.g. --no-cache).
    log "building $ACTION_IMAGE FROM $BASE_IMAGE"
    local out
    if ! out=$(docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        -t "$ACTION_IMAGE" "$@" "$ROOT" 2>&1); then
        printf '%s\n' "$out" | tail -40 >&2
        log "docker build failed"
        exit 1
    fi
    if [[ -n $DOCKERD_PID ]]; then
        # Our private engine: drop the images that earlier builds left untagged.
        docker image prune -f >/dev/null
    fi
}
