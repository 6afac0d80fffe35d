# shellcheck shell=bash
# Shared by tests/container/run.sh and tests/container/measure.sh (source it, do not run it).
#
# Gives a Docker engine (the one already reachable, e.g. on a GitHub runner, or a private
# dockerd started here and stopped on exit), a base image with python3 (a Debian bookworm
# rootfs made with debootstrap and cached by tag, since no image registry is reachable
# here; or S3CFD_BASE_IMAGE, e.g. python:3.12-slim where a registry is reachable), the
# action image built from the repository's Dockerfile, a private image registry on
# loopback (Debian's docker-registry, the CNCF distribution registry GHCR speaks the same
# protocol as; stopped on exit) for the release rehearsal, and an arm64 (or amd64) build
# under QEMU user emulation where binfmt_misc can be used.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# dockerd's data root: kept between runs so that the debootstrap base is built only once.
STATE_DIR=${S3CFD_DOCKER_STATE:-/var/lib/s3cfd-docker}
BASE_RECIPE_TAG=s3cfd-base:bookworm-python3-v1
BASE_IMAGE=${S3CFD_BASE_IMAGE:-$BASE_RECIPE_TAG}
ACTION_IMAGE=${S3CFD_ACTION_IMAGE:-s3-cloudfront-deploy:test}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DOCKERD_PID=
REGISTRY_PID=
REGISTRY=
BINFMT_ENTRY=
BINFMT_MOUNTED=
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

stop_registry() {
    if [[ -n $REGISTRY_PID ]] && kill -0 "$REGISTRY_PID" 2>/dev/null; then
        log "stopping the registry (pid $REGISTRY_PID)"
        kill -TERM "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
    REGISTRY_PID=
}

drop_emulator() {
    # Only what this run registered or mounted.
    if [[ -n $BINFMT_ENTRY && -e /proc/sys/fs/binfmt_misc/$BINFMT_ENTRY ]]; then
        echo -1 | as_root tee "/proc/sys/fs/binfmt_misc/$BINFMT_ENTRY" >/dev/null || true
    fi
    if [[ -n $BINFMT_MOUNTED ]]; then
        as_root umount /proc/sys/fs/binfmt_misc 2>/dev/null || true
    fi
    BINFMT_ENTRY=
    BINFMT_MOUNTED=
}

on_exit() {
    stop_registry
    drop_emulator
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

# The base for the host's architecture, or with an argument (amd64, arm64) for that one:
# BASE_IMAGE itself when it comes from a registry, else the debootstrap recipe, tagged per
# architecture (debootstrap runs the foreign one under emulation; see ensure_emulator).
# Prints the image to build FROM.
ensure_base() {
    local arch=${1:-} image=$BASE_IMAGE
    if [[ -n $arch && $BASE_IMAGE == "$BASE_RECIPE_TAG" ]]; then
        image=$BASE_RECIPE_TAG-$arch
    fi
    if docker image inspect "$image" >/dev/null 2>&1; then
        log "base image $image is cached"
        declare_arch "$image" "$arch"
        printf '%s\n' "$image"
        return
    fi
    if [[ $BASE_IMAGE != "$BASE_RECIPE_TAG" ]]; then
        log "pulling $image${arch:+ for linux/$arch}"
        docker pull -q ${arch:+--platform "linux/$arch"} "$image" >/dev/null
        printf '%s\n' "$image"
        return
    fi
    ensure_tools
    local rootfs
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/s3cfd-rootfs.XXXXXX")
    log "building $image with debootstrap${arch:+ --arch=$arch under emulation} (minutes)"
    if ! debootstrap --variant=minbase ${arch:+--arch="$arch"} \
        --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$(debian_mirror)" >"$rootfs.log" 2>&1; then
        tail -20 "$rootfs.log" >&2
        rm -rf "$rootfs" "$rootfs.log"
        exit 2
    fi
    # Package downloads here may go through a TLS-inspecting proxy: trust what the host trusts.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import ${arch:+--platform "linux/$arch"} \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    declare_arch "$image" "$arch"
    printf '%s\n' "$image"
}

# Docker 20.10's `docker import --platform` records the host's architecture: rewrite the
# config of a foreign-architecture base so that `docker build --platform` accepts it.
declare_arch() {
    local image=$1 arch=$2
    if [[ -n $arch && $(docker image inspect --format '{{.Architecture}}' "$image") != "$arch" ]]; then
        log "declaring $image as $arch (tests/container/relabel.py)"
        "$PYTHON" "$ROOT/tests/container/relabel.py" "$image" "$arch" >/dev/null
    fi
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

# --------------------------------------------------------------------------- the rehearsal

# Root's commands as root, through `sudo -n` otherwise (a GitHub runner); fails without either.
as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A Debian package's files, unpacked (not installed: no service started, no system file
# touched) into $STATE_DIR/pkg/NAME as root, else ~/.cache/s3cfd-pkg/NAME (e.g. a GitHub
# runner's user, with the runner's own Docker engine). Prints the folder.
unpacked_package() {
    local name=$1 dir deb
    if [[ $(id -u) == 0 ]]; then
        dir=$STATE_DIR/pkg/$name
    else
        dir=${XDG_CACHE_HOME:-$HOME/.cache}/s3cfd-pkg/$name
    fi
    if [[ ! -f $dir/.done ]]; then
        rm -rf "$dir" && mkdir -p "$dir"
        log "fetching Debian's $name (apt-get download; unpacked, not installed)"
        if ! (cd "$dir" && apt-get download -q "$name" >/dev/null 2>&1); then
            as_root apt-get update -q >/dev/null
            (cd "$dir" && apt-get download -q "$name" >/dev/null)
        fi
        deb=$(find "$dir" -maxdepth 1 -name '*.deb' | head -1)
        dpkg-deb -x "$deb" "$dir/root" && rm -f "$deb" && touch "$dir/.done"
    fi
    printf '%s\n' "$dir/root"
}

# A private registry on 127.0.0.1 (docker treats loopback registries as plain HTTP), its
# storage in a temporary folder; sets REGISTRY=127.0.0.1:PORT.
start_registry() {
    local binary root port config
    binary=$(command -v docker-registry || true)
    if [[ -z $binary ]]; then
        binary=$(unpacked_package docker-registry)/usr/bin/docker-registry
    fi
    root=$(mktemp -d "${TMPDIR:-/tmp}/s3cfd-registry.XXXXXX")
    CLEANUP_PATHS+=("$root")
    port=$(free_port)
    config=$root/config.yml
    cat >"$config" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $root/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YAML
    "$binary" serve "$config" >"$root/registry.log" 2>&1 &
    REGISTRY_PID=$!
    REGISTRY=127.0.0.1:$port
    for _ in $(seq 1 100); do
        if "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://$REGISTRY/v2/')" \
            2>/dev/null; then
            log "registry on $REGISTRY (pid $REGISTRY_PID)"
            return
        fi
        kill -0 "$REGISTRY_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "the registry did not start; its log:"
    tail -20 "$root/registry.log" >&2
    exit 2
}

# The other architecture: arm64 on an amd64 host and the reverse.
other_arch() {
    case $(uname -m) in
    x86_64) echo arm64 ;;
    aarch64) echo amd64 ;;
    *) echo "" ;;
    esac
}

# QEMU user emulation for ARCH through binfmt_misc, with the `F` flag (the interpreter is
# opened once, here, so it also runs inside containers). Uses an existing registration
# (e.g. Debian's qemu-user-static or a runner's setup-qemu) when there is one. Returns 1,
# with the reason in EMULATOR_MISSING, when this machine cannot do it.
EMULATOR_MISSING=
# shellcheck disable=SC2034 # EMULATOR_MISSING is read by run.sh
ensure_emulator() {
    local arch=$1 qemu_arch magic mask root
    case $arch in
    arm64)
        qemu_arch=aarch64
        magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
        ;;
    amd64)
        qemu_arch=x86_64
        magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00'
        ;;
    *)
        EMULATOR_MISSING="no emulator known for $arch"
        return 1
        ;;
    esac
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        if ! as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null; then
            EMULATOR_MISSING="binfmt_misc is not mounted and cannot be mounted here"
            return 1
        fi
        BINFMT_MOUNTED=1
    fi
    if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-"$qemu_arch" \
        /proc/sys/fs/binfmt_misc/s3cfd-qemu-"$qemu_arch"; then
        return 0
    fi
    if ! root=$(unpacked_package qemu-user-static); then
        EMULATOR_MISSING="qemu-user-static could not be fetched"
        return 1
    fi
    if ! printf ':s3cfd-qemu-%s:M::%s:%s:%s:F\n' "$qemu_arch" "$magic" "$mask" \
        "$root/usr/bin/qemu-$qemu_arch-static" |
        as_root tee /proc/sys/fs/binfmt_misc/register >/dev/null 2>&1; then
        EMULATOR_MISSING="the kernel refused a binfmt_misc registration"
        return 1
    fi
    BINFMT_ENTRY=s3cfd-qemu-$qemu_arch
}

# Build the Dockerfile for ARCH (under the emulator ensure_emulator set up) and start the
# result: the interpreter reports ARCH's machine and the program's imports load. Fails the
# test when either goes wrong.
build_other_arch() {
    local arch=$1 base image=$ACTION_IMAGE-$1 out got machine expected
    base=$(ensure_base "$arch")
    log "building $image for linux/$arch FROM $base under emulation (minutes)"
    local built=$SECONDS
    if ! out=$(docker build --network host --platform "linux/$arch" \
        --build-arg "BASE_IMAGE=$base" -t "$image" "$ROOT" 2>&1); then
        printf '%s\n' "$out" | tail -40 >&2
        log "FAIL linux/$arch: docker build failed"
        exit 1
    fi
    got=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$image")
    case $arch in
    arm64) expected=aarch64 ;;
    amd64) expected=x86_64 ;;
    esac
    machine=$(docker run --rm --network none --platform "linux/$arch" \
        --entrypoint /opt/venv/bin/python "$image" -c \
        'import platform, sys; sys.path.insert(0, "/app"); import boto3, pydantic, dotenv, deployer.cli; print(platform.machine())' 2>&1) || true
    if [[ $got != "linux/$arch" || $machine != "$expected" ]]; then
        log "FAIL linux/$arch: image is $got, its python reports ${machine:-nothing}"
        exit 1
    fi
    log "PASS linux/$arch: built in $((SECONDS - built)) s under emulation; image $got, python on $machine imports the program"
}
