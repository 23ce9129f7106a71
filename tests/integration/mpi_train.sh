#!/usr/bin/env bash
# Distributed training under real mpirun: 1 server + 1 worker equals the
# single-process run bit for bit; 1 and 2 servers give identical models, on
# memory, RocksDB and tiered shards;
# 2 + 2 oversubscribed; colocated 2; ASP ends within 0.005 AUC of BSP;
# impossible layouts fail before training; a killed or silent rank ends the
# whole job with a message naming it, within the timeout.
# Usage: mpi_train.sh CTRPS TMPDIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
valid_auc() { awk '/valid AUC/ {print $3}' "$1"; }
train() {  # train NP OUTDIR [args...]: mpirun -np NP ctrps train (NP 0: no mpirun)
  local np="$1" out="$2"; shift 2
  local cmd=("$ctrps" train --config job.pbtxt --set output.dir="$out" "$@")
  [ "$np" -gt 0 ] && cmd=("${MPIRUN[@]}" -np "$np" "${cmd[@]}")
  "${cmd[@]}" >"$out.out" 2>"$out.err" || { tail -20 "$out.err"; fail "train $out (np $np $*)"; }
}

"$ctrps" gen-data --format criteo --rows 40000 --eval-rows 5000 --out data --seed 5 2>gen.log
cat > job.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" shuffle_buffer: 4000 }
model { type: DEEPFM embedding_dim: 8 mlp_dims: [32, 16] }
train { batch_size: 256 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.003 } dense_optimizer { learning_rate: 0.003 } }
cluster { peer_timeout_ms: 20000 }
CFG

# One worker: single process == 1 server + 1 worker == 2 servers + 1 worker.
train 0 single
train 2 s1w1
same_model single s1w1
train 3 s2w1 --servers 2
same_model single s2w1
grep -q "1 servers, 1 workers, 16 virtual shards, BSP" s1w1.err || fail "no cluster line in s1w1.err"

# Two workers: 1 server, 2 servers (2 + 2 oversubscribed) and colocated 2
# all give the same model.
train 3 s1w2
train 4 s2w2 --servers 2
same_model s1w2 s2w2
train 2 col2 --set cluster.mode=COLOCATED
same_model s1w2 col2
grep -q "(2 workers" s2w2.out || fail "the summary does not say 2 workers"

# ASP and SSP end close to BSP.
train 3 asp --set cluster.consistency=ASP
train 3 ssp --set cluster.consistency=SSP --set cluster.staleness=2
for m in asp ssp; do
  awk -v a="$(valid_auc $m.out)" -v b="$(valid_auc s1w2.out)" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.005 && b > 0.6) }' \
    || fail "$m AUC $(valid_auc $m.out) vs BSP $(valid_auc s1w2.out)"
done

# Servers on disk: RocksDB and tiered (a small DRAM tier, so rows spill)
# shards give the same model as the in-memory single process.
train 3 rocks2 --servers 2 --set storage.kind=ROCKSDB --set storage.path=rocks2.db
same_model single rocks2
train 3 tiered2 --servers 2 --set storage.kind=TIERED --set storage.path=tiered2.db \
  --set storage.dram_budget_bytes=2097152
same_model single tiered2
ls -d rocks2.db/shard-0000 rocks2.db/shard-0015 >/dev/null || fail "no per-shard RocksDB dirs"

# Admission and eviction run on the servers, with their state per virtual
# shard: the single process, 1 and 2 servers admit and evict the same keys,
# and the policies change the model (fewer rows than without them).
adm=(--set storage.admit_min_seen=3 --set storage.evict_unseen_steps=60 --set storage.evict_every_steps=40)
train 0 adm0 "${adm[@]}"
train 2 adm1 "${adm[@]}"
same_model adm0 adm1
train 3 adm2 --servers 2 "${adm[@]}"
same_model adm1 adm2
rows() { cat "$1"/model/*.bin | wc -c; }
[ "$(rows adm1)" -lt "$(rows s1w1)" ] || fail "admission/eviction did not shrink the model"
# The table counters in the summary are summed over the servers: the same
# rows, lookups and admission decisions with 1 and 2 servers.
counters() { grep -E "^  (embedding rows|admission) " "$1.out"; }
[ "$(counters adm1 | grep -c .)" -eq 2 ] || { cat adm1.out; fail "no table/admission counters"; }
[ "$(counters adm1)" = "$(counters adm2)" ] || { counters adm1; counters adm2; fail "counters differ"; }
[ "$(counters adm0)" = "$(counters adm1)" ] || { counters adm0; counters adm1; fail "counters differ"; }
grep -q '"event":"table".*"admitted":[1-9]' adm2/metrics.jsonl || fail "no table metrics line"

# Impossible layouts fail before training, with exit code 2 and the reason.
expect_layout_error() {  # expect_layout_error NP PATTERN ARGS...
  local np="$1" pattern="$2"; shift 2
  set +e; "${MPIRUN[@]}" -np "$np" "$ctrps" train --config job.pbtxt --set output.dir=bad "$@" \
    >bad.out 2>bad.err; local rc=$?; set -e
  [ "$rc" -ne 0 ] || fail "layout np $np $* was accepted"
  grep -q -- "$pattern" bad.err || { cat bad.err; fail "layout np $np $*: no '$pattern'"; }
  grep -q "training DeepFM" bad.err && fail "layout np $np $* started training"
  return 0
}
expect_layout_error 2 "at least one rank is left to train" --servers 2
expect_layout_error 3 "servers must be 0 or 3" --set cluster.mode=COLOCATED --servers 2
expect_layout_error 3 "only 1 virtual shards" --set storage.virtual_shards=1 --servers 2

# Uneven partitions (.gz files are not split): the epoch goes on while any
# worker has rows, the others joining with empty batches, so every row is
# trained. One .gz for two workers: worker 1 has none and joins every step.
gzip -c data/valid.txt > one.gz
train 3 onegz --set data.train=one.gz --set data.valid= --set data.test=
grep -q "samples          5000$" onegz.out || { cat onegz.out; fail "one .gz on 2 workers: not all 5000 rows trained"; }
grep -q "joins the rest of the epoch with empty batches" onegz.err || fail "onegz: no join message"
# Three .gz files of 1000 rows for two workers: 2000 and 1000 rows; the
# epoch is as long as the longer partition (8 steps of 256), not the shorter.
mkdir -p gz3
head -1000 data/valid.txt | gzip -c > gz3/a.gz
sed -n 1001,2000p data/valid.txt | gzip -c > gz3/b.gz
sed -n 2001,3000p data/valid.txt | gzip -c > gz3/c.gz
train 3 gz3run --set 'data.train=gz3/*.gz' --set data.valid= --set data.test= --set train.epochs=1
grep -q "steps            8$" gz3run.out || { cat gz3run.out; fail "uneven partitions: the epoch stopped early"; }
# Nothing anywhere: no step, an error rather than an untrained model.
: > empty.txt
set +e; "${MPIRUN[@]}" -np 3 "$ctrps" train --config job.pbtxt --set data.train=empty.txt \
  --set output.dir=nodata >nodata.out 2>nodata.err; rc=$?; set -e
[ "$rc" -ne 0 ] || fail "training on no rows exited 0"
grep -q "gave none of the 2 workers a valid row" nodata.err || { cat nodata.err; fail "nodata: no reason"; }

# A killed rank, and a silent (stopped) one: the whole job ends, in time,
# saying which rank. Long jobs (many epochs) so the signal lands mid-run.
failure_case() {  # failure_case NAME SIGNAL RANK TIMEOUT_MS MAX_S PATTERN
  local name="$1" sig="$2" rank="$3" timeout_ms="$4" max_s="$5" pattern="$6"
  "${MPIRUN[@]}" -np 3 "$ctrps" train --config job.pbtxt --set output.dir="$name" \
    --set train.epochs=1000 --set cluster.peer_timeout_ms="$timeout_ms" >"$name.out" 2>"$name.err" &
  local mpid=$! pid="" i
  for i in $(seq 100); do
    grep -q "eval valid" "$name.err" 2>/dev/null && pid=$(rank_pid $mpid "$rank") && [ -n "$pid" ] && break
    sleep 0.2
  done
  [ -n "$pid" ] || { kill $mpid; fail "$name: could not find rank $rank"; }
  local start=$SECONDS
  kill -"$sig" "$pid"
  set +e
  for i in $(seq $((max_s * 10))); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $mpid 2>/dev/null; then kill -KILL "$pid"; kill $mpid; fail "$name: job still running after ${max_s}s"; fi
  wait $mpid; local rc=$?
  set -e
  kill -KILL "$pid" 2>/dev/null || true
  [ "$rc" -ne 0 ] || fail "$name: job exited 0"
  grep -q -- "$pattern" "$name.err" || { tail -20 "$name.err"; fail "$name: no '$pattern' in the error"; }
  echo "$name: job ended in $((SECONDS - start))s (rc $rc)"
}
failure_case kill_worker KILL 2 20000 15 "rank 2"
failure_case stop_server STOP 0 2000 15 "for the pull reply from rank 0 (server 0)\|a push acknowledgement from rank 0 (server 0)"
echo "mpi_train: all checks passed"
