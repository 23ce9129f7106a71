#!/usr/bin/env bash
# `ctrps compress` end to end with real files and real mpirun: AFM (and the
# weight-SVD baseline) on a trained DeepFM gives the same model bit for bit
# single-process, on 1 server + 1 worker and on 2 servers + 1 worker; on a
# TIERED store; a kill -9 during fine-tuning resumes to the same bits; the
# output is accepted by eval, export, predict and train --resume; bad plans
# are refused before any work, naming the setting.
# Usage: compress.sh CTRPS TMPDIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"

"$ctrps" gen-data --format criteo --rows 30000 --eval-rows 4000 --out data --seed 11 2>gen.log
cat > train.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 4000 }
model { type: DEEPFM embedding_dim: 8 mlp_dims: [32, 32, 16] }
train { batch_size: 256 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.003 } dense_optimizer { learning_rate: 0.003 } }
cluster { peer_timeout_ms: 20000 }
output { dir: "trained" }
CFG
"$ctrps" train --config train.pbtxt >train.out 2>train.err || { tail train.err; fail "train"; }

cat > afm.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 4000 }
train { batch_size: 256 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.002 } dense_optimizer { learning_rate: 0.002 } }
cluster { peer_timeout_ms: 20000 }
compression {
  stages {
    method: AFM
    afm { layers { layer: "mlp.1" rank { rank: 8 } }
          layers { layer: "mlp.2" rank { variance: 0.95 } relu: true }
          embeddings { rank: 3 } fields { field: "C1" rank { rank: 2 } } }
    fine_tune { epochs: 1 max_steps: 40 }
  }
}
CFG
COMPRESS_CONFIG=afm.pbtxt COMPRESS_FROM=trained/model  # for compress (mpi_lib.sh)

# Single process == 1 server + 1 worker == 2 servers + 1 worker, bit for bit.
compress 0 single
grep -q "compression: .*x fewer bytes" single.out || { cat single.out; fail "no before/after table"; }
grep -q '"event":"compress_rank"' single/metrics.jsonl || fail "no rank metrics"
grep -q "mlp.2: width 16 -> rank" single.err || fail "no rank line for mlp.2"
compress 2 s1w1
same_model single s1w1
compress 3 s2w1 --servers 2
same_model single s2w1
# Disk-backed tables: TIERED with a tiny DRAM tier gives the same bits.
compress 0 tiered --set storage.kind=TIERED --set storage.path="$tmp/tiered_store" \
  --set storage.dram_budget_bytes=65536
same_model single tiered

# Bounded memory: tables 4x larger than the TIERED DRAM budget compress with
# a peak RSS well below the same compression with every row in memory
# (embedding dim 256: rows of 257 floats and 515 Adam slots, about 290 MB in
# all, against RocksDB's fixed overhead of about 120 MB for 16 shards).
sed 's/embedding_dim: 8/embedding_dim: 256/; s/dir: "trained"/dir: "wide"/' train.pbtxt > wide.pbtxt
"$ctrps" train --config wide.pbtxt >wide.out 2>wide.err || { tail wide.err; fail "train wide"; }
rows=$(python3 -c "import json,sys; print(sum(j['rows'] for j in map(json.loads, open(sys.argv[1])) if j.get('event') == 'table'))" wide/metrics.jsonl)
table_bytes=$((rows * (257 + 515) * 4))
wide_set=(--set 'compression.stages[0].afm.embeddings.rank=8' --set 'compression.stages[0].fine_tune.max_steps=5')
"$ctrps" compress --config afm.pbtxt --from wide/model --set output.dir=wide_mem "${wide_set[@]}" \
  >wide_mem.out 2>wide_mem.err || { tail wide_mem.err; fail "compress wide in memory"; }
"$ctrps" compress --config afm.pbtxt --from wide/model --set output.dir=wide_tiered "${wide_set[@]}" \
  --set storage.kind=TIERED --set storage.path="$tmp/wide_store" \
  --set storage.dram_budget_bytes=$((table_bytes / 4)) >wide_tiered.out 2>wide_tiered.err ||
  { tail wide_tiered.err; fail "compress wide tiered"; }
same_model wide_mem wide_tiered
peak() { grep -o '"peak_rss_bytes":[0-9]*' "$1/metrics.jsonl" | tail -1 | cut -d: -f2; }
mem=$(peak wide_mem); tiered=$(peak wide_tiered)
echo "wide table: $rows rows, $table_bytes bytes; peak RSS in memory $mem, tiered (budget $((table_bytes / 4))) $tiered"
[ $((tiered + table_bytes / 3)) -lt "$mem" ] ||
  fail "tiered compression is not bounded: peak RSS $tiered vs $mem in memory, table $table_bytes bytes"

# The weight-SVD baseline (table Gram matrices summed exactly wherever the
# rows live) is layout-independent too.
sed 's/method: AFM/method: WEIGHT_SVD/; s/variance: 0.95/rank: 8/' afm.pbtxt > svd.pbtxt
"$ctrps" compress --config svd.pbtxt --from trained/model --set output.dir=svd0 >svd0.out 2>svd0.err ||
  { tail svd0.err; fail "svd single"; }
"${MPIRUN[@]}" -np 3 "$ctrps" compress --config svd.pbtxt --from trained/model --servers 2 \
  --set output.dir=svd2 >svd2.out 2>svd2.err || { tail svd2.err; fail "svd 2 servers"; }
same_model svd0 svd2

# The output is a model every command takes.
"$ctrps" eval --model single/model --data data/test.txt >eval.out 2>eval.err || { tail eval.err; fail "eval"; }
grep -q "AUC" eval.out || fail "eval printed no AUC"
"$ctrps" export --checkpoint single/model --out bundle >export.out 2>&1 || { tail export.out; fail "export"; }
"$ctrps" predict --model bundle --data data/test.txt --out scores.txt >predict.out 2>&1 ||
  { tail predict.out; fail "predict"; }
[ "$(wc -l < scores.txt)" -eq "$(wc -l < data/test.txt)" ] || fail "predict wrote the wrong number of scores"
"$ctrps" train --config single/model/config.pbtxt --set output.dir=more --set train.max_steps=5 \
  --set data.train=data/train.txt >more.out 2>more.err || { tail more.err; fail "train on the compressed config"; }
grep -q "compressed_fields" single/model/config.pbtxt || fail "the saved config has no compressed structure"

# kill -9 during fine-tuning (after its first whole checkpoint), then the
# same command resumes to the same bits.
ck=(--set checkpoint.every_steps=10 --set 'compression.stages[0].fine_tune.max_steps=400'
    --set 'compression.stages[0].fine_tune.epochs=4')
compress 0 ref --set checkpoint.dir="$tmp/ck_ref" "${ck[@]}"
"$ctrps" compress --config afm.pbtxt --from trained/model --set output.dir=killed \
  --set checkpoint.dir="$tmp/ck" "${ck[@]}" >killed1.out 2>killed1.err &
pid=$!
for _ in $(seq 1 3000); do
  ls "$tmp"/ck/stage-00/ckpt-*/MANIFEST.pb >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ -f killed/stages/00-afm-0/model/MANIFEST ] && echo "note: the run finished before the kill"
compress 0 killed --set checkpoint.dir="$tmp/ck" "${ck[@]}"
grep -q "fine-tuning resumes from" killed.err || [ -f killed/stages/00-afm-0/model/MANIFEST ] ||
  fail "the rerun did not resume the fine-tuning"
same_model ref killed
# A kill between a checkpoint's manifest write and its rename leaves only
# ckpt-N.tmp (with a manifest): the rerun starts the fine-tuning afresh.
mkdir -p "$tmp/ck_tmp/stage-00/ckpt-0000000010.tmp"
cp "$(ls "$tmp"/ck_ref/stage-00/ckpt-*/MANIFEST.pb | head -1)" "$tmp/ck_tmp/stage-00/ckpt-0000000010.tmp/"
compress 0 tmp_only --set checkpoint.dir="$tmp/ck_tmp"
grep -q "ckpt-0000000010.tmp: an unfinished checkpoint (never committed), removed" tmp_only.err ||
  { cat tmp_only.err; fail "the unfinished checkpoint was not removed"; }
same_model single tmp_only

# Two workers (the statistics summed over workers in worker order): 1 and 2
# servers give the same model.
compress 3 s1w2 --servers 1
compress 4 s2w2 --servers 2
same_model s1w2 s2w2

# Resharding a compression: 2 servers killed (kill -9 of a server) after a
# fine-tuning checkpoint of the rewritten tables, resumed on 1 server: the
# same bits as the uninterrupted run.
"${MPIRUN[@]}" -np 3 "$ctrps" compress --config afm.pbtxt --from trained/model --servers 2 \
  --set output.dir=reshard --set checkpoint.dir="$tmp/ck_reshard" "${ck[@]}" \
  >reshard1.out 2>reshard1.err &
mpid=$!
pid=""
for _ in $(seq 1 3000); do
  ls "$tmp"/ck_reshard/stage-00/ckpt-*/MANIFEST.pb >/dev/null 2>&1 && pid=$(rank_pid $mpid 0) && [ -n "$pid" ] && break
  kill -0 $mpid 2>/dev/null || break
  sleep 0.01
done
[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
wait $mpid 2>/dev/null || true
compress 2 reshard --servers 1 --set checkpoint.dir="$tmp/ck_reshard" "${ck[@]}"
same_model ref reshard

# Bad plans: refused before any work, naming the setting.
bad() {  # bad EXPECTED_TEXT --set ...: exit 2 and the message
  local want="$1"; shift
  set +e
  "$ctrps" compress --config afm.pbtxt --from trained/model --set output.dir=bad "$@" >bad.out 2>bad.err
  local rc=$?
  set -e
  [ $rc -eq 2 ] || { cat bad.err; fail "bad plan ($*) exited $rc"; }
  grep -q "$want" bad.err || { cat bad.err; fail "bad plan ($*): message lacks '$want'"; }
  [ ! -d bad/stages ] || fail "bad plan ($*) did work"
}
bad "is larger than the layer's output width (32)" --set 'compression.stages[0].afm.layers[0].rank.rank=40'
bad "has no layer 'mlp.9'" --set 'compression.stages[0].afm.layers[0].layer=mlp.9'
bad "is larger than the embedding dim (8)" --set 'compression.stages[0].afm.embeddings.rank=9'
bad "unknown field 'C99'" --set 'compression.stages[0].afm.fields[0].field=C99'
cat > lr.pbtxt <<CFG
data { train: "data/train.txt" }
model { type: LR }
train { batch_size: 256 max_steps: 3 }
output { dir: "lr" }
CFG
"$ctrps" train --config lr.pbtxt >lr.out 2>lr.err || fail "train LR"
set +e
"$ctrps" compress --config afm.pbtxt --from lr/model --set output.dir=bad >bad.out 2>bad.err
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "LR has no layer 'mlp.1'" bad.err || { cat bad.err; fail "LR plan not refused ($rc)"; }
echo "compress: all checks passed"
