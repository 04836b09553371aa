#!/usr/bin/env bash
# Installs the Debian packages intentd needs to build and test, only those
# missing. Idempotent; uses sudo when not root. Usage: scripts/deps.sh [bench]
set -euo pipefail

pkgs=(build-essential cmake pkg-config librdkafka-dev libavro-dev
      libopenblas-dev libyaml-dev libcriterion-dev libmicrohttpd-dev
      libsystemd-dev libjansson-dev libxxhash-dev libcurl4-openssl-dev zlib1g-dev kcat
      prometheus systemd)
if [ "${1:-}" = bench ]; then
  pkgs+=(valgrind python3-confluent-kafka python3-avro python3-torch
         python3-xgboost python3-sklearn)
fi

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
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
