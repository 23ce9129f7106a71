#!/usr/bin/env bash
# End to end through the ctrps binary: gen-data, train, eval (with truth),
# the saved model's round trip, and the errors users see for bad configs,
# bad flags and bad data. Usage: cli_end_to_end.sh CTRPS TMPDIR SOURCE_DIR
set -euo pipefail
ctrps="$1"; tmp="$2"; src="$3"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_fail() {  # expect_fail CODE PATTERN CMD...: the command fails with CODE and says PATTERN
  local code="$1" pattern="$2"; shift 2
  set +e; "$@" >out.txt 2>err.txt; local rc=$?; set -e
  [ "$rc" -eq "$code" ] || { cat err.txt; fail "'$*' exited $rc, expected $code"; }
  grep -q -- "$pattern" err.txt || { cat err.txt; fail "'$*' did not say '$pattern'"; }
}

"$ctrps" --help | grep -q "gen-data" || fail "top-level help"
"$ctrps" train --help | grep -q -- "--config" || fail "train --help"

# Planted data; a second run with the same options is skipped.
"$ctrps" gen-data --format criteo --rows 60000 --eval-rows 10000 --out data --seed 3 2>gen.log
[ "$(wc -l < data/train.txt)" -eq 60000 ] || fail "gen-data wrote $(wc -l < data/train.txt) rows"
"$ctrps" gen-data --format criteo --rows 60000 --eval-rows 10000 --out data --seed 3 2>&1 | grep -qi "skip" \
  || fail "gen-data did not skip finished data"

cat > job.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 10000 }
model { type: DEEPFM embedding_dim: 8 mlp_dims: [64, 32] }
train { batch_size: 512 epochs: 2 threads: 1 log_interval_s: 1 }
output { dir: "run" }
CFG
"$ctrps" train --config job.pbtxt >train.out 2>train.err || { cat train.err; fail "train"; }
grep -q "test AUC" train.out || fail "no test AUC in the summary"
[ -f run/model/MANIFEST ] || fail "no saved model"
grep -q '"event":"train_done"' run/metrics.jsonl || fail "no train_done metrics line"
grep -q '"split":"valid"' run/metrics.jsonl || fail "no validation metrics line"
# Every line read once per epoch (the pass opened up front to check the inputs
# counts nothing).
# (The counts add up the epochs, and say so.)
grep -q "training data, 2 epochs, counted in each: 120000 lines" train.err || { grep "training data" train.err; fail "read counts"; }
grep -q "embedding rows" train.out || fail "no embedding table counters in the summary"
# A fresh run refuses a disk store an earlier run filled (and leaves it be);
# a small DRAM tier, so that rows reach the disk.
tiered=(--set storage.kind=TIERED --set storage.path=store.db --set storage.dram_budget_bytes=262144 --set train.max_steps=5
        --set data.valid= --set data.test= --set output.save_model=false)
"$ctrps" train --config job.pbtxt --set output.dir=t1 "${tiered[@]}" >t1.out 2>t1.err \
  || { cat t1.err; fail "tiered train"; }
# The summary reports the process's peak RSS against the DRAM budget.
grep -q "peak RSS .*x storage.dram_budget_bytes (256 KiB" t1.out || { cat t1.out; fail "no peak RSS in the summary"; }
grep -q '"event":"memory","peak_rss_bytes":[1-9]' t1/metrics.jsonl || fail "no memory metrics line"
expect_fail 1 "storage.path 'store.db' already holds" "$ctrps" train --config job.pbtxt \
  --set output.dir=t2 "${tiered[@]}"
[ -d store.db ] || fail "the refused run removed the store"
# A run killed during its first checkpoint leaves rows in its disk store and
# only ckpt-N.tmp in its checkpoint dir (here: a run that never committed
# one, and a .tmp made by hand): the same command run again starts fresh,
# dropping the rows its checkpoint dir records as its own.
killed=(--config job.pbtxt --set output.dir=t3 "${tiered[@]}" --set storage.path=store3.db
        --set checkpoint.dir=ck3 --set checkpoint.at_end=false)
"$ctrps" train "${killed[@]}" >t3.out 2>t3.err || { cat t3.err; fail "tiered train with checkpoints"; }
mkdir -p ck3/ckpt-0000000020.tmp
"$ctrps" train "${killed[@]}" --set checkpoint.at_end=true >t4.out 2>t4.err \
  || { cat t4.err; fail "the re-run of a job killed in its first checkpoint was refused"; }
grep -q "dropping them and starting fresh" t4.err || { cat t4.err; fail "no word on the dropped rows"; }
[ -d ck3/ckpt-0000000020.tmp ] && fail "the unfinished checkpoint was left behind"
"$ctrps" ckpt verify ck3 >v3.out || { cat v3.out; fail "ckpt verify after the re-run"; }
# Checkpoints that fail (here checkpoint.dir is a file, so none can be
# written) are counted in the summary and metrics; the final one failing
# fails the job (exit 1) after the model is saved.
: > notadir
expect_fail 1 "the final checkpoint failed" "$ctrps" train --config job.pbtxt --set output.dir=t5 \
  --set train.max_steps=5 --set data.valid= --set data.test= --set checkpoint.dir=notadir \
  --set checkpoint.every_steps=2
grep -q "checkpoints      0 written, 3 FAILED (the final one too)" out.txt || { cat out.txt; fail "no failed checkpoints in the summary"; }
grep -q '"checkpoints_written":0,"checkpoints_failed":3,"final_checkpoint_failed":true' t5/metrics.jsonl \
  || { grep train_done t5/metrics.jsonl; fail "no failed checkpoints in metrics.jsonl"; }
[ -f t5/model/MANIFEST ] || fail "the model was not saved when the final checkpoint failed"
# A committed checkpoint whose manifest is truncated, empty or missing is
# damaged (exit 1), not unfinished.
ck=$(ls -d ck3/ckpt-??????????)
for damage in truncate empty missing; do
  rm -rf ckd; cp -r ck3 ckd; m="ckd/$(basename "$ck")/MANIFEST.pb"
  case $damage in
    truncate) truncate -s -9 "$m" ;;
    empty) : > "$m" ;;
    missing) rm "$m" ;;
  esac
  set +e; "$ctrps" ckpt verify ckd >vd.out 2>&1; rc=$?; set -e
  [ "$rc" -eq 1 ] && grep -q "DAMAGED" vd.out || { cat vd.out; fail "ckpt verify of a $damage manifest: rc $rc"; }
  set +e; "$ctrps" ckpt verify "ckd/$(basename "$ck")" >vd.out 2>&1; rc=$?; set -e
  [ "$rc" -eq 1 ] && grep -q "DAMAGED" vd.out || { cat vd.out; fail "ckpt verify CKPT of a $damage manifest: rc $rc"; }
done
[ "$(grep -c '"event":"table"' run/metrics.jsonl)" -eq 39 ] || fail "not one table metrics line per field"

# predict takes a saved model too (exported to a temporary bundle), with
# the same scores as the bundle 'ctrps export' writes.
"$ctrps" export --checkpoint run/model --out run_bundle >/dev/null 2>exp.err || { cat exp.err; fail "export"; }
"$ctrps" predict --model run_bundle --data data/test.txt --out p_bundle.txt 2>/dev/null || fail "predict bundle"
"$ctrps" predict --model run/model --data data/test.txt --out p_dir.txt 2>pd.err || { cat pd.err; fail "predict on a saved model dir"; }
cmp -s p_bundle.txt p_dir.txt || fail "predict on the model dir differs from predict on its bundle"
expect_fail 1 "ctrps export --checkpoint MODEL --out BUNDLE" "$ctrps" predict --model data --data data/test.txt
# A run of very few steps says so.
grep -q "only .* training steps" t1.err && fail "a max_steps run warned about its few steps"
"$ctrps" train --config job.pbtxt --set output.dir=few --set data.train=data/valid.txt --set data.valid= \
  --set data.test= --set train.batch_size=8192 --set train.epochs=1 --set output.save_model=false >few.out 2>few.err \
  || { cat few.err; fail "few steps train"; }
grep -q "only 2 training steps" few.err || { cat few.err; fail "no warning about a run of 2 steps"; }

"$ctrps" eval --model run/model --data data/test.txt --truth data/test.txt.truth >eval.out 2>eval.err \
  || { cat eval.err; fail "eval"; }
cat eval.out
model_auc=$(awk '/model AUC/ {print $3}' eval.out)
bayes_auc=$(awk '/Bayes-optimal AUC/ {print $3}' eval.out)
train_test_auc=$(awk '/test AUC/ {print $3}' train.out)
# The saved model scores the test split exactly as the trained one did.
[ "$model_auc" = "$train_test_auc" ] || fail "eval AUC $model_auc != train's test AUC $train_test_auc"
awk -v m="$model_auc" -v b="$bayes_auc" 'BEGIN { exit !(m > 0.65 && b > m) }' \
  || fail "model AUC $model_auc should be > 0.65 and below Bayes $bayes_auc"

# Bad configs: the file, line and field are named; exit code 2.
printf 'data { train: "x" }\nmodel {\n  embeding_dim: 8\n}\n' > bad1.pbtxt
expect_fail 2 "bad1.pbtxt:3" "$ctrps" train --config bad1.pbtxt
printf 'data { train: "x" }\ntrain {\n  batch_size: 0\n}\n' > bad2.pbtxt
expect_fail 2 "bad2.pbtxt:3:3 (train.batch_size)" "$ctrps" train --config bad2.pbtxt
expect_fail 2 "missing required value" "$ctrps" train --config bad2.pbtxt --set data.train=
expect_fail 2 "unknown flag --nope" "$ctrps" train --config job.pbtxt --nope
expect_fail 2 "--set train.epochs" "$ctrps" train --config job.pbtxt --set train.epochs=-1
expect_fail 1 "no input files\|does not exist\|No such\|cannot" "$ctrps" train --config job.pbtxt --set data.train=missing.txt

# Bad data: lenient mode skips and reports; strict mode stops at file:line.
head -2000 data/train.txt > dirty.txt
printf '1\tabc\n' >> dirty.txt
head -1000 data/valid.txt >> dirty.txt
"$ctrps" train --config job.pbtxt --set data.train=dirty.txt --set data.valid= --set data.test= \
  --set output.dir=dirty >dirty.out 2>dirty.err || { cat dirty.err; fail "lenient train"; }
grep -q "wrong column count" dirty.err || { cat dirty.err; fail "lenient mode did not report the skipped line"; }
grep -q '"event":"train_done".*"lines_skipped":[1-9][0-9]*,"skipped_wrong_column_count":[1-9]' \
  dirty/metrics.jsonl || { grep train_done dirty/metrics.jsonl; fail "no skip counts in metrics.jsonl"; }
expect_fail 1 "dirty.txt:2001" "$ctrps" train --config job.pbtxt --set data.train=dirty.txt \
  --set data.strict=true --set output.dir=dirty2

# A bad line in the first batch is read (and logged) once, not again when
# training starts (the reader opened up front to check the inputs is kept).
{ printf 'garbage\n'; head -300 data/train.txt; } > badfirst.txt
"$ctrps" train --config job.pbtxt --set data.train=badfirst.txt --set data.valid= --set data.test= \
  --set train.epochs=1 --set data.shuffle_buffer=0 --set output.dir=badfirst >badfirst.out 2>badfirst.err || { cat badfirst.err; fail "badfirst"; }
[ "$(grep -c 'skipping malformed line.*badfirst.txt:1:' badfirst.err)" -eq 1 ] ||
  { cat badfirst.err; fail "the first batch's bad line was not logged exactly once"; }

# Inputs without a valid row: a training run that takes no step fails (no
# model is saved); an empty validation or test input fails before training.
: > empty.txt
expect_fail 1 "no training step was taken: data.train 'empty.txt' has no valid rows" "$ctrps" train \
  --config job.pbtxt --set data.train=empty.txt --set output.dir=empty1
[ -d empty1/model ] && fail "a run without a training step saved a model"
for split in valid test; do
  expect_fail 1 "data.$split 'empty.txt' has no valid rows" "$ctrps" train --config job.pbtxt \
    --set data.$split=empty.txt --set output.dir=empty_$split
  grep -q "epoch 1 done" err.txt && fail "an empty data.$split was found only after training"
done
# A UTF-8 byte order mark (Windows tools) does not cost the first row.
{ printf '\xef\xbb\xbf'; head -300 data/train.txt; } > bom.txt
"$ctrps" train --config job.pbtxt --set data.train=bom.txt --set data.valid= --set data.test= \
  --set data.strict=true --set output.dir=bom >bom.out 2>bom.err || { cat bom.err; fail "BOM train"; }
grep -qE "training data, 2 epochs, counted in each: ([0-9]+) lines .*: \1 rows, 0 headers, 0 skipped" bom.err || { grep "training data" bom.err; fail "BOM row lost"; }

# Every shipped config at least loads, validates and builds its model for one step.
for cfg in "$src"/configs/*.pbtxt; do
  name=$(basename "$cfg" .pbtxt)
  "$ctrps" train --config "$cfg" --set data.train=data/valid.txt --set data.valid= --set data.test= \
    --set data.format=CRITEO --set train.max_steps=2 --set train.batch_size=256 \
    --set output.dir=cfg_$name --set output.save_model=false >/dev/null 2>cfg.err \
    || { cat cfg.err; fail "config $name"; }
done
echo "cli_end_to_end: all checks passed"
