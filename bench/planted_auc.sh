#!/usr/bin/env bash
# Foundation's acceptance run: on planted Criteo-shaped data (2M training
# rows by default), trains LR, FM and DeepFM with the quickstart settings and
# prints each model's test AUC and logloss beside the Bayes-optimal ones from
# `ctrps eval --truth`.
#   bench/planted_auc.sh [CTRPS_BIN] [WORK_DIR] [ROWS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ctrps="${1:-$root/build/launch/ctrps}"
work="${2:-$root/out/planted_auc}"
rows="${3:-2000000}"
data="$work/data"
"$ctrps" gen-data --format criteo --rows "$rows" --out "$data" --seed 7 | tail -6
for model in LR FM DEEPFM; do
  out="$work/$model"
  if [ ! -f "$out/model/MANIFEST" ]; then
    "$ctrps" train --config "$root/configs/quickstart.pbtxt" \
      --set name="planted_$model" --set model.type="$model" \
      --set data.train="$data/train.txt" --set data.valid="$data/valid.txt" \
      --set data.test="" --set output.dir="$out" --set train.eval_every_steps=0 \
      2>"$out.log" | grep -E "samples/s|valid AUC" | sed "s/^/$model /"
  fi
  "$ctrps" eval --model "$out/model" --data "$data/test.txt" --truth "$data/test.txt.truth" \
    2>/dev/null | sed "s/^/$model /" > "$out.eval"
  cat "$out.eval"
done
