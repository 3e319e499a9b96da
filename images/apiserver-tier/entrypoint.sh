#!/bin/bash
# breakfix-apiserver-tier: a real Kubernetes control plane without nodes, for
# breakfix's fast test tier (the envtest pattern, plus the controller manager).
#
#   etcd (127.0.0.1:2379, data in $BREAKFIX_DATA_DIR, no fsync)
#   kube-apiserver (0.0.0.0:6443; token auth; RBAC+Node authz; default admission
#                   plugins incl. ResourceQuota, + NodeRestriction)
#   kube-controller-manager (all default controllers, per-controller SA creds)
#
# Prints exactly one line `breakfix-apiserver-tier ready` on stdout once
# /readyz is ok, the controller manager is healthy and the default
# ServiceAccount exists (so Pods can be created right away). If any process
# dies (or startup times out) it prints the last lines of the logs on stderr
# and exits non-zero. SIGTERM/SIGINT stop everything and exit 0.
#
# Environment (all optional):
#   BREAKFIX_ADMIN_TOKEN        bearer token of user breakfix-admin (group
#                               system:masters); default: breakfix-dev-admin-token
#   BREAKFIX_DATA_DIR           etcd data, PKI, kubeconfigs; default /var/lib/breakfix
#                               (mount a tmpfs there for speed: --tmpfs /var/lib/breakfix)
#   BREAKFIX_SERVICE_CIDR       default 10.96.0.0/12
#   BREAKFIX_CERT_SANS          extra serving-cert SANs, comma separated (DNS names or IPs)
#   BREAKFIX_ADVERTISE_ADDRESS  default: this container's primary IPv4, else 127.0.0.1
#   BREAKFIX_APISERVER_ARGS     extra kube-apiserver flags (word-split)
#   BREAKFIX_CONTROLLER_MANAGER_ARGS  extra kube-controller-manager flags (word-split)
#   BREAKFIX_STARTUP_TIMEOUT    seconds to wait for readiness; default 120
#   BREAKFIX_LOG_TAIL           log lines shown on failure; default 40
#   BREAKFIX_VERBOSITY          --v for apiserver/controller-manager; default 0
#
# Logs: /var/log/breakfix/{etcd,kube-apiserver,kube-controller-manager}.log
# CA certificate (to verify TLS instead of skipping): $BREAKFIX_DATA_DIR/pki/ca.crt
# (the serving cert covers 127.0.0.1, localhost, the container's IPs and name,
# kubernetes.default.svc[.cluster.local] and the first service IP).
# Admin kubeconfig (server https://127.0.0.1:6443): $BREAKFIX_DATA_DIR/admin.kubeconfig
set -euo pipefail

readonly ADMIN_TOKEN=${BREAKFIX_ADMIN_TOKEN:-breakfix-dev-admin-token}
readonly DATA=${BREAKFIX_DATA_DIR:-/var/lib/breakfix}
readonly SERVICE_CIDR=${BREAKFIX_SERVICE_CIDR:-10.96.0.0/12}
readonly TIMEOUT=${BREAKFIX_STARTUP_TIMEOUT:-120}
readonly TAIL=${BREAKFIX_LOG_TAIL:-40}
readonly VERBOSITY=${BREAKFIX_VERBOSITY:-0}
readonly PKI=$DATA/pki LOGS=/var/log/breakfix
readonly READY_LINE="breakfix-apiserver-tier ready"

declare -A PIDS=()   # name -> pid
declare -a ORDER=()  # start order, stopped in reverse

say() { echo "breakfix-apiserver-tier: $*" >&2; }

START_US=${EPOCHREALTIME/./}
# elapsed: seconds since the entrypoint started, e.g. 3.42s
elapsed() {
  local ms=$(((${EPOCHREALTIME/./} - START_US) / 1000))
  printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10))
}

show_logs() {
  local name
  for name in "$@"; do
    [[ -s $LOGS/$name.log ]] || continue
    echo "----- last $TAIL lines of $name ($LOGS/$name.log) -----" >&2
    tail -n "$TAIL" "$LOGS/$name.log" >&2
  done
}

stop_all() {
  local i name pid
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
    name=${ORDER[i]}; pid=${PIDS[$name]:-}
    [[ -n $pid ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    # give each a moment so the apiserver can still reach etcd on its way out
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# die MESSAGE [LOGNAMES...]: show logs, stop everything, exit 1.
die() {
  local msg=$1
  shift
  show_logs "$@"
  say "error: $msg"
  stop_all
  exit 1
}

on_signal() {
  say "stopping"
  stop_all
  exit 0
}

# start NAME CMD...: run CMD in the background, logging to $LOGS/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  PIDS[$name]=$!
  ORDER+=("$name")
}

# check_alive: die if any started process has exited.
check_alive() {
  local name
  for name in "${ORDER[@]}"; do
    kill -0 "${PIDS[$name]}" 2>/dev/null || die "$name exited during startup" "$name"
  done
}

# https_status URL_PATH PORT: HTTP status of a GET over TLS (openssl, no curl here).
https_status() {
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n' "$1" "$ADMIN_TOKEN" \
    | timeout 3 openssl s_client -quiet -connect "127.0.0.1:$2" 2>/dev/null \
    | head -n1 | awk '{print $2}'
}

# wait_for WHAT CONDITION...: poll CONDITION until it holds or the deadline.
wait_for() {
  local what=$1
  shift
  while ! "$@"; do
    check_alive
    ((SECONDS < TIMEOUT)) || die "timed out after ${TIMEOUT}s waiting for $what" "${ORDER[@]}"
    sleep 0.1
  done
}

apiserver_ready() { [[ $(https_status /readyz 6443) == 200 ]]; }
controller_manager_healthy() { [[ $(https_status /healthz 10257) == 200 ]]; }
default_sa_exists() { [[ $(https_status /api/v1/namespaces/default/serviceaccounts/default 6443) == 200 ]]; }

primary_ipv4() {
  ip -4 -o route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1
}

# first_service_ip CIDR: the apiserver's ClusterIP (network address + 1), IPv4.
first_service_ip() {
  local net=${1%/*} a b c d
  IFS=. read -r a b c d <<<"$net"
  echo "$a.$b.$c.$((d + 1))"
}

gen_pki() {
  [[ -s $PKI/apiserver.crt && -s $PKI/front-proxy-client.crt ]] && return 0  # restart: keep identity
  mkdir -p "$PKI"
  local adv=$1 sans ip
  sans="DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  sans+=",DNS:kubernetes.default.svc.cluster.local,DNS:$(hostname)"
  sans+=",IP:127.0.0.1,IP:$(first_service_ip "$SERVICE_CIDR"),IP:$adv"
  for ip in $(hostname -I 2>/dev/null); do [[ $ip == *.* ]] && sans+=",IP:$ip"; done
  local extra
  IFS=, read -r -a extra <<<"${BREAKFIX_CERT_SANS:-}"
  for ip in "${extra[@]}"; do
    [[ -z $ip ]] && continue
    if [[ $ip =~ ^[0-9.]+$ || $ip == *:* ]]; then sans+=",IP:$ip"; else sans+=",DNS:$ip"; fi
  done
  (
    cd "$PKI"
    # ECDSA P-256 throughout: key generation is instant (RSA would cost ~0.5 s).
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=breakfix-apiserver-tier-ca" -days 3650 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out ca.crt
    openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$sans") \
      -out apiserver.crt
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key
    openssl ec -in sa.key -pubout -out sa.pub
    # front proxy (request-header auth, as kubeadm sets up): lets the controller
    # manager and aggregated API servers trust the apiserver's proxied requests
    openssl ecparam -name prime256v1 -genkey -noout -out front-proxy-ca.key
    openssl req -x509 -new -key front-proxy-ca.key -subj "/CN=front-proxy-ca" -days 3650 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out front-proxy-ca.crt
    openssl ecparam -name prime256v1 -genkey -noout -out front-proxy-client.key
    openssl req -new -key front-proxy-client.key -subj "/CN=front-proxy-client" -out front-proxy-client.csr
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
      -days 3650 -extfile <(printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n') \
      -out front-proxy-client.crt
    rm -f ./*.csr ./*.srl
  ) >"$LOGS/pki.log" 2>&1 || die "generating certificates failed" pki
  chmod 600 "$PKI"/*.key
}

write_auth() {
  [[ $ADMIN_TOKEN =~ ^[A-Za-z0-9._~+/=-]{8,}$ ]] \
    || die "BREAKFIX_ADMIN_TOKEN must be at least 8 characters of [A-Za-z0-9._~+/=-]"
  local kcm_token
  kcm_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # token,user,uid,"groups"
  {
    printf '%s,breakfix-admin,breakfix-admin,"system:masters"\n' "$ADMIN_TOKEN"
    printf '%s,system:kube-controller-manager,system:kube-controller-manager\n' "$kcm_token"
  } >"$DATA/tokens.csv"
  chmod 600 "$DATA/tokens.csv"
  cat >"$DATA/controller-manager.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: $PKI/ca.crt
users:
- name: kube-controller-manager
  user:
    token: $kcm_token
contexts:
- name: local
  context: {cluster: local, user: kube-controller-manager}
current-context: local
EOF
  chmod 600 "$DATA/controller-manager.kubeconfig"
  # for `docker exec`/`docker cp` users; from the host, change the server's port
  sed -e "s/name: kube-controller-manager/name: breakfix-admin/; s/user: kube-controller-manager/user: breakfix-admin/" \
    -e "s/token: $kcm_token/token: $ADMIN_TOKEN/" "$DATA/controller-manager.kubeconfig" >"$DATA/admin.kubeconfig"
}

main() {
  trap on_signal TERM INT
  SECONDS=0
  mkdir -p "$DATA" "$LOGS"
  local adv=${BREAKFIX_ADVERTISE_ADDRESS:-$(primary_ipv4)}
  adv=${adv:-127.0.0.1}

  gen_pki "$adv"
  write_auth

  start etcd etcd \
    --name=breakfix --data-dir="$DATA/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=breakfix=http://127.0.0.1:2380 \
    --listen-metrics-urls=http://127.0.0.1:2381 \
    --unsafe-no-fsync --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) \
    --log-level=warn

  # shellcheck disable=SC2086 # BREAKFIX_APISERVER_ARGS is a list of flags
  start kube-apiserver kube-apiserver \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$adv" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --token-auth-file="$DATA/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --v="$VERBOSITY" \
    ${BREAKFIX_APISERVER_ARGS:-}

  wait_for "kube-apiserver /readyz" apiserver_ready
  say "kube-apiserver ready after $(elapsed)"

  # shellcheck disable=SC2086 # BREAKFIX_CONTROLLER_MANAGER_ARGS is a list of flags
  start kube-controller-manager kube-controller-manager \
    --kubeconfig="$DATA/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DATA/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DATA/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 \
    --controllers='*' --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --leader-elect=false \
    --kube-api-qps=200 --kube-api-burst=400 \
    --v="$VERBOSITY" \
    ${BREAKFIX_CONTROLLER_MANAGER_ARGS:-}

  wait_for "kube-controller-manager /healthz" controller_manager_healthy
  wait_for "the default ServiceAccount" default_sa_exists
  wait_for "kube-apiserver /readyz" apiserver_ready

  say "controllers running after $(elapsed)"
  echo "$READY_LINE"

  # Supervise: the first process to exit takes the container down.
  local exited=""
  while :; do
    if wait -n -p exited "${PIDS[@]}"; then :; fi
    [[ -n $exited ]] || continue   # woken by a signal or an unknown child
    local name
    for name in "${ORDER[@]}"; do
      [[ ${PIDS[$name]} == "$exited" ]] && die "$name exited" "$name"
    done
    exited=""
  done
}

main "$@"
