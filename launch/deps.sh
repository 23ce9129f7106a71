#!/usr/bin/env bash
# Installs the Debian packages ctrps needs to build and run (as root, or via
# sudo). Skips apt entirely when everything is already installed.
set -euo pipefail

CTRPS_APT_PACKAGES=(
  cmake g++ make pkg-config ca-certificates
  libopenmpi-dev openmpi-bin
  libeigen3-dev librocksdb-dev libprotobuf-dev protobuf-compiler
  libspdlog-dev libgtest-dev libgmock-dev zlib1g-dev
  python3
)

missing=()
for p in "${CTRPS_APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "ctrps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
