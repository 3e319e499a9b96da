# breakfix tasks. `./just` installs just itself if it is missing.
set shell := ["bash", "-euo", "pipefail", "-c"]

export BREAKFIX_CLUSTER := env_var_or_default("BREAKFIX_CLUSTER", "breakfix")
export BREAKFIX_WORKERS := env_var_or_default("BREAKFIX_WORKERS", "0")

# List the recipes.
default:
    @just --list

# Docker daemon (installs docker.io and the runc wrapper where needed).
docker:
    bash scripts/docker.sh

# Images for the fast API-server tier (etcd, kube-apiserver, controller-manager), and the helm and kustomize that render configurations in the tests.
images-tier: docker
    bash scripts/build-components.sh
    bash scripts/base-image.sh
    bash scripts/build-images.sh

# Every image a cluster runs, built here from Go modules, Debian packages and this repo; nothing pulled. Not helm or kustomize: no built-in experiment renders with them (images-tier builds them).
images: docker
    bash scripts/build-components.sh k8s etcd coredns kind
    bash scripts/base-image.sh
    bash scripts/build-images.sh
    bash scripts/workload-image.sh
    bash scripts/node-image.sh

# A kind cluster named $BREAKFIX_CLUSTER (default breakfix); BREAKFIX_WORKERS=N adds workers.
cluster: images
    bash scripts/cluster.sh up

# Delete the cluster `just cluster` made.
cluster-down:
    bash scripts/cluster.sh down

# The main job: the built-in suite on a fresh kind cluster, six experiments at a time (BREAKFIX_JOBS=1 for one at a time), the longest first as timed by the last run's reports/suite.json; JSON, JUnit, Markdown and HTML reports in reports/.
suite *ARGS: docker
    #!/usr/bin/env bash
    set -euo pipefail
    # The release builds of breakfix and its workload (fat LTO: minutes on
    # one core) go beside the image builds, which leave a core idle while
    # they wait on the Go module proxy and on single-threaded steps.
    log="${BREAKFIX_CACHE:-$HOME/.cache/breakfix}/logs/release-build.log"
    mkdir -p "$(dirname "$log")"
    echo "suite: release builds of breakfix and the workload run beside the images (log: $log)" >&2
    (cargo build --release --locked --bin breakfix && cargo build --release --locked -p breakfix-workload) >"$log" 2>&1 &
    build=$!
    trap 'kill $build 2>/dev/null || true' EXIT
    {{just_executable()}} images
    wait $build || { tail -n 20 "$log" >&2; echo "suite: the release build failed (log: $log)" >&2; exit 1; }
    trap - EXIT
    BREAKFIX_JOBS="${BREAKFIX_JOBS:-6}" cargo run --release --locked -- run experiments/ --cluster-name breakfix-suite $([[ -f reports/suite.json ]] && echo --durations-from reports/suite.json) --json reports/suite.json --junit reports/suite.xml --markdown reports/suite.md --html reports/suite.html {{ARGS}}

# The browser the game day's live page is tested in (installs Debian's chromium and chromium-driver where needed).
browser:
    bash scripts/browser.sh

# Unit tests, the binary's cluster-free tests and the API-server tier (a real kube-apiserver in a container; the live page in headless Chromium).
test: images-tier browser
    cargo test --locked --features testkit --lib --bins --tests
    cargo test --locked -p breakfix-workload
    just testkit-reap

# What `breakfix upgrade --from FROM --to TO` needs: FROM's node image, TO's kubeadm/kubelet/kubectl and control-plane images (versions: kubernetes.versions).
upgrade-images FROM="v1.34.4" TO="v1.35.4": images
    BREAKFIX_K8S_VERSION={{FROM}} bash scripts/build-images.sh control-plane
    BREAKFIX_K8S_VERSION={{FROM}} bash scripts/node-image.sh
    BREAKFIX_K8S_VERSION={{TO}} bash scripts/build-images.sh control-plane

# The in-place upgrade end to end, v1.34.4 → v1.35.4, and a fault reverted on Ctrl-C during the node roll: two kind clusters of their own, one after the other (17 minutes measured, images built).
e2e-upgrade: (upgrade-images "v1.34.4" "v1.35.4")
    cargo test --locked --features testkit --test e2e upgrade -- --ignored --test-threads=1

# End-to-end tests on a real kind cluster (the diff tests render with helm and kustomize).
e2e: images-tier cluster
    cargo test --locked --features testkit --test e2e -- --test-threads=1

# What CI runs: lint, the fast tier, then the kind tier.
ci: lint test e2e

# Formatting and lints, as CI checks them (every public item documented, the docs build without warnings); the module graph flows one way (tests/layering.rs).
lint:
    cargo fmt --all -- --check
    cargo clippy --locked --all-targets --all-features -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --all-features
    cargo test --locked --test layering

# Benchmarks on a real kind cluster (results in BENCHMARKS.md).
bench: cluster
    bash scripts/bench.sh

# Remove API-server tier containers left by test binaries.
testkit-reap:
    docker ps -aq --filter label=dev.breakfix.testkit | xargs -r docker rm -f >/dev/null
