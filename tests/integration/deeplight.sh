#!/usr/bin/env bash
# DeepLight (gradual magnitude pruning, COMPRESSION.md section 3) end to end
# under real mpirun: as a `ctrps compress` stage of a trained DeepFwFM and
# inside `ctrps train`, the pruned model is the same bit for bit single-
# process and on 1, 2 and 3 servers (the global embedding threshold is an
# exact selection over every server's shards); the pruning reaches its
# schedule's target; bad settings are refused naming them.
# Usage: deeplight.sh CTRPS TMPDIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"

"$ctrps" gen-data --format criteo --rows 20000 --eval-rows 3000 --out data --seed 13 2>gen.log
common='data { train: "data/train.txt" valid: "data/valid.txt" shuffle_buffer: 4000 }
train { batch_size: 256 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.003 } dense_optimizer { learning_rate: 0.003 } }
cluster { peer_timeout_ms: 20000 }'
cat > train.pbtxt <<CFG
$common
model { type: DEEPFWFM embedding_dim: 8 mlp_dims: [32, 16] }
output { dir: "dense" }
CFG
"$ctrps" train --config train.pbtxt >dense.out 2>dense.err || { tail dense.err; fail "train"; }

cat > dl.pbtxt <<CFG
$common
compression { stages { method: DEEPLIGHT
  deeplight { mlp_sparsity: 0.9 pair_ratio: 1.0 embedding_ratio: 0.444 every_steps: 10 damping_steps: 4 }
  fine_tune { epochs: 1 max_steps: 60 } } }
CFG
COMPRESS_CONFIG=dl.pbtxt COMPRESS_FROM=dense/model  # for compress (mpi_lib.sh)
compress 0 single
compress 2 s1 --servers 1
compress 3 s2 --servers 2
compress 4 s3 --servers 3
same_model single s1
same_model single s2
same_model single s3
# The last pruning step reached the schedule's target at step 60:
# S_t = 0.9 (1 - 0.99^(60/4)) = 0.1260 of each hidden MLP matrix.
python3 - single/metrics.jsonl <<'PY' || fail "pruning did not follow the schedule"
import json, math, sys
last = [json.loads(l) for l in open(sys.argv[1]) if '"event":"prune"' in l][-1]
s = 0.9 * (1 - 0.99 ** (last["step"] / 4))
assert last["step"] == 60, last
assert abs(last["target"] - s) < 1e-9, last
pruned = last["mlp_weights"] - last["mlp_nonzero"]
want = math.floor(s * 312 * 32) + math.floor(s * 32 * 16)
assert pruned == want, (pruned, want)
assert last["pairs"] - last["pairs_nonzero"] == math.floor(s * 741), last
n = last["embedding_entries"]
assert n > 0 and last["embedding_zero"] >= math.floor(s * 0.444 * n), last
print("prune at step", last["step"], "target", round(s, 4), "MLP zeros", pruned)
PY

# Inside `ctrps train`, after 20 dense steps, with persistent masks.
tp=(--config train.pbtxt --set train.max_steps=70 --set train.deeplight.mlp_sparsity=0.8
    --set train.deeplight.damping_steps=5 --set train.deeplight.warmup_steps=20
    --set train.deeplight.persistent_masks=true)
ctrps_np 0 tp_single train "${tp[@]}"
ctrps_np 3 tp_s2 train "${tp[@]}" --servers 2
same_model tp_single tp_s2
first=$(grep -m1 '"event":"prune"' tp_single/metrics.jsonl)
echo "$first" | grep -q '"step":30' || fail "pruning did not start after the warm-up: $first"

# Bad settings, refused before any work.
set +e
"$ctrps" compress --config dl.pbtxt --from dense/model --set output.dir=bad \
  --set 'compression.stages[0].deeplight.mlp_sparsity=1.5' >bad.out 2>bad.err
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "deeplight.mlp_sparsity: 1.5" bad.err || { cat bad.err; fail "bad sparsity ($rc)"; }
cat > fm.pbtxt <<CFG
$common
model { type: DEEPFM embedding_dim: 8 mlp_dims: [16] }
output { dir: "fm" }
CFG
"$ctrps" train --config fm.pbtxt --set train.max_steps=5 >fm.out 2>fm.err || fail "train DeepFM"
set +e
"$ctrps" compress --config dl.pbtxt --from fm/model --set output.dir=bad >bad.out 2>bad.err
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "DeepFM has no field-pair matrix R to prune" bad.err ||
  { cat bad.err; fail "pruning R of a DeepFM not refused ($rc)"; }
echo "deeplight: all checks passed"
