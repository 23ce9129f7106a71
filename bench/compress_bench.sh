#!/usr/bin/env bash
# The compression stage's benchmark (issue: AFM). On planted Criteo-shape data
# (ROWS training rows, Bayes-optimal AUC known), trains DeepFM (emb 16, MLP
# 400-400-400) to convergence (early stopping on valid AUC), then compresses
# it with each setting below, one `ctrps compress` per setting, each with one
# epoch of fine-tuning, and prints per setting: parameters, bundle bytes,
# test AUC and logloss before and after fine-tuning, the gap to Bayes, and
# the native engine's single-row p50/p99 and batch-1024 rows/s against the
# uncompressed bundle in the same run (bench/bundle_latency.cc); then the
# stage's own time (statistics pass, eigendecompositions, table rewrite)
# against one training epoch, the rewrite's rows/s on the memory store and
# on a TIERED store whose DRAM tier is 1/4 of the tables; then DCN-v2 and
# DLRM (cat) trained one epoch and compressed at embeddings 16 -> 4 and MLP
# rank 64.
#   bench/compress_bench.sh [BUILD_DIR] [ROWS] [WORK_DIR]
# Bundles are exported twice: with packed keys (bundle format 4, the default
# of `ctrps export`) and with 8-byte keys (--keys u64), sizes of both printed.
# Environment: SETTINGS="e4m64 e4m64svd ..." runs only those DeepFM settings;
# OTHER_MODELS=0 skips the TIERED rewrite and DCN-v2/DLRM; FT_SEED=N sets the
# fine-tuning shuffle seed (train.seed, default 1), FT_LR the fine-tuning
# learning rate (dense and sparse Adam, default 0.0001: higher valid AUC than
# 0.0005 for AFM and weight-SVD alike, 3 seeds each; 0.0005 first undoes much of
# the surgery's start with fresh Adam state).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
rows="${2:-1000000}"
work="${3:-$root/out/compress_bench}"
mkdir -p "$work"; work="$(cd "$work" && pwd)"
ctrps="$build/launch/ctrps"
latency="$build/bench/bundle_latency"
mkdir -p "$work"
cd "$work"
echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
"$ctrps" gen-data --format criteo --rows "$rows" --out data --seed 7 2>/dev/null | tail -5
bayes_auc=$(python3 -c "import json;m=json.load(open('data/meta.json'));print([s for s in m['splits'] if s['name']=='test'][0]['bayes_auc'])")

data_section() {
  cat <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 100000
       max_eval_rows: 50000 }
CFG
}
train_model() {  # train_model NAME MODEL_SECTION EPOCHS
  local name="$1" model="$2" epochs="$3"
  [ -f "$name/model/MANIFEST" ] && return 0
  { data_section; cat <<CFG
model { $model }
train { epochs: $epochs batch_size: 2048 threads: 2 eval_every_steps: 100 early_stopping_patience: 3
        dense_optimizer { type: ADAM learning_rate: 0.001 } sparse_optimizer { type: ADAM learning_rate: 0.001 } }
output { dir: "$name" }
CFG
  } > "$name.pbtxt"
  "$ctrps" train --config "$name.pbtxt" > "$name.train.out" 2> "$name.train.err"
}
compress_model() {  # compress_model NAME FROM METHOD AFM_SECTION [--set ...]
  local name="$1" from="$2" method="$3" afm="$4"; shift 4
  [ -f "$name/model/MANIFEST" ] && return 0
  { data_section; cat <<CFG
train { batch_size: 2048 threads: 2 seed: ${FT_SEED:-1}
        dense_optimizer { type: ADAM learning_rate: ${FT_LR:-0.0001} }
        sparse_optimizer { type: ADAM learning_rate: ${FT_LR:-0.0001} } }
compression { stages { method: $method name: "s" afm { $afm }
                       fine_tune { epochs: 1 eval_every_steps: 100 early_stopping_patience: 3 } } }
output { dir: "$name" }
CFG
  } > "$name.pbtxt"
  "$ctrps" compress --config "$name.pbtxt" --from "$from/model" "$@" > "$name.out" 2> "$name.err"
}
export_bundle() {
  [ -f "$1/bundle/model.pb" ] || "$ctrps" export --checkpoint "$1/model" --out "$1/bundle" >/dev/null
  [ -f "$1/bundle_u64/model.pb" ] ||
    "$ctrps" export --checkpoint "$1/model" --out "$1/bundle_u64" --keys u64 >/dev/null
}
# metric NAME EVENT_MODEL KEY: a value from the compress_model lines of NAME's metrics
metric() {
  python3 - "$1/metrics.jsonl" "$2" "$3" <<'PY'
import json, sys
path, model, key = sys.argv[1:]
val = "-"
for line in open(path):
    j = json.loads(line)
    if j.get("event") == "compress_model" and j.get("model") == model and key in j:
        val = j[key]
    if j.get("event") == "compress_stage" and model == "stage" and key in j:
        val = j[key]
print(val)
PY
}

echo "== training DeepFM (emb 16, MLP 400-400-400) to convergence"
train_model deepfm 'type: DEEPFM embedding_dim: 16 mlp_dims: [400, 400, 400]' 3
grep -E "samples/s|test AUC|train time|steps " deepfm.train.out | sed 's/^/  /'
epoch_s=$(python3 - "$rows" <<'PY'
import json, sys
rows = int(sys.argv[1])
for l in open("deepfm/metrics.jsonl"):
    j = json.loads(l)
    if j.get("event") == "train_done":
        print("%.1f" % (j["seconds"] * rows / max(1, j["samples"])))
PY
)

declare -A settings=(
  [e8]='AFM|embeddings { rank: 8 }'
  [e4]='AFM|embeddings { rank: 4 }'
  [e2]='AFM|embeddings { rank: 2 }'
  [m64]='AFM|layers { layer: "mlp.1" rank { rank: 64 } } layers { layer: "mlp.2" rank { rank: 64 } }'
  [m128]='AFM|layers { layer: "mlp.1" rank { rank: 128 } } layers { layer: "mlp.2" rank { rank: 128 } }'
  [m64relu]='AFM|layers { layer: "mlp.1" rank { rank: 64 } relu: true } layers { layer: "mlp.2" rank { rank: 64 } relu: true }'
  [e4m64]='AFM|embeddings { rank: 4 } layers { layer: "mlp.1" rank { rank: 64 } } layers { layer: "mlp.2" rank { rank: 64 } }'
  [e4m64svd]='WEIGHT_SVD|embeddings { rank: 4 } layers { layer: "mlp.1" rank { rank: 64 } } layers { layer: "mlp.2" rank { rank: 64 } }'
  [e2m64]='AFM|embeddings { rank: 2 } layers { layer: "mlp.1" rank { rank: 64 } } layers { layer: "mlp.2" rank { rank: 64 } }'
  [var99]='AFM|embeddings { variance: 0.99 } layers { layer: "mlp.1" rank { variance: 0.99 } } layers { layer: "mlp.2" rank { variance: 0.99 } }'
)
order=(e8 e4 e2 m64 m128 m64relu e4m64 e4m64svd e2m64 var99)
if [ -n "${SETTINGS:-}" ]; then
  chosen=()
  for s in $SETTINGS; do
    [ -n "${settings[$s]:-}" ] || { echo "SETTINGS: unknown setting '$s' (known: ${order[*]})" >&2; exit 2; }
    chosen+=("$s")
  done
  order=("${chosen[@]}")
fi
for s in "${order[@]}"; do
  echo "== compressing: $s"
  compress_model "deepfm_$s" deepfm "${settings[$s]%%|*}" "${settings[$s]#*|}"
  grep -E "compression:" "deepfm_$s.out" | sed 's/^/  /' || true
done
export_bundle deepfm
bundles=(deepfm/bundle deepfm/bundle_u64)
for s in "${order[@]}"; do export_bundle "deepfm_$s"; bundles+=("deepfm_$s/bundle" "deepfm_$s/bundle_u64"); done
bundle_bytes() { du -sb "$1" | cut -f1; }

echo
echo "== DeepFM: test AUC (Bayes $bayes_auc) and size; before = after surgery, before fine-tuning;"
echo "   bundle_B packed keys, u64_B 8-byte keys; x = the uncompressed bundle's bytes / this one's, same key encoding"
printf "  %-10s %10s %12s %7s %12s %7s %10s %10s %10s %10s %10s\n" setting params bundle_B x u64_B x \
  AUC_before AUC_after LL_after gap_Bayes dAUC
first="deepfm_${order[0]}"
base_auc=$(metric "$first" uncompressed test_auc)
ub=$(bundle_bytes deepfm/bundle); uu=$(bundle_bytes deepfm/bundle_u64)
for s in "${order[@]}"; do
  n="deepfm_$s"
  auc_b=$(metric "$n" "s (before fine-tuning)" test_auc)
  auc_a=$(metric "$n" s test_auc)
  ll_a=$(metric "$n" s test_logloss)
  params=$(metric "$n" s params)
  bytes=$(bundle_bytes "$n/bundle"); bytes_u=$(bundle_bytes "$n/bundle_u64")
  python3 -c "import sys;a=float('$auc_a');print('  %-10s %10s %12s %7.3f %12s %7.3f %10.5f %10.5f %10.5f %10.5f %+10.5f'%('$s','$params','$bytes',$ub/$bytes,'$bytes_u',$uu/$bytes_u,float('$auc_b'),a,float('$ll_a'),float('$bayes_auc')-a,a-float('$base_auc')))"
done
printf "  %-10s %10s %12s %7s %12s %7s %10s %10.5f %10.5f %10.5f\n" uncompr "$(metric "$first" uncompressed params)" \
  "$ub" 1 "$uu" 1 - "$base_auc" "$(metric "$first" uncompressed test_logloss)" \
  "$(python3 -c "print(float('$bayes_auc')-float('$base_auc'))")"

echo
echo "== native engine on the test data, one thread, interleaved rounds (ratios against the uncompressed bundle, packed keys)"
"$latency" data/test.txt 20000 "${bundles[@]}" | sed 's/^/  /'

echo
echo "== the stage's own time against one training epoch (${epoch_s} s; DeepFM, memory store)"
printf "  %-10s %9s %9s %9s %12s %12s\n" setting stats_s eig_s rewrite_s rewrite_rows rows_per_s
for s in e4 e4m64 m64; do
  n="deepfm_$s"
  [ -f "$n/metrics.jsonl" ] || continue
  python3 - "$n/metrics.jsonl" "$s" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j.get("event") == "compress_stage":
        r = j["rewritten_rows"] / j["rewrite_s"] if j["rewrite_s"] > 0 and j["rewritten_rows"] else 0
        print("  %-10s %9.2f %9.3f %9.2f %12d %12.0f" % (sys.argv[2], j["stats_s"], j["eig_s"], j["rewrite_s"], j["rewritten_rows"], r))
PY
done
[ "${OTHER_MODELS:-1}" = 0 ] && exit 0
table_bytes=$(python3 -c "import json
t=0
for l in open('deepfm/metrics.jsonl'):
    j=json.loads(l)
    if j.get('event')=='table': t+=j['rows']*(17+32)*4
print(t)")
budget=$((table_bytes / 4))
echo "  TIERED store, DRAM budget $budget bytes (1/4 of the tables with optimizer state):"
compress_model deepfm_e4_tiered deepfm AFM 'embeddings { rank: 4 }' --set storage.kind=TIERED \
  --set storage.path="$work/tiered_store" --set storage.dram_budget_bytes="$budget"
python3 - deepfm_e4_tiered/metrics.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j.get("event") == "compress_stage":
        print("  %-10s %9.2f %9.3f %9.2f %12d %12.0f" % ("e4 tiered", j["stats_s"], j["eig_s"], j["rewrite_s"], j["rewritten_rows"], j["rewritten_rows"] / max(1e-9, j["rewrite_s"])))
PY
grep -h "Maximum resident" deepfm_e4_tiered.err 2>/dev/null || true

for m in dcnv2 dlrm; do
  echo
  if [ $m = dcnv2 ]; then
    train_model $m 'type: DCN_V2 embedding_dim: 16 mlp_dims: [400, 400, 400] cross_layers: 2' 1
    afm='embeddings { rank: 4 } layers { layer: "mlp.1" rank { rank: 64 } } layers { layer: "mlp.2" rank { rank: 64 } }'
  else
    train_model $m 'type: DLRM embedding_dim: 16 mlp_dims: [400, 400, 400] dlrm_interaction: CAT' 1
    afm='embeddings { rank: 4 } layers { layer: "top_mlp.1" rank { rank: 64 } } layers { layer: "top_mlp.2" rank { rank: 64 } }'
  fi
  echo "== $m: embeddings 16 -> 4, MLP layers 2-3 at rank 64"
  compress_model "${m}_e4m64" $m AFM "$afm"
  sed -n '/model  *params/,/compression:/p' "${m}_e4m64.out" | sed 's/^/  /'
  export_bundle $m; export_bundle "${m}_e4m64"
  "$latency" data/test.txt 20000 "$m/bundle" "${m}_e4m64/bundle" | sed 's/^/  /'
done
