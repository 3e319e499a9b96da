#!/usr/bin/env bash
# Make a working Docker daemon on this host, idempotently.
#
#  - installs Debian's docker.io if dockerd is missing (one apt-get update);
#  - where the capability bounding set lacks CAP_SYS_RESOURCE (bit 24 of CapBnd),
#    installs /usr/local/bin/breakfix-runc, a runc wrapper that strips that
#    capability from OCI bundles (create/run) and exec process files, and makes
#    it dockerd's default runtime -- otherwise `docker run --privileged` (what
#    kind does) fails with "unable to apply caps: operation not permitted";
#  - starts dockerd in the background (no systemd here) logging to
#    /var/log/breakfix-dockerd.log and waits for `docker info`;
#  - raises the host's inotify limits to what kind's known-issues page asks
#    for: every kind node's kubelet, kube-proxy and containerd take inotify
#    instances from one per-user pool (128 by default), and with a few
#    clusters up new ones fail ("too many open files" from kube-proxy, a
#    worker that never joins).
#
# Exit 0 when `docker info` answers, 2 with one line saying what to fix.
set -euo pipefail

readonly WRAPPER=/usr/local/bin/breakfix-runc
readonly DAEMON_JSON=/etc/docker/daemon.json
readonly DOCKERD_LOG=/var/log/breakfix-dockerd.log
readonly CAP_SYS_RESOURCE_BIT=24

die() { echo "docker.sh: $*" >&2; exit 2; }
log() { echo "docker.sh: $*" >&2; }

# cap_missing: true when this process's bounding set lacks CAP_SYS_RESOURCE.
cap_missing() {
  local capbnd
  capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( ( 16#$capbnd >> CAP_SYS_RESOURCE_BIT & 1 ) == 0 ))
}

ensure_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo bash $0)"
}

ensure_installed() {
  if command -v dockerd >/dev/null && command -v runc >/dev/null && command -v docker >/dev/null; then
    return
  fi
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed; check /etc/apt/sources.list.d and network access to deb.debian.org"
  apt-get install -y -qq --no-install-recommends docker.io runc containerd iptables >/dev/null \
    || die "apt-get install docker.io failed; run 'apt-get install docker.io' by hand to see why"
}

# The wrapper is the same file the node image installs (images/node/files).
write_wrapper() {
  local src
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/images/node/files/usr/local/bin/breakfix-runc"
  [[ -f $src ]] || die "missing $src (run from a full breakfix checkout)"
  if ! cmp -s "$src" "$WRAPPER" 2>/dev/null; then
    install -m 0755 "$src" "$WRAPPER"
    log "installed $WRAPPER"
  fi
}

# desired_daemon_json prints the daemon.json we want, merged into any existing one.
desired_daemon_json() {
  local existing='{}'
  [[ -s $DAEMON_JSON ]] && existing=$(cat "$DAEMON_JSON")
  if cap_missing; then
    jq -S --arg path "$WRAPPER" \
      '. + {"default-runtime": "breakfix-runc", "runtimes": ((.runtimes // {}) + {"breakfix-runc": {"path": $path}})}' \
      <<<"$existing"
  else
    jq -S 'if ."default-runtime" == "breakfix-runc" then del(."default-runtime") else . end
           | if .runtimes then .runtimes |= del(."breakfix-runc") else . end' <<<"$existing"
  fi
}

# configure_daemon writes daemon.json; prints "changed" when it did.
configure_daemon() {
  command -v jq >/dev/null || { apt-get install -y -qq jq >/dev/null || die "jq missing; apt-get install jq"; }
  mkdir -p "$(dirname "$DAEMON_JSON")"
  local want
  want=$(desired_daemon_json) || die "$DAEMON_JSON is not valid JSON; fix or remove it"
  if [[ ! -s $DAEMON_JSON ]] || [[ $(jq -S . "$DAEMON_JSON") != "$want" ]]; then
    printf '%s\n' "$want" >"$DAEMON_JSON.tmp"
    mv "$DAEMON_JSON.tmp" "$DAEMON_JSON"
    log "wrote $DAEMON_JSON"
    echo changed
  fi
}

dockerd_pid() { pgrep -x dockerd | head -n1; }

stop_dockerd() {
  local pid
  pid=$(dockerd_pid) || return 0
  [[ -n $pid ]] || return 0
  log "restarting dockerd (pid $pid) to pick up $DAEMON_JSON"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  die "dockerd (pid $pid) did not stop within 30s; stop it by hand and rerun"
}

start_dockerd() {
  [[ -n $(dockerd_pid) ]] && return 0
  log "starting dockerd (log: $DOCKERD_LOG)"
  # A stale pid file from a killed daemon blocks startup.
  [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null && rm -f /var/run/docker.pid
  nohup setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  disown || true
}

wait_docker() {
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    [[ -n $(dockerd_pid) ]] || break
    sleep 0.5
  done
  local why
  why=$(grep -E 'level=(fatal|error)|failed to start' "$DOCKERD_LOG" 2>/dev/null | tail -n1 | cut -c1-200)
  die "dockerd did not become ready (${why:-see $DOCKERD_LOG}); fix the cause shown in $DOCKERD_LOG and rerun"
}

# raise_inotify: never lowers a limit the host already set higher.
raise_inotify() {
  local key want have
  for pair in fs.inotify.max_user_instances=1024 fs.inotify.max_user_watches=524288; do
    key=${pair%=*} want=${pair#*=}
    have=$(sysctl -n "$key" 2>/dev/null || echo 0)
    if ((have < want)); then
      sysctl -qw "$key=$want" 2>/dev/null || log "warning: cannot raise $key to $want (it is $have); kind clusters may fail with 'too many open files'"
    fi
  done
}

# check_privileged verifies that a privileged container can really start
# (the failure this script exists to prevent); needs any local image.
check_privileged() {
  local img
  img=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' | head -n1 || true)
  [[ -n $img ]] || return 0
  docker run --rm --privileged --network none --entrypoint /nonexistent-breakfix-probe "$img" >/dev/null 2>"$DOCKERD_LOG.probe" || true
  if grep -q 'unable to apply caps' "$DOCKERD_LOG.probe"; then
    die "privileged containers fail ('unable to apply caps'); $WRAPPER is not dockerd's default runtime -- check $DAEMON_JSON"
  fi
  rm -f "$DOCKERD_LOG.probe"
}

main() {
  ensure_root
  ensure_installed
  if cap_missing; then
    write_wrapper
  fi
  local changed
  changed=$(configure_daemon)
  if [[ $changed == changed ]]; then
    stop_dockerd
  fi
  start_dockerd
  wait_docker
  check_privileged
  raise_inotify
  log "docker ready ($(docker version --format 'server {{.Server.Version}}' 2>/dev/null); runtime $(docker info --format '{{.DefaultRuntime}}'))"
}

main "$@"
