#!/usr/bin/env bash
# The main job on a built-in default, from a fresh Debian 12 machine:
# installs packages, builds, writes synthetic Criteo-format data from a planted
# click model, trains DeepFM, evaluates on the held-out split against the
# data's Bayes-optimal AUC, and prints a result table.
# Re-running skips finished steps (delete out/quickstart to start over).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rows="${CTRPS_QUICKSTART_ROWS:-1000000}"
out=out/quickstart

echo "== 1/4 packages and build"
# The quickstart needs no ONNX Runtime (only the ONNX tests and bench do).
CTRPS_SKIP_ORT=1 bash launch/deps.sh
build="${CTRPS_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target ctrps
ctrps="$build/launch/ctrps"

echo "== 2/4 synthetic data ($rows training rows)"
"$ctrps" gen-data --format criteo --rows "$rows" --out "$out/data" --seed 1

echo "== 3/4 training DeepFM"
if [ -f "$out/model/MANIFEST" ]; then
  echo "model already trained: $out/model (delete it to retrain)"
else
  "$ctrps" train --config configs/quickstart.pbtxt
fi

echo "== 4/4 evaluation on the test split"
"$ctrps" eval --model "$out/model" --data "$out/data/test.txt" --truth "$out/data/test.txt.truth"
echo
echo "model:   $out/model"
echo "metrics: $out/metrics.jsonl"
