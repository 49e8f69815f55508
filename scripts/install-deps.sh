#!/usr/bin/env bash
# Installs the Debian packages Switchboard builds and tests with.
# Idempotent and quiet when everything is already there; the Dockerfile runs it too.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev libre2-dev libsimdjson-dev
  libcpprest-dev libssl-dev libnats-dev prometheus-cpp-dev
  nats-server curl tzdata openssl
  clang-14 libclang-rt-14-dev
  # Dashboard and alert tests (a real Prometheus, promtool, jq); the image's CA bundle.
  prometheus jq ca-certificates
  # The chaos suite's network cut: nft drops the routers' packets (tests/chaos/network_cut.h).
  nftables
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
