#!/usr/bin/env bash
# UMEC's benchmark (issue: UMEC). On planted Criteo-shape data (ROWS
# training rows, 1M by default; the generator plants noise fields, listed in
# meta.json) trains DeepFM (and, with MODELS='deepfm dlrm', DLRM with
# concatenation, the paper's model) to convergence (early stopping on valid
# AUC), then compares, at budgets 0.5, 0.3 and 0.1 of the dense MLP
# multiply-adds, UMEC with magnitude pruning, uniform thinning and group
# lasso, and input selection alone removing 1, 4 (the planted noise fields)
# and 8 fields; last, compact-data's rows/s and bytes against reading the
# same file.
#
# Protocol. A model trained on CTR data overfits as soon as it sees the same
# rows again (the dense DeepFM's valid AUC peaks at the end of its first
# epoch and loses 0.01 within 200 steps of the second), so a compression
# stage that trains on the rows the source model saw loses AUC whatever it
# removes. The generator writes 2.4 x ROWS rows, split in order into part A
# (ROWS: the source model), part B (ROWS: constrained training) and part C
# (0.4 x ROWS: fine-tuning), and every row of the table sees each part at
# most once, and the same parts, so no method is ahead by the steps it saw:
#   UMEC, GROUP_LASSO   source -> UMEC_STEPS constrained steps on B -> select
#                         -> fine-tuning on C
#   MAGNITUDE_PRUNING,  source -> UMEC_STEPS plain steps on B (one shared run,
#   UNIFORM_THINNING      "cont") -> select -> fine-tuning on C
#   dense reference     "cont" -> the same fine-tuning on C, nothing removed
# Fine-tuning: at most FT_STEPS steps, early stopping on valid AUC (patience
# 3, every 100 steps; the model it starts from is the first candidate). A
# stage's constrained training and its fine-tuning read one data file, so
# the constrained methods run as two compress jobs (the second a budget-1.0
# stage that removes nothing and only fine-tunes).
#
# Run length. s_l moves at most lr_s per step (its gradient is clipped at
# 1), so removing G groups of a layer takes at least G / lr_s steps after
# z has grown enough: at the paper's rates (lr_s 0.05 at batch 128) budget
# 0.1 on a [400, 400, 400] MLP (about 330 of 400 neurons per layer) needs
# over 6,600 steps. The bench trains at batch BATCH (1024) and scales the
# paper's per-step rates by BATCH / 128 (lr_s, lr_y, lr_z and the shrink's
# lr), so one pass over part B (977 steps at 1M rows) moves the duals as
# far as 7,800 steps at the paper's batch; the required steps are printed
# per budget (a lower bound). PAPER_RATES=1 uses the paper's rates as they are.
#
# The duals' ramp, the binding limit. Once s_l exceeds an integer,
# ceil(s_l) puts a whole group in the least-groups sum and y_l jumps by lr_y
# times its squared norm n; y never decreases, so the k-th group of a layer
# goes only when z |dR/ds_l| exceeds y_l n' ~ lr_y k n^2: removing 150
# neurons of a 400-wide layer of this DeepFM (n ~ 2, |dR/ds| ~ 1.8e-3) takes
# ~5 x 10^4 steps at the paper's rates or any common multiple of them (the
# count depends on lr_z / lr_y), negligible in the paper's 350,000-step
# epochs, 50 times this bench's constrained pass: the rest of the budget is
# met by the final choice (`forced`). UMEC_RATES replaces the rates of the
# UMEC runs (for example 'lr: 0.8 lr_s: 0.4 lr_y: 0.8
# lr_z: 160'), TAG names those runs, BUDGETS and SKIP_BASELINES=1 /
# SKIP_INPUT=1 / SKIP_COMPACT=1 narrow the run.
#   [MODELS=deepfm] [UMEC_STEPS=0] [FT_STEPS=300] [INPUT_STEPS=300] [BATCH=1024] [PAPER_RATES=0]
#   [UMEC_RATES=...] [TAG=...] [BUDGETS='0.5 0.3 0.1'] [SKIP_BASELINES=0] [SKIP_INPUT=0] [SKIP_COMPACT=0]
#   bench/umec_bench.sh [BUILD_DIR] [ROWS] [WORK_DIR]
# (UMEC_STEPS 0: all of part B.) bench/umec_field_norms.py prints, for the
# source model, where the noise fields rank by first-layer group norm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
rows="${2:-1000000}"
work="${3:-$root/out/umec_bench}"
models="${MODELS:-deepfm}"
umec_steps="${UMEC_STEPS:-0}"     # constrained (or plain) steps; 0: one epoch
ft_steps="${FT_STEPS:-300}"       # fine-tuning steps at most
input_steps="${INPUT_STEPS:-300}" # constrained steps of input selection alone
batch="${BATCH:-1024}"
mkdir -p "$work"; work="$(cd "$work" && pwd)"
ctrps="$build/launch/ctrps"
cd "$work"
scale=$(python3 -c "print(1.0 if '${PAPER_RATES:-0}' == '1' else $batch / 128)")
rates=$(python3 -c "s=$scale; print(f'lr: {0.1*s:g} lr_s: {0.05*s:g} lr_y: {0.1*s:g} lr_z: {2.0*s:g}')")
umec_rates="${UMEC_RATES:-$rates}"  # the UMEC runs' rates
tag="${TAG:+-$TAG}"                 # their names' suffix
budgets="${BUDGETS:-0.5 0.3 0.1}"
echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $rows training rows"
echo "== batch $batch, rates: $rates (the paper's per-step rates x $scale); UMEC runs: $umec_rates"
if [ ! -f data/part_c.txt ]; then
  "$ctrps" gen-data --format criteo --rows $((rows * 24 / 10)) --eval-rows $((rows / 10)) --out data \
    --seed 7 --quiet > /dev/null
  head -n "$rows" data/train.txt > data/part_a.txt
  sed -n "$((rows + 1)),$((2 * rows))p" data/train.txt > data/part_b.txt
  tail -n +$((2 * rows + 1)) data/train.txt > data/part_c.txt
  rm data/train.txt data/train.txt.truth
fi
noise=$(python3 -c "import json; print(' '.join(json.load(open('data/meta.json'))['noise_fields']))")
nnoise=$(echo $noise | wc -w)
echo "planted noise fields: $noise"

data_section() {  # data_section PART
  cat <<CFG
data { train: "data/part_$1.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 100000
       max_eval_rows: 50000 }
CFG
}
train_model() {  # train_model NAME MODEL_SECTION
  local name="$1" model="$2"
  [ -f "$name/model/MANIFEST" ] && return 0
  { data_section a; cat <<CFG
model { $model }
train { epochs: 4 batch_size: 1024 threads: 2 eval_every_steps: 100 early_stopping_patience: 3
        dense_optimizer { type: ADAM learning_rate: 0.001 } sparse_optimizer { type: ADAM learning_rate: 0.001 } }
output { dir: "$name" }
CFG
  } > "$name.pbtxt"
  "$ctrps" train --config "$name.pbtxt" > "$name.train.out" 2> "$name.train.err"
}
# compress_run NAME FROM METHOD UMEC_SECTION PART TRAIN_STEPS FT_STEPS
# TRAIN_STEPS: -1 no constrained phase, 0 all of PART; FT_STEPS: -1 none.
compress_run() {
  local name="$1" from="$2" method="$3" umec="$4" part="$5" tsteps="$6" fsteps="$7" train ft
  [ -f "$name/model/MANIFEST" ] && return 0
  if [ "$tsteps" -lt 0 ]; then train="epochs: 0"; else train="epochs: 1 max_steps: $tsteps"; fi
  if [ "$fsteps" -lt 0 ]; then ft="epochs: 0"
  else ft="epochs: 1 max_steps: $fsteps eval_every_steps: 100 early_stopping_patience: 3"; fi
  { data_section "$part"; cat <<CFG
train { batch_size: $batch threads: 2
        dense_optimizer { type: ADAM learning_rate: 0.0005 } sparse_optimizer { type: ADAM learning_rate: 0.0005 } }
compression { stages { method: $method name: "s"
                       umec { $umec ${run_rates:-$rates} log_every_steps: 100 train { $train } }
                       fine_tune { $ft } } }
output { dir: "$name" }
CFG
  } > "$name.pbtxt"
  "$ctrps" compress --config "$name.pbtxt" --from "$from/model" > "$name.out" 2> "$name.err" ||
    { echo "  $name FAILED: $(tail -1 "$name.err")"; return 0; }
}
# constrained NAME METHOD UMEC_SECTION STEPS: from the source model, STEPS
# constrained steps on part B and the removal (NAME-sel), then fine-tuning
# on part C (NAME).
constrained() {
  local name="$1" method="$2" umec="$3" steps="$4"
  local run_rates="$rates"
  [ "$method" = UMEC ] && run_rates="$umec_rates"
  run_rates="$run_rates" compress_run "$name-sel" "$m" "$method" "$umec" b "$steps" -1
  compress_run "$name" "$name-sel" MAGNITUDE_PRUNING "budget: 1.0" c -1 "$ft_steps"
}
report() {  # report NAME [REFERENCE]: one line from the run's metrics
  python3 - "$1" "$noise" "${2:-}" <<'PY'
import json, os, sys
name, noise, ref = sys.argv[1], set(sys.argv[2].split()), sys.argv[3]
def events(n):
    return [json.loads(l) for l in open(n + "/metrics.jsonl")]
try:
    lines = events(name)
except OSError:
    print(f"  {name:28s} (no result)"); sys.exit()
models = lambda ls: [l for l in ls if l.get("event") == "compress_model"]
after = models(lines)[-1]
base = models(events(ref))[-1] if ref else models(lines)[0]  # the reference's final model
sel = lines
if os.path.exists(name + "-sel/metrics.jsonl"):  # the removal ran in its own job
    sel = events(name + "-sel")
u = [l for l in sel if l.get("event") == "compress_umec"][-1]
steps = [l for l in sel if l.get("event") == "umec"]
gone = u["dropped_fields"].split()
prec = (sum(f in noise for f in gone) / len(gone)) if gone else float("nan")
s_end = " ".join(f"{k[2:]}={v:.1f}" for k, v in steps[-1].items() if k.startswith("s.")) if steps else ""
print(f"  {name:28s} resource {u['resource']:.4f} (budget {u['budget']:.4f}, forced {u['forced']})  "
      f"test AUC {after['test_auc']:.5f} ({after['test_auc'] - base['test_auc']:+.5f})  "
      f"logloss {after['test_logloss']:.5f} ({after['test_logloss'] - base['test_logloss']:+.5f})  "
      f"bytes {after['bytes']}  mlp {u['mlp_dims']}  fields dropped {len(gone)} [{' '.join(gone)}] "
      f"noise precision {prec:.2f}" + (f"  last s: {s_end}" if s_end else ""))
PY
}
needed_steps() {  # needed_steps MLP_DIMS INPUT_WIDTH: per budget, the fewest steps s needs
  python3 - "$1" "$2" "$rates" <<'PY'
import sys
dims = [int(x) for x in sys.argv[1].split(",")]; inp = int(sys.argv[2])
lr_s = float(sys.argv[3].split("lr_s: ")[1].split()[0])
def macs(k):  # every hidden layer keeps k neurons, every field kept
    w = [inp] + [k] * len(dims) + [1]
    return sum(a * b for a, b in zip(w, w[1:]))
dense = macs(dims[0])
for b in (0.5, 0.3, 0.1):
    k = max(k for k in range(1, dims[0] + 1) if macs(k) <= b * dense)
    print(f"  budget {b}: keeping {k} of {dims[0]} neurons per layer drops {dims[0] - k}: "
          f"at least {(dims[0] - k) / lr_s:.0f} steps at lr_s {lr_s:g}, after z has grown")
PY
}

for m in $models; do
  case "$m" in
    deepfm) train_model deepfm 'type: DEEPFM embedding_dim: 16 mlp_dims: [400, 400, 400]' ;;
    dlrm) train_model dlrm 'type: DLRM embedding_dim: 16 dlrm_interaction: CAT mlp_dims: [400, 400, 400]' ;;
  esac
  echo "== $m: source model test AUC $(awk '/test AUC/ {print $3}' $m.train.out | tail -1)"
  needed_steps 400,400,400 $((39 * 16))
  [ "$m" = deepfm ] && python3 "$root/bench/umec_field_norms.py" deepfm/model data/meta.json 400 | tail -2
  # The plain continuation on part B every magnitude / uniform run and the
  # dense reference start from (nothing removed at budget 1.0).
  compress_run "$m-cont" "$m" MAGNITUDE_PRUNING "budget: 1.0" b "$umec_steps" -1
  compress_run "$m-dense" "$m-cont" MAGNITUDE_PRUNING "budget: 1.0" c -1 "$ft_steps"
  echo "  dense reference (the same parts and steps as every method):"
  report "$m-dense"
  for b in $budgets; do
    echo "== $m budget $b (AUC change against the dense reference)"
    constrained "$m-$b-UMEC$tag" UMEC "budget: $b" "$umec_steps"
    report "$m-$b-UMEC$tag" "$m-dense"
    [ "${SKIP_BASELINES:-0}" = 1 ] && continue
    for method in MAGNITUDE_PRUNING UNIFORM_THINNING; do
      compress_run "$m-$b-$method" "$m-cont" "$method" "budget: $b" c -1 "$ft_steps"
      report "$m-$b-$method" "$m-dense"
    done
    constrained "$m-$b-GROUP_LASSO" GROUP_LASSO "budget: $b" "$umec_steps"
    report "$m-$b-GROUP_LASSO" "$m-dense"
  done
done

[ "${SKIP_INPUT:-0}" = 1 ] || {
echo "== input selection alone (DeepFM): fields_to_drop 1, $nnoise (the planted noise fields), 8"
m=deepfm
for k in 1 $nnoise 8; do
  constrained "deepfm-input-$k$tag" UMEC "input_only: true fields_to_drop: $k" "$input_steps"
  report "deepfm-input-$k$tag" deepfm-dense
  compress_run "deepfm-input-$k-MAGNITUDE" deepfm-cont MAGNITUDE_PRUNING "input_only: true fields_to_drop: $k" \
    c -1 "$ft_steps"
  report "deepfm-input-$k-MAGNITUDE" deepfm-dense
done
}

# compact-data against reading the same file, in one run: reader_bench
# writes a Criteo file and times a raw read and the pipeline reader on it;
# compact-data then rewrites it without the planted noise fields.
[ "${SKIP_COMPACT:-0}" = 1 ] && exit 0
echo "== compact-data (drop: $noise) against reading the same file"
"$build/bench/reader_bench" --rows=500000 --dir="$work/reader" --repeat=1 --keep 2>/dev/null | grep -v "^$" | tail -8
noise_list=$(python3 -c "import json; print(', '.join('\"%s\"' % f for f in json.load(open('data/meta.json'))['noise_fields']))")
printf 'data { format: CRITEO train: "unused" }\nmodel { dropped_fields: [%s] }\n' "$noise_list" > compact.pbtxt
"$ctrps" compact-data --config compact.pbtxt --in "$work/reader/criteo_bench.txt" --out "$work/reader/compact.txt"
"$ctrps" compact-data --config compact.pbtxt --in "$work/reader/criteo_bench.txt.gz" --out "$work/reader/compact.txt.gz"
