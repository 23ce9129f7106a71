#!/usr/bin/env bash
# UMEC end to end with real files and real mpirun: a compression stage
# (joint budget) gives the same model bit for bit single-process, on 1
# server + 1 worker and on 2 servers + 1 worker, on RocksDB; the budget is
# met; the dropped fields' tables are gone from the saved model and every
# server's store, and the readers skip them (eval works on the result);
# input selection alone removes exactly fields_to_drop fields; a kill -9
# during the constrained training resumes to the same bits (the s, y, z
# state in the checkpoint); UMEC inside `ctrps train`; bad budgets refused
# before any work, naming the setting.
# The baselines (magnitude pruning, uniform thinning, group lasso) meet
# the same budget.
# Usage: umec.sh CTRPS TMPDIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"

"$ctrps" gen-data --format criteo --rows 20000 --eval-rows 3000 --out data --seed 5 2>gen.log
common='data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 4000 }
train { batch_size: 256 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.003 } dense_optimizer { learning_rate: 0.003 } }
cluster { peer_timeout_ms: 20000 }'
cat > train.pbtxt <<CFG
$common
model { type: DEEPFM embedding_dim: 4 mlp_dims: [24, 16] }
output { dir: "trained" }
CFG
"$ctrps" train --config train.pbtxt >train.out 2>train.err || { tail train.err; fail "train"; }

cat > umec.pbtxt <<CFG
$common
compression {
  stages {
    method: UMEC
    umec { budget: 0.5 lr: 0.1 log_every_steps: 10 train { epochs: 1 max_steps: 60 } }
    fine_tune { epochs: 1 max_steps: 20 }
  }
}
CFG
COMPRESS_CONFIG=umec.pbtxt COMPRESS_FROM=trained/model  # for compress (mpi_lib.sh)

compress 0 single
grep -q '"event":"umec"' single/metrics.jsonl || fail "no umec progress metrics"
grep -q "UMEC removed" single.err || fail "no removal line"
python3 - single/metrics.jsonl <<'PY' || fail "the budget is not met"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
r = [l for l in lines if l.get("event") == "compress_umec"][-1]
assert r["resource"] <= r["budget"] + 1e-12, r
steps = [l for l in lines if l.get("event") == "umec"]
assert all(k in steps[-1] for k in ("s.mlp.0", "y.mlp.0", "z", "resource")), steps[-1]
print("resource", r["resource"], "budget", r["budget"], "dropped", r["dropped_fields"], "mlp", r["mlp_dims"])
PY
compress 2 s1w1
same_model single s1w1
compress 3 s2w1 --servers 2
same_model single s2w1

# The dropped fields: in the saved config, gone from the saved tables.
dropped=$(python3 -c "import json; print(' '.join([l for l in map(json.loads, open('single/metrics.jsonl')) if l.get('event') == 'compress_umec'][-1]['dropped_fields'].split()))")
[ -n "$dropped" ] || fail "budget 0.5 dropped no field"
for f in $dropped; do
  grep -q "dropped_fields: \"$f\"" single/model/config.pbtxt || fail "$f is not in the saved config"
done
tables=$(grep -c '^table ' single/model/MANIFEST)
[ "$tables" -eq $((39 - $(echo "$dropped" | wc -w))) ] || fail "the saved model has $tables tables"
# ... and from every server's RocksDB store (2 servers): the stats after the
# stage count no row of a dropped table.
compress 3 rocks --servers 2 --set storage.kind=ROCKSDB --set storage.path="$tmp/rocks_store"
same_model single rocks
# The result is a model `eval` reads (its readers skip the dropped fields).
"$ctrps" eval --model single/model --data data/test.txt \
  >eval.out 2>eval.err || { tail eval.err; fail "eval of the UMEC model"; }
grep -qi "auc" eval.out || fail "eval printed no AUC"
# The serving bundle (format 5) holds the removed fields: it scores as the
# saved model, and predict reads raw lines with the dropped columns skipped.
"$ctrps" export --checkpoint single/model --out single_bundle >export.out 2>export.err ||
  { tail export.err; fail "export of the UMEC model"; }
"$ctrps" eval --model single_bundle --data data/test.txt >evalb.out 2>evalb.err || fail "eval of the bundle"
[ "$(grep 'model AUC' eval.out)" = "$(grep 'model AUC' evalb.out)" ] || fail "the bundle scores differently"
"$ctrps" predict --model single_bundle --data data/test.txt --out pred.txt >pred.out 2>pred.err ||
  { tail pred.err; fail "predict with the UMEC bundle"; }
[ "$(wc -l < pred.txt)" -eq 3000 ] || fail "predict wrote $(wc -l < pred.txt) lines"
grep -q "keep_fields" single_bundle/model.pbtxt || fail "the bundle does not record the kept fields"

# compact-data: the data without the dropped fields (gzip out) scores the
# same; its bytes shrink.
"$ctrps" compact-data --model single/model --in data/test.txt --out test.compact.txt.gz \
  >compact.out 2>compact.err || { cat compact.err; fail "compact-data"; }
"$ctrps" eval --model single/model --data test.compact.txt.gz >evalc.out 2>evalc.err ||
  { tail evalc.err; fail "eval of the compacted data"; }
[ "$(grep 'model AUC' eval.out)" = "$(grep 'model AUC' evalc.out)" ] || fail "the compacted data scores differently"
"$ctrps" compact-data --model single/model --in data/test.txt --out test.compact.txt >/dev/null
[ "$(stat -c %s test.compact.txt)" -lt "$(stat -c %s data/test.txt)" ] || fail "compact-data did not shrink the data"
# Avazu (header-named columns) and libffm (tokens): a model that drops
# fields from the start reads the compacted data exactly as the original.
"$ctrps" gen-data --format avazu --rows 3000 --eval-rows 500 --out av --seed 3 2>/dev/null >/dev/null
cat > av.pbtxt <<CFG
data { format: AVAZU train: "av/train.csv" test: "av/test.csv" }
model { type: DEEPFM embedding_dim: 4 mlp_dims: [8] dropped_fields: ["site_id", "C14", "device_ip"] }
train { batch_size: 256 }
output { dir: "av_model" }
CFG
"$ctrps" train --config av.pbtxt >av.out 2>av.err || { tail av.err; fail "train avazu with dropped fields"; }
"$ctrps" compact-data --model av_model/model --in av/test.csv --out av_test.csv >/dev/null 2>&1 || fail "compact avazu"
head -1 av_test.csv | grep -q "site_id" || fail "the avazu header lost a column"
"$ctrps" eval --model av_model/model --data av/test.csv >ava.out 2>&1 || fail "eval avazu"
"$ctrps" eval --model av_model/model --data av_test.csv >avb.out 2>&1 || fail "eval compacted avazu"
[ "$(grep 'model AUC' ava.out)" = "$(grep 'model AUC' avb.out)" ] || fail "compacted avazu scores differently"
python3 - <<'PY'
import random
random.seed(1)
with open("ffm.txt", "w") as f:
    for i in range(2000):
        toks = [f"{j}:{random.randrange(50)}:1" for j in range(5)]
        y = 1 if (toks[0].endswith("7:1") or random.random() < 0.2) else 0
        f.write(str(y) + " " + " ".join(toks) + "\n")
PY
cat > ffm.pbtxt <<CFG
data { format: LIBFFM libffm_num_fields: 5 train: "ffm.txt" test: "ffm.txt" }
model { type: FM embedding_dim: 4 dropped_fields: ["field2", "field4"] }
train { batch_size: 128 }
output { dir: "ffm_model" }
CFG
"$ctrps" train --config ffm.pbtxt >ffm.out 2>ffm.err || { tail ffm.err; fail "train libffm with dropped fields"; }
"$ctrps" compact-data --model ffm_model/model --in ffm.txt --out ffm_compact.txt >/dev/null 2>&1 || fail "compact libffm"
grep -q " 2:" ffm_compact.txt && fail "libffm tokens of field 2 remain"
"$ctrps" eval --model ffm_model/model --data ffm.txt >ffa.out 2>&1 || fail "eval libffm"
"$ctrps" eval --model ffm_model/model --data ffm_compact.txt >ffb.out 2>&1 || fail "eval compacted libffm"
[ "$(grep 'model AUC' ffa.out)" = "$(grep 'model AUC' ffb.out)" ] || fail "compacted libffm scores differently"

# Input selection alone: exactly fields_to_drop fields go, no neuron.
compress 0 input --set 'compression.stages[0].umec.input_only=true' \
  --set 'compression.stages[0].umec.fields_to_drop=3'
python3 - input/metrics.jsonl <<'PY' || fail "input selection"
import json, sys
r = [l for l in map(json.loads, open(sys.argv[1])) if l.get("event") == "compress_umec"][-1]
assert len(r["dropped_fields"].split()) == 3, r
assert r["mlp_dims"] == "24-16", r
PY

# The baselines at the same budget: each meets it.
for m in MAGNITUDE_PRUNING UNIFORM_THINNING GROUP_LASSO; do
  compress 0 "base_$m" --set "compression.stages[0].method=$m"
  python3 - "base_$m/metrics.jsonl" <<'PY' || fail "baseline $m misses the budget"
import json, sys
r = [l for l in map(json.loads, open(sys.argv[1])) if l.get("event") == "compress_umec"][-1]
assert r["resource"] <= r["budget"] + 1e-12, r
PY
done
grep -q "dropped_fields\":\"\"" base_UNIFORM_THINNING/metrics.jsonl || fail "uniform thinning dropped a field"

# kill -9 during the constrained training, then the same command resumes
# to the same bits.
ck=(--set checkpoint.every_steps=10 --set 'compression.stages[0].umec.train.max_steps=400'
    --set 'compression.stages[0].umec.train.epochs=6')
compress 0 ref --set checkpoint.dir="$tmp/ck_ref" "${ck[@]}"
"$ctrps" compress --config umec.pbtxt --from trained/model --set output.dir=killed \
  --set checkpoint.dir="$tmp/ck" "${ck[@]}" >killed1.out 2>killed1.err &
pid=$!
for _ in $(seq 1 3000); do
  ls "$tmp"/ck/stage-00-umec/ckpt-*/MANIFEST.pb >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
compress 0 killed --set checkpoint.dir="$tmp/ck" "${ck[@]}"
grep -q "UMEC training resumes from" killed.err || [ -f killed/stages/00-umec-0/model/MANIFEST ] ||
  fail "the rerun did not resume the UMEC training"
same_model ref killed

# Inside `ctrps train`: the saved model is the reduced one.
cat > train_umec.pbtxt <<CFG
$common
model { type: DEEPFM embedding_dim: 4 mlp_dims: [24, 16] }
output { dir: "trained_umec" }
CFG
"$ctrps" train --config train_umec.pbtxt --set train.umec.budget=0.4 --set train.umec.warmup_steps=20 \
  --set train.umec.lr=0.1 >tu.out 2>tu.err || { tail tu.err; fail "train with umec"; }
grep -q "UMEC removed" tu.err || fail "train with umec removed nothing"
grep -q '"event":"umec_removed"' trained_umec/metrics.jsonl || fail "no umec_removed metrics line"
"$ctrps" eval --model trained_umec/model --data data/test.txt \
  >eval2.out 2>eval2.err || { tail eval2.err; fail "eval of the model trained with umec"; }

# Bad budgets: refused before any work, naming the setting.
for b in 0 1.5 0.00001; do
  if "$ctrps" compress --config umec.pbtxt --from trained/model --set output.dir=bad \
       --set "compression.stages[0].umec.budget=$b" >bad.out 2>bad.err; then
    fail "budget $b was accepted"
  fi
  grep -q "compression.stages\[0\].*umec.budget" bad.err || { cat bad.err; fail "budget $b: no setting named"; }
done
[ ! -d bad/stages ] || fail "a refused plan did work"
"$ctrps" compress --config umec.pbtxt --from trained/model --set output.dir=bad \
  --set 'compression.stages[0].umec.input_only=true' --set 'compression.stages[0].umec.fields_to_drop=39' \
  >bad.out 2>bad.err && fail "fields_to_drop 39 was accepted"
grep -q "fields_to_drop" bad.err || { cat bad.err; fail "fields_to_drop: no setting named"; }
echo "umec: all checks passed"
