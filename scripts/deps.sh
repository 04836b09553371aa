#!/usr/bin/env bash
# Installs the Debian packages intentd needs to build and test, only those
# missing. Idempotent; uses sudo when not root.
# Usage: scripts/deps.sh [fuzz|bench]
set -euo pipefail

# Build: compiler, CMake and the -dev packages of every library linked.
pkgs=(build-essential cmake pkg-config librdkafka-dev libavro-dev
      libopenblas-dev libyaml-dev libcriterion-dev libmicrohttpd-dev
      libsystemd-dev libjansson-dev libxxhash-dev libcurl4-openssl-dev
      zlib1g-dev)
# Packaging: dpkg-dev (dpkg-shlibdeps computes the .deb's Depends from the
# binary's libraries), file (CPack's shlibdeps step reads ELF types with it),
# lintian (a test checks the built .deb against Debian policy).
pkgs+=(dpkg-dev file lintian)
# Tests: kcat, promtool (prometheus), systemd-analyze (systemd), a third-party
# Kafka/Avro client (python3-confluent-kafka, python3-avro; python3-requests
# for its schema registry client), and headless
# chromium to render the HTML report.
pkgs+=(kcat prometheus systemd python3-confluent-kafka python3-avro
      python3-requests chromium)
case "${1:-}" in
  fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
  # Peers and baselines of `make bench` (large: not for `make test`).
  bench) pkgs+=(valgrind python3-torch python3-xgboost python3-sklearn) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
