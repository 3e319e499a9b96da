#!/usr/bin/env bash
# Build breakfix/workload:0.1.0, the image every breakfix baseline runs:
#
#   1. cargo build --release -p breakfix-workload (--locked when Cargo.lock
#      exists; a no-op when nothing changed);
#   2. breakfix/debian-base:bookworm via scripts/base-image.sh (if present),
#      starting dockerd with scripts/docker.sh first if it is not running;
#   3. docker build of images/workload/Dockerfile FROM that base, with a
#      context holding only the (stripped) binary and the Dockerfile.
#
# Nothing is pulled. Cached: skipped when the image exists with label
# dev.breakfix.inputs = hash of (binary, Dockerfile, tag, base image ID).
# Built under a temporary tag, verified (runs as uid 65532, /healthz answers
# 200, `docker stop` exits 0 within 2s), and only then tagged: a failed build
# never leaves the tag pointing at a broken image. BREAKFIX_REBUILD=1 forces
# this image (not the base).
#
# Usage: scripts/workload-image.sh
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly VERSION=0.1.0
readonly IMAGE=breakfix/workload:$VERSION
readonly BASE_IMAGE=breakfix/debian-base:$DEBIAN_SUITE
readonly DOCKERFILE=$REPO_ROOT/images/workload/Dockerfile
readonly TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
readonly BINARY=$TARGET_DIR/release/breakfix-workload
readonly LOG_DIR=$CACHE/logs

ensure_docker() {
  if ! docker info >/dev/null 2>&1; then
    [[ -f $REPO_ROOT/scripts/docker.sh ]] || die "docker is not running and scripts/docker.sh is missing"
    bash "$REPO_ROOT/scripts/docker.sh" || die "scripts/docker.sh could not start docker"
  fi
}

ensure_base() {
  if [[ -f $REPO_ROOT/scripts/base-image.sh ]]; then
    # BREAKFIX_REBUILD forces this image only: a rebuilt base gets a new ID,
    # which makes every other image built FROM it stale too.
    env -u BREAKFIX_REBUILD bash "$REPO_ROOT/scripts/base-image.sh" || fail "scripts/base-image.sh failed"
  fi
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
    || die "$BASE_IMAGE is missing; build it with scripts/base-image.sh"
}

build_binary() {
  command -v cargo >/dev/null || die "cargo not found; install Rust (rustup) first"
  local -a args=(build --release -p breakfix-workload)
  [[ -f $REPO_ROOT/Cargo.lock ]] && args+=(--locked)
  local t0 logf=$LOG_DIR/workload-image.cargo.log
  t0=$(now_s)
  log "cargo ${args[*]} (log: $logf)"
  (cd "$REPO_ROOT" && cargo "${args[@]}") >"$logf" 2>&1 \
    || fail "cargo build failed: $(grep -E '^error' "$logf" | head -n3 | tr '\n' ' ' | cut -c1-300) (log: $logf)"
  [[ -x $BINARY ]] || fail "cargo succeeded but $BINARY is missing (CARGO_TARGET_DIR?)"
  log "binary ready in $(( $(now_s) - t0 ))s"
}

# verify_image IMAGE: the binary runs in the base as uid 65532, its version is
# ours, /healthz answers 200, and SIGTERM (docker stop) ends it promptly with 0.
verify_image() {
  local img=$1 out uid name t0 code
  out=$(docker run --rm --network none "$img" --version 2>&1) \
    || fail "$img: breakfix-workload --version failed: $out"
  [[ $out == "breakfix-workload $VERSION" ]] || fail "$img: unexpected version '$out' (want $VERSION)"
  uid=$(docker run --rm --network none --entrypoint /usr/bin/id "$img" -u 2>&1) \
    || fail "$img: cannot run id: $uid"
  [[ $uid == 65532 ]] || fail "$img: runs as uid '$uid', want 65532"
  # shellcheck disable=SC2016 # expanded inside the container
  out=$(docker run --rm --network none --entrypoint /bin/bash "$img" -c '
    /usr/local/bin/breakfix-workload serve 2>/dev/null &
    for _ in $(seq 50); do { exec 3<>/dev/tcp/127.0.0.1/8080; } 2>/dev/null && break; sleep 0.1; done
    printf "GET /healthz HTTP/1.1\r\nHost: verify\r\nConnection: close\r\n\r\n" >&3
    head -n1 <&3' 2>&1) || true
  [[ $out == "HTTP/1.1 200"* ]] || fail "$img: GET /healthz did not answer 200 (got: ${out:0:200})"
  name=breakfix-workload-verify-$$
  docker run -d --name "$name" --network none "$img" >/dev/null || fail "$img: docker run (default cmd) failed"
  sleep 0.5
  t0=$(date +%s%N)
  docker stop -t 10 "$name" >/dev/null
  code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
  docker rm "$name" >/dev/null
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [[ $code == 0 ]] || fail "$img: exited $code on SIGTERM, want 0"
  (( ms < 2000 )) || fail "$img: took ${ms}ms to stop on SIGTERM, want < 2s"
}

main() {
  require_root
  mkdir -p "$LOG_DIR"
  [[ -f $DOCKERFILE ]] || die "missing $DOCKERFILE (run from a full breakfix checkout)"

  build_binary
  ensure_docker
  ensure_base

  local ctx tmp_tag hash base_id t0
  t0=$(now_s)
  ctx=$(mktemp -d "${TMPDIR:-/tmp}/breakfix-workload-ctx.XXXXXX")
  tmp_tag="breakfix/workload:building-$$"
  # shellcheck disable=SC2064 # expand now: the values are fixed
  trap "rm -rf '$ctx'; docker rmi -f '$tmp_tag' >/dev/null 2>&1 || true" EXIT
  # Debug line tables are for local debugging; the image gets a stripped copy.
  objcopy --strip-debug "$BINARY" "$ctx/breakfix-workload" 2>/dev/null \
    || cp "$BINARY" "$ctx/breakfix-workload"
  cp "$DOCKERFILE" "$ctx/Dockerfile"

  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
  hash=$(inputs_hash "$ctx/breakfix-workload" "$ctx/Dockerfile" -- "$IMAGE" "$base_id")
  if [[ ${BREAKFIX_REBUILD:-0} != 1 ]] && image_is_current "$IMAGE" "$hash"; then
    log "$IMAGE is current (inputs $hash)"
    return 0
  fi

  local logf=$LOG_DIR/workload-image.docker.log
  DOCKER_BUILDKIT=0 docker build --pull=false --force-rm \
    --label "$BF_INPUTS_LABEL=$hash" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.description=breakfix workload and canaries" \
    -t "$tmp_tag" "$ctx" >"$logf" 2>&1 \
    || fail "docker build $IMAGE failed: $(grep -v '^\s*$' "$logf" | tail -n1 | cut -c1-200) (log: $logf)"
  verify_image "$tmp_tag"
  tag_built_image "$tmp_tag" "$IMAGE"
  log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), inputs $hash, $(( $(now_s) - t0 ))s)"
}

main "$@"
