#!/usr/bin/env bash
# Checkpoints under real mpirun. kill -9 of a server or a worker at a random
# moment, then resume (the same layout, more servers, colocated, shards on
# disk): the final
# model is byte-identical to an uninterrupted run's. A damaged newest
# checkpoint is reported and the previous whole one used. ctrps ckpt
# list/inspect/verify; export and eval from a checkpoint equal those from
# the saved model; a checkpoint of another model is refused; admission and
# eviction resume exactly. A resume whose
# reader restore outlasts the peer timeout goes on (keep-alives).
# Usage: ckpt_resume.sh CTRPS TMPDIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
# train NP NAME [args...]: output NAME/, checkpoints NAME.ckpt/
train() {
  local np="$1" name="$2"; shift 2
  local cmd=("$ctrps" train --config job.pbtxt --set output.dir="$name"
             --set checkpoint.dir="$name.ckpt" "$@")
  [ "$np" -gt 0 ] && cmd=("${MPIRUN[@]}" -np "$np" "${cmd[@]}")
  "${cmd[@]}" >"$name.out" 2>"$name.err" || { tail -20 "$name.err"; fail "train $name (np $np $*)"; }
}
newest() { ls -d "$1"/ckpt-?????????? 2>/dev/null | tail -1; }

"$ctrps" gen-data --format criteo --rows 60000 --eval-rows 4000 --out data --seed 9 2>gen.log
cat > job.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" shuffle_buffer: 3000 }
model { type: DEEPFM embedding_dim: 8 mlp_dims: [32, 16] dropout: 0.1 }
train { batch_size: 128 epochs: 4 threads: 1 log_interval_s: 100
        sparse_optimizer { type: ADAGRAD learning_rate: 0.05 }
        dense_optimizer { learning_rate: 0.003 } }
checkpoint { every_steps: 40 full_every: 3 keep_last: 3 }
cluster { peer_timeout_ms: 20000 }
CFG

# Uninterrupted: 1 server + 2 workers, with checkpoints and without (taking
# checkpoints changes nothing).
train 3 ref
train 3 nock --set checkpoint.dir=
same_model ref nock
steps=$(awk '/^  steps/ {print $2}' ref.out)
echo "reference: $steps steps, $(ls -d ref.ckpt/ckpt-* | wc -l) checkpoints kept"

# kill -9 at a random moment after the first checkpoint, then resume.
# trial NAME RANK_TO_KILL RESUME_NP [resume args...]
killed=0
TRIAL_ARGS=()  # extra flags of both runs of a trial
TRIAL_REF=ref  # the uninterrupted run it must equal
trial() {
  local name="$1" rank="$2" np="$3"; shift 3
  "${MPIRUN[@]}" -np 3 "$ctrps" train --config job.pbtxt --set output.dir="$name" \
    --set checkpoint.dir="$name.ckpt" ${TRIAL_ARGS[@]+"${TRIAL_ARGS[@]}"} \
    >"$name.1.out" 2>"$name.1.err" &
  local mpid=$! pid="" i
  for i in $(seq 300); do
    [ -n "$(newest "$name.ckpt")" ] && pid=$(rank_pid $mpid "$rank") && [ -n "$pid" ] && break
    kill -0 $mpid 2>/dev/null || break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
  set +e
  local was_running=0
  if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then was_running=1; fi
  for i in $(seq 300); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
  kill -0 $mpid 2>/dev/null && { kill -9 $mpid; fail "$name: job still running 30 s after kill -9"; }
  wait $mpid; local rc=$?
  set -e
  if [ "$was_running" -eq 1 ] && [ "$rc" -ne 0 ]; then
    killed=$((killed + 1))
    echo "$name: killed rank $rank (-9) after $(basename "$(newest "$name.ckpt")"), job ended rc $rc"
  else
    echo "$name: training finished before the kill landed (rc $rc)"
  fi
  train "$np" "$name" ${TRIAL_ARGS[@]+"${TRIAL_ARGS[@]}"} "$@"
  if [ "$was_running" -eq 1 ]; then
    grep -q "resumed from ckpt-" "$name.err" || { tail "$name.err"; fail "$name: did not resume"; }
  fi
  same_model "$TRIAL_REF" "$name"
  echo "$name: resumed with np $np $*: $(grep -o 'resumed from ckpt-[0-9]*' "$name.err" || true) -> model identical"
}
trial kill_worker_a 2 3
trial kill_server_a 0 4 --servers 2
trial kill_worker_b 1 2 --set cluster.mode=COLOCATED
trial kill_server_b 0 3
# Shards on disk (tiered over RocksDB): the killed run's stores hold rows
# newer than the checkpoint; the resume drops them before loading.
TRIAL_ARGS=(--set storage.kind=TIERED --set storage.path=tiered.db --set storage.dram_budget_bytes=2097152)
trial kill_server_tiered 0 3
# Admission and eviction: their state (sketches, call counts, eviction
# schedule, per virtual shard) is in the checkpoints, so a killed run resumed
# on another layout admits and evicts the same keys as an uninterrupted one.
TRIAL_ARGS=(--set storage.admit_min_seen=2 --set storage.evict_unseen_steps=150
            --set storage.evict_every_steps=50 --set checkpoint.full_every=1)
train 3 ref_adm "${TRIAL_ARGS[@]}"
[ "$(cat ref_adm/model/*.bin | wc -c)" -lt "$(cat ref/model/*.bin | wc -c)" ] ||
  fail "admission/eviction did not shrink the model"
TRIAL_REF=ref_adm
trial kill_server_adm 0 4 --servers 2
TRIAL_ARGS=()
TRIAL_REF=ref
[ "$killed" -ge 3 ] || fail "only $killed of 6 kills landed mid-training: the job is too short here"

# ctrps ckpt list / inspect / verify.
"$ctrps" ckpt list ref.ckpt > list.txt
grep -q "incremental on ckpt-" list.txt || { cat list.txt; fail "ckpt list shows no incremental"; }
last=$(newest ref.ckpt)
"$ctrps" ckpt inspect "$last" --config > inspect.txt
for want in "model           DeepFM" "16 virtual shards, written by 2 worker(s) and 1 server(s)" \
            "dense params" "shard-0015.rows" "embedding_dim: 8"; do
  grep -qF "$want" inspect.txt || { cat inspect.txt; fail "ckpt inspect lacks '$want'"; }
done
"$ctrps" ckpt verify ref.ckpt > verify.txt || { cat verify.txt; fail "ckpt verify of a good dir"; }
grep -q "a resume would use $(basename "$last")" verify.txt || fail "verify does not name $last"

# A bit flip in the newest checkpoint: verify says so (exit 1), and a
# resume falls back to the previous whole checkpoint, saying so.
cp -r ref.ckpt bad.ckpt
shard="bad.ckpt/$(basename "$last")/shard-0003.rows"
printf '\x5a' | dd of="$shard" bs=1 seek=$(( $(stat -c %s "$shard") / 2 )) conv=notrunc 2>/dev/null
set +e; "$ctrps" ckpt verify bad.ckpt > badverify.txt; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "ckpt verify of a damaged checkpoint exited $rc"
grep -q "DAMAGED.*shard-0003.rows" badverify.txt || { cat badverify.txt; fail "verify does not name the shard"; }
train 3 bad
grep -q "falling back to ckpt-" bad.err || { tail bad.err; fail "no fallback message"; }
grep -q "checksum\|truncated" bad.err || fail "the fallback does not say what is wrong"

# Resuming onto changed training data is refused, saying what changed.
cp -r ref.ckpt chg.ckpt
head -n 50000 data/train.txt > short.txt
set +e
"${MPIRUN[@]}" -np 3 "$ctrps" train --config job.pbtxt --set output.dir=chg \
  --set checkpoint.dir=chg.ckpt --set data.train=short.txt >chg.out 2>chg.err
rc=$?; set -e
[ "$rc" -ne 0 ] || fail "a resume onto changed data was accepted"
grep -q "the training data changed since the checkpoint" chg.err || { tail chg.err; fail "no data-changed message"; }

# Export and eval straight from a checkpoint equal those from the model.
"$ctrps" export --checkpoint "$last" --out b_ckpt >/dev/null 2>exp1.err || { cat exp1.err; fail "export ckpt"; }
"$ctrps" export --checkpoint ref/model --out b_model >/dev/null 2>exp2.err || { cat exp2.err; fail "export model"; }
"$ctrps" predict --model b_ckpt --data data/test.txt --out p_ckpt.txt 2>/dev/null
"$ctrps" predict --model b_model --data data/test.txt --out p_model.txt 2>/dev/null
cmp -s p_ckpt.txt p_model.txt || fail "predictions of the checkpoint's and the model's bundles differ"
auc_of() { "$ctrps" eval --model "$1" --data data/test.txt 2>/dev/null | awk '/model AUC/ {print $3}'; }
[ "$(auc_of "$last")" = "$(auc_of ref/model)" ] || fail "eval on the checkpoint differs from eval on the model"
[ "$(auc_of b_ckpt)" = "$(auc_of "$last")" ] || fail "eval on the bundle differs from eval on its checkpoint"

# Asynchronous training checkpoints and resumes too (not bit for bit: ASP
# is not deterministic), from the step it stopped at.
train 3 asp --set cluster.consistency=ASP --set train.max_steps=300
train 3 asp --set cluster.consistency=ASP
grep -q "resumed from ckpt-0000000300" asp.err || { tail asp.err; fail "ASP did not resume"; }
grep -q "valid AUC" asp.out || fail "ASP resume did not finish"

# A checkpoint of another model is refused, naming what differs.
set +e
"${MPIRUN[@]}" -np 3 "$ctrps" train --config job.pbtxt --set output.dir=other \
  --set checkpoint.dir=ref.ckpt --set model.embedding_dim=16 >other.out 2>other.err
rc=$?; set -e
[ "$rc" -ne 0 ] || fail "a checkpoint of another model was accepted"
grep -q "table 0: the checkpoint's rows are\|dense parameter" other.err || { tail other.err; fail "no mismatch message"; }
# A resume deep inside a gzip input starts at the restart point saved with
# the reader position (not at the file's start, which took about 2 s here).
# The job's peer timeout is 1 s: the worker's keep-alives carry the server
# through whatever the restore takes.
mkdir -p gz
"$ctrps" gen-data --format criteo --rows 2500000 --eval-rows 0 --vocab-scale 0.01 --out gz/data \
  --seed 5 --quiet 2>>gen.log
gzip -1 gz/data/train.txt
cat > gz.pbtxt <<CFG
data { train: "gz/data/train.txt.gz" shuffle_buffer: 0 }
model { type: LR }
train { batch_size: 2048 threads: 1 max_steps: 1150 log_interval_s: 1000 }
checkpoint { dir: "gz.ckpt" at_end: true }
CFG
"${MPIRUN[@]}" -np 2 "$ctrps" train --config gz.pbtxt --set output.dir=gz.run1 >gz.1.out 2>gz.1.err \
  || { tail gz.1.err; fail "gzip run"; }
start=$SECONDS
"${MPIRUN[@]}" -np 2 "$ctrps" train --config gz.pbtxt --set output.dir=gz.run2 \
  --set train.max_steps=1160 --set cluster.peer_timeout_ms=1000 >gz.2.out 2>gz.2.err \
  || { tail gz.2.err; fail "a resume deep in a gzip input ended the job (peer timeout 1 s)"; }
grep -q "resumed from ckpt-0000001150" gz.2.err || fail "the gzip resume did not start from step 1150"
grep -q "resumed at uncompressed byte [0-9]* from a restart point" gz.2.err \
  || { grep -i "restart\|gzip" gz.2.err; fail "the gzip resume did not use its restart point"; }
echo "gzip resume past a 1 s peer timeout: $((SECONDS - start))s"
rm -rf gz

echo "ckpt_resume: all checks passed"
