#!/usr/bin/env bash
# DeepLight's benchmark (COMPRESSION.md section 3). Planted Criteo-shape data
# (ROWS training rows; its meta.json knows the interacting field pairs),
# DeepFwFM (emb 10, MLP 400-400-400) trained dense for WARMUP epochs, then one
# `ctrps compress` DEEPLIGHT stage per setting (FINETUNE epochs of pruning
# with the schedule's time constant chosen so S_t reaches 99% of its target):
#  - the paper's setting: MLP 90%, R 90%, embeddings 40% pruned; regrowth and
#    persistent masks;
#  - MLP 95, 98, 99% (R 90%, embeddings 40%).
# Prints per setting: test AUC and logloss against the dense model, the
# non-zeros per part, the surviving field pairs against the planted ones
# (precision, recall), bundle bytes, and the native engine's single-row
# p50/p99 and batch-1024 rows/s against the dense model's bundle in the same
# run (bench/bundle_latency.cc; the sparse engine serves the pruned bundles).
# The schedule is scaled to the run: damping_steps makes S_t reach 99% of its
# target halfway through the pruning epochs (REACH=0.5 of them), so the rest
# fine-tunes at (nearly) the final sparsity with regrowth pruned back every
# 10 steps; a fixed damping_steps of 100 (the paper's, for ~22k steps an
# epoch) would leave a short run far from its target.
#   bench/deeplight_bench.sh [BUILD_DIR] [ROWS] [WORK_DIR] [WARMUP] [FINETUNE]
# Environment:
#   SETTINGS="paper mlp99"  the settings to run (default: all five);
#   FRESH=1                 gen-data makes 2 x ROWS training rows: the dense
#                           model trains on the first ROWS, the pruning stages
#                           on the other ROWS (a fresh pass, as on a large
#                           dataset, rather than epochs 2.. over the same rows,
#                           which overfit on their own); a "dense_cont" stage
#                           trains the dense model on the same rows unpruned,
#                           the control with the same data;
#   REACH=0.5               the fraction of the pruning steps by which S_t
#                           reaches 99% of its target;
#   PRUNE_BATCH=2048        the pruning stages' batch size;
#   SEED=7                  gen-data's seed (another planted model and data).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
rows="${2:-1000000}"
work="${3:-$root/out/deeplight_bench}"
warmup="${4:-2}"
finetune="${5:-2}"
mkdir -p "$work"; work="$(cd "$work" && pwd)"
ctrps="$build/launch/ctrps"
latency="$build/bench/bundle_latency"
cd "$work"
echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
fresh="${FRESH:-0}"
reach="${REACH:-0.5}"
prune_batch="${PRUNE_BATCH:-2048}"
seed="${SEED:-7}"
all_settings="paper paper_masks mlp95 mlp98 mlp99"
run_settings="${SETTINGS:-$all_settings}"
if [ "$fresh" = 1 ]; then
  "$ctrps" gen-data --format criteo --rows "$((2 * rows))" --eval-rows "$((rows / 10))" --out data \
    --seed "$seed" 2>/dev/null | tail -4
  [ -f data/train_a.txt ] || { head -n "$rows" data/train.txt > data/train_a.txt;
                               tail -n +"$((rows + 1))" data/train.txt > data/train_b.txt; }
  dense_train=data/train_a.txt prune_train=data/train_b.txt
  run_settings="dense_cont $run_settings"
else
  "$ctrps" gen-data --format criteo --rows "$rows" --out data --seed "$seed" 2>/dev/null | tail -4
  dense_train=data/train.txt prune_train=data/train.txt
fi
eval_files='valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 100000 max_eval_rows: 50000'
data="data { train: \"$dense_train\" $eval_files }"
prune_data="data { train: \"$prune_train\" $eval_files }"
opt='dense_optimizer { type: ADAM learning_rate: 0.001 } sparse_optimizer { type: ADAM learning_rate: 0.001 }'
if [ ! -f dense/model/MANIFEST ]; then
  cat > dense.pbtxt <<CFG
$data
model { type: DEEPFWFM embedding_dim: 10 mlp_dims: [400, 400, 400] }
train { epochs: $warmup batch_size: 2048 threads: 2 eval_every_steps: 100 early_stopping_patience: 3 $opt }
output { dir: "dense" }
CFG
  echo "== dense DeepFwFM, $warmup warm-up epochs"
  "$ctrps" train --config dense.pbtxt > dense.out 2> dense.err
fi
grep -E "steps |test AUC|samples/s" dense.out | sed 's/^/  /'
steps_per_epoch=$(( (rows + prune_batch - 1) / prune_batch ))
# S_t = S (1 - 0.99^(t / D)) reaches 0.99 S at t = 458 D.
damping=$(python3 -c "print(max(0.01, $reach * $finetune * $steps_per_epoch / 458.0))")
# name mlp pair_ratio emb_ratio persistent
declare -A settings=(["dense_cont"]="0 0 0 false" ["paper"]="0.9 1.0 0.444 false"
  ["paper_masks"]="0.9 1.0 0.444 true" ["mlp95"]="0.95 0.947 0.421 false"
  ["mlp98"]="0.98 0.918 0.408 false" ["mlp99"]="0.99 0.909 0.404 false")
for name in $run_settings; do
  set -- ${settings[$name]}
  [ -f "$name/model/MANIFEST" ] && continue
  cat > "$name.pbtxt" <<CFG
$prune_data
train { batch_size: $prune_batch threads: 2 $opt }
compression { stages { method: DEEPLIGHT name: "s"
  deeplight { mlp_sparsity: $1 pair_ratio: $2 embedding_ratio: $3 every_steps: 10
              damping_steps: $damping persistent_masks: $4 }
  fine_tune { epochs: $finetune eval_every_steps: 100 } } }
output { dir: "$name" }
CFG
  echo "== pruning: $name (MLP $1, R $1 x $2, embeddings $1 x $3, masks $4, damping $damping steps, $finetune epoch(s) of $steps_per_epoch steps)"
  "$ctrps" compress --config "$name.pbtxt" --from dense/model > "$name.out" 2> "$name.err"
done
for d in dense $run_settings; do
  [ -f "$d/bundle/model.pb" ] || "$ctrps" export --checkpoint "$d/model" --out "$d/bundle" >/dev/null 2>&1
done

echo
echo "== test AUC against the dense model; non-zeros; planted pairs among the survivors of R"
RUN_SETTINGS="$run_settings" python3 - <<'PY'
import json, os, struct
meta = json.load(open("data/meta.json"))
names = [f["name"] for f in meta["fields"]]
planted = {tuple(sorted((a, b))) for a, b, _ in meta["model"]["interaction_pairs"]}
bayes = [s for s in meta["splits"] if s["name"] == "test"][0]["bayes_auc"]
def last(path, event, **kw):
    out = None
    for l in open(path):
        j = json.loads(l)
        if j.get("event") == event and all(j.get(k) == v for k, v in kw.items()):
            out = j
    return out
def r_pairs(model_dir):
    params = {}
    for line in open(model_dir + "/MANIFEST"):
        p = line.split()
        if p and p[0] == "param": params[p[1]] = (int(p[2]), int(p[3]), int(p[4]))
    rows, cols, off = params["fwfm.r"]
    raw = open(model_dir + "/dense.bin", "rb").read()
    r = struct.unpack_from("<%df" % (rows * cols), raw, off * 4)
    F = rows
    return {(names[i], names[j]) for j in range(F) for i in range(j)
            if r[j * F + i] != 0 or r[i * F + j] != 0}, F * (F - 1) // 2
run = os.environ["RUN_SETTINGS"].split()
base = last(run[0] + "/metrics.jsonl", "compress_model", model="uncompressed")
print("  Bayes test AUC %.5f; dense model: test AUC %.5f logloss %.5f" % (bayes, base["test_auc"], base["test_logloss"]))
print("  %-12s %9s %9s %9s %12s %10s %16s %9s %7s" % ("setting", "AUC", "dAUC", "logloss", "MLP nz", "pairs nz", "emb zero", "precision", "recall"))
for name in run:
    m = last(name + "/metrics.jsonl", "compress_model", model="s")
    p = last(name + "/metrics.jsonl", "prune")
    kept, total = r_pairs(name + "/model")
    hit = {tuple(sorted(k)) for k in kept} & planted
    prec = len(hit) / max(1, len(kept))
    rec = len(hit) / len(planted)
    print("  %-12s %9.5f %+9.5f %9.5f %5d/%-6d %4d/%-5d %7d/%-7d %9.3f %7.3f" % (
        name, m["test_auc"], m["test_auc"] - base["test_auc"], m["test_logloss"],
        p["mlp_nonzero"], p["mlp_weights"], p["pairs_nonzero"], p["pairs"],
        p["embedding_zero"], p["embedding_entries"], prec, rec))
PY

echo
echo "== native engine on the test data, one thread, interleaved rounds (ratios against the dense bundle)"
"$latency" data/test.txt 20000 dense/bundle $(for d in $run_settings; do echo "$d/bundle"; done) | sed 's/^/  /'
