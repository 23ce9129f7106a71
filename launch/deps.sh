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
  # ONNX export (schema + checker), and reading bundles from Python in the tests.
  libonnx-dev python3-protobuf
  # Chart.js, inlined into `ctrps report` pages at build time.
  libjs-chart.js
  # Hosts made of network namespaces (launch/netns_cluster.sh, the netns test).
  iproute2 util-linux
)
# Headless Chromium checks the report pages in the tests (tests/integration/
# report.sh; about 300 MB). Optional: with CTRPS_SKIP_BROWSER=1 it is not
# installed and that test skips, saying so.
if [ "${CTRPS_SKIP_BROWSER:-0}" != "1" ]; then CTRPS_APT_PACKAGES+=(chromium); fi

# ONNX Runtime for the ONNX equality test and bench/inference_bench: npm's
# onnxruntime-node (CPU runtime; its native binary ships in the package, so
# --ignore-scripts is enough) into the repo's node_modules/ (about 300 MB).
# Optional: without node, or with CTRPS_SKIP_ORT=1, the tests skip that check
# and say so.
install_onnxruntime_node() {
  if [ "${CTRPS_SKIP_ORT:-0}" = "1" ]; then return 0; fi
  local repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ -d "$repo/node_modules/onnxruntime-node" ]; then return 0; fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "ctrps: npm not found; ONNX Runtime checks will be skipped" >&2
    return 0
  fi
  echo "ctrps: installing onnxruntime-node into $repo/node_modules" >&2
  (cd "$repo" && npm install --ignore-scripts --no-audit --no-fund --no-save onnxruntime-node >/dev/null) ||
    echo "ctrps: npm install onnxruntime-node failed; ONNX Runtime checks will be skipped" >&2
}

missing=()
for p in "${CTRPS_APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  install_onnxruntime_node
  exit 0
fi
echo "ctrps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_onnxruntime_node
