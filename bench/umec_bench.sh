#!/usr/bin/env bash
# UMEC's benchmark (issue: UMEC). On planted Criteo-shape data (ROWS
# training rows; the generator plants noise fields, listed in meta.json),
# trains DLRM with concatenation (the paper's model) and DeepFM to
# convergence (early stopping on valid AUC), then for each budget (0.5, 0.3,
# 0.1 of the dense MLP multiply-adds) compresses each with UMEC and each
# baseline at the same budget (magnitude pruning, uniform thinning, group
# lasso), every method with the same constrained-training epoch and the same
# fine-tuning, and prints per run: achieved resource, test AUC and logloss
# against the dense model, bytes, fields and neurons kept. Then input
# selection alone on DeepFM removing 1, 4 and 8 fields; last, compact-data's
# rows/s and bytes against reading the same file (compression runs use
# the paper's batch of 128: the dual variables move per step): which fields went,
# their precision against the planted noise fields, and the AUC change.
#   [MODELS='deepfm dlrm'] [UMEC_STEPS=0] [FT_STEPS=0] bench/umec_bench.sh [BUILD_DIR] [ROWS] [WORK_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
rows="${2:-300000}"
work="${3:-$root/out/umec_bench}"
models="${MODELS:-deepfm dlrm}"          # which models' budget runs
umec_steps="${UMEC_STEPS:-0}"            # constrained-training steps (0: one epoch)
ft_steps="${FT_STEPS:-0}"                # fine-tuning steps (0: one epoch)
mkdir -p "$work"; work="$(cd "$work" && pwd)"
ctrps="$build/launch/ctrps"
cd "$work"
echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $rows training rows"
[ -f data/meta.json ] || "$ctrps" gen-data --format criteo --rows "$rows" --out data --seed 7 2>/dev/null | tail -4
noise=$(python3 -c "import json; print(' '.join(json.load(open('data/meta.json'))['noise_fields']))")
echo "planted noise fields: $noise"

data_section() {
  cat <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 100000
       max_eval_rows: 50000 }
CFG
}
train_model() {  # train_model NAME MODEL_SECTION
  local name="$1" model="$2"
  [ -f "$name/model/MANIFEST" ] && return 0
  { data_section; cat <<CFG
model { $model }
train { epochs: 4 batch_size: 1024 threads: 2 eval_every_steps: 100 early_stopping_patience: 3
        dense_optimizer { type: ADAM learning_rate: 0.001 } sparse_optimizer { type: ADAM learning_rate: 0.001 } }
output { dir: "$name" }
CFG
  } > "$name.pbtxt"
  "$ctrps" train --config "$name.pbtxt" > "$name.train.out" 2> "$name.train.err"
}
compress_run() {  # compress_run NAME FROM METHOD UMEC_SECTION
  local name="$1" from="$2" method="$3" umec="$4"
  [ -f "$name/model/MANIFEST" ] && return 0
  { data_section; cat <<CFG
train { batch_size: 128 threads: 2
        dense_optimizer { type: ADAM learning_rate: 0.0005 } sparse_optimizer { type: ADAM learning_rate: 0.0005 } }
compression { stages { method: $method name: "s"
                       umec { $umec lr: 0.1 log_every_steps: 100 train { epochs: 1 max_steps: $umec_steps } }
                       fine_tune { epochs: 1 max_steps: $ft_steps eval_every_steps: 100 early_stopping_patience: 3 } } }
output { dir: "$name" }
CFG
  } > "$name.pbtxt"
  "$ctrps" compress --config "$name.pbtxt" --from "$from/model" > "$name.out" 2> "$name.err" ||
    { echo "  $name FAILED: $(tail -1 "$name.err")"; return 0; }
}
report() {  # report NAME: one line from the run's metrics
  python3 - "$1" "$noise" <<'PY'
import json, sys
name, noise = sys.argv[1], set(sys.argv[2].split())
try:
    lines = [json.loads(l) for l in open(name + "/metrics.jsonl")]
except OSError:
    print(f"  {name:34s} (no result)"); sys.exit()
models = [l for l in lines if l.get("event") == "compress_model"]
base, after = models[0], models[-1]
u = [l for l in lines if l.get("event") == "compress_umec"][-1]
gone = u["dropped_fields"].split()
prec = (sum(f in noise for f in gone) / len(gone)) if gone else float("nan")
print(f"  {name:34s} resource {u['resource']:.4f} (budget {u['budget']:.4f})  "
      f"test AUC {after['test_auc']:.5f} ({after['test_auc'] - base['test_auc']:+.5f})  "
      f"logloss {after['test_logloss']:.5f} ({after['test_logloss'] - base['test_logloss']:+.5f})  "
      f"bytes {after['bytes']} ({base['bytes'] / after['bytes']:.2f}x)  mlp {u['mlp_dims']}  "
      f"fields dropped {len(gone)} [{' '.join(gone)}] noise precision {prec:.2f}")
PY
}

train_model deepfm 'type: DEEPFM embedding_dim: 16 mlp_dims: [400, 400, 400]'
echo "== input selection alone (DeepFM): fields_to_drop 1, 4 ($(echo $noise | wc -w) planted noise fields), 8"
for k in 1 4 8; do
  compress_run "deepfm-input-$k" deepfm UMEC "input_only: true fields_to_drop: $k"
  report "deepfm-input-$k"
done
case " $models " in *" dlrm "*) train_model dlrm 'type: DLRM embedding_dim: 16 dlrm_interaction: CAT mlp_dims: [400, 400, 400]' ;; esac
for m in $models; do
  echo "== $m: dense model test AUC $(awk '/test AUC/ {print $3}' $m.train.out | tail -1)"
  for b in 0.5 0.3 0.1; do
    for method in UMEC MAGNITUDE_PRUNING UNIFORM_THINNING GROUP_LASSO; do
      compress_run "$m-$b-$method" "$m" "$method" "budget: $b"
      report "$m-$b-$method"
    done
  done
done

# compact-data against reading the same file, in one run: reader_bench
# writes a Criteo file and times a raw read and the pipeline reader on it;
# compact-data then rewrites it without the planted noise fields.
echo "== compact-data (drop: $noise) against reading the same file"
"$build/bench/reader_bench" --rows=500000 --dir="$work/reader" --repeat=1 --keep 2>/dev/null | grep -v "^$" | tail -8
noise_list=$(python3 -c "import json; print(', '.join('\"%s\"' % f for f in json.load(open('data/meta.json'))['noise_fields']))")
printf 'data { format: CRITEO train: "unused" }\nmodel { dropped_fields: [%s] }\n' "$noise_list" > compact.pbtxt
"$ctrps" compact-data --config compact.pbtxt --in "$work/reader/criteo_bench.txt" --out "$work/reader/compact.txt"
"$ctrps" compact-data --config compact.pbtxt --in "$work/reader/criteo_bench.txt.gz" --out "$work/reader/compact.txt.gz"
