#!/usr/bin/env bash
# `ctrps report` end to end, checked in headless Chromium: a tiny training
# run (validation, checkpoints), a distributed one (1 server + 2 workers:
# the per-worker split, the slowest rank named), a tiny compression run, and
# UMEC and DeepLight stages (their resource/multiplier/sparsity charts);
# their reports load with no console error and their charts hold the runs'
# metrics (tests/integration/report_check.py reads what each chart drew back
# from the rendered DOM). Screenshots stay in TMPDIR/*.png for a person.
# Also: the progress lines of eval and predict (a bar on a terminal, a log
# line otherwise), and the errors of `ctrps report`.
# Usage: report.sh CTRPS TMPDIR. Exits 77 (skipped) when no Chromium is
# installed (launch/deps.sh installs Debian's `chromium`).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"

browser="${CTRPS_CHROMIUM:-}"
if [ -z "$browser" ]; then
  for b in chromium chromium-browser google-chrome; do
    command -v "$b" >/dev/null 2>&1 && { browser="$b"; break; }
  done
fi
if [ -z "$browser" ]; then
  echo "SKIP: no headless Chromium (chromium, chromium-browser or google-chrome) on PATH;" \
       "bash launch/deps.sh installs Debian's chromium (or set CTRPS_CHROMIUM)"
  exit 77
fi

"$ctrps" gen-data --format criteo --rows 20000 --eval-rows 3000 --out data --seed 5 >gen.out 2>gen.log
cat > train.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 4000 }
model { type: DEEPFM embedding_dim: 4 mlp_dims: [16, 8] }
train { batch_size: 64 threads: 1 log_interval_s: 100 eval_every_steps: 100
        sparse_optimizer { learning_rate: 0.003 } dense_optimizer { learning_rate: 0.003 } }
checkpoint { dir: "ckpt" every_steps: 100 }
cluster { peer_timeout_ms: 20000 }
output { dir: "trained" }
CFG
"$ctrps" train --config train.pbtxt >train.out 2>train.err || { tail train.err; fail "train"; }
grep -q "report           ctrps report trained --out trained/report.html" train.out ||
  { cat train.out; fail "train did not print its report command"; }

# 1 server + 2 workers: the per-worker split, the slowest rank named.
"${MPIRUN[@]}" -np 3 "$ctrps" train --config train.pbtxt --servers 1 --set output.dir=dist \
  --set checkpoint.dir= --set train.max_steps=150 >dist.out 2>dist.err ||
  { tail -20 dist.err; fail "distributed train"; }
grep -q "per worker       ms per step" dist.out || { cat dist.out; fail "no per-worker split"; }
grep -Eq "worker [01] \(rank [12]\).*<- slowest: rank [12], own work" dist.out ||
  { cat dist.out; fail "the slowest rank is not named"; }
[ "$(grep -c '"event":"worker_split"' dist/metrics.jsonl)" -eq 2 ] || fail "not 2 worker_split lines"
[ "$(grep -c '"slowest":true' dist/metrics.jsonl)" -eq 1 ] || fail "not exactly one slowest worker"

cat > afm.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" test: "data/test.txt" shuffle_buffer: 4000 }
train { batch_size: 64 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.002 } dense_optimizer { learning_rate: 0.002 } }
compression {
  stages { method: AFM name: "afm" afm { layers { layer: "mlp.1" rank { rank: 4 } } embeddings { rank: 2 } }
           fine_tune { epochs: 1 max_steps: 200 eval_every_steps: 100 } }
}
output { dir: "compressed" }
CFG
"$ctrps" compress --config afm.pbtxt --from trained/model --serving-cost >compress.out 2>compress.err ||
  { tail compress.err; fail "compress"; }
grep -q "report   ctrps report compressed --out compressed/report.html" compress.out ||
  { cat compress.out; fail "compress did not print its report command"; }
grep -q "\[uncompressed\] test .*rows/s.*took" compress.err ||
  { cat compress.err; fail "compress showed no progress of its evaluations"; }

# UMEC and DeepLight stages: their own sections (charts and tables).
sed -e 's|method: AFM name: "afm" afm { layers { layer: "mlp.1" rank { rank: 4 } } embeddings { rank: 2 } }|method: UMEC name: "umec" umec { budget: 0.5 log_every_steps: 10 train { epochs: 1 max_steps: 60 } }|' \
    -e 's|dir: "compressed"|dir: "umec"|' afm.pbtxt > umec.pbtxt
sed -e 's|method: AFM name: "afm" afm { layers { layer: "mlp.1" rank { rank: 4 } } embeddings { rank: 2 } }|method: DEEPLIGHT name: "deeplight" deeplight { mlp_sparsity: 0.9 pair_ratio: 0 embedding_ratio: 0.444 every_steps: 10 damping_steps: 4 }|' \
    -e 's|dir: "compressed"|dir: "dl"|' afm.pbtxt > dl.pbtxt
grep -q UMEC umec.pbtxt && grep -q DEEPLIGHT dl.pbtxt || fail "the UMEC/DeepLight configs were not made"
"$ctrps" compress --config umec.pbtxt --from trained/model >umec.out 2>umec.err || { tail umec.err; fail "compress UMEC"; }
"$ctrps" compress --config dl.pbtxt --from trained/model >dl.out 2>dl.err || { tail dl.err; fail "compress DeepLight"; }
"$ctrps" report umec dl --out slim.html >/dev/null || fail "report of the UMEC and DeepLight runs"

"$ctrps" report trained --out trained/report.html >report1.out || fail "report of the training run"
"$ctrps" report dist --out dist.html >/dev/null || fail "report of the distributed run"
"$ctrps" report compressed trained --out both.html >/dev/null || fail "report of both runs"

# browse PAGE NAME: the DOM after the page's scripts ran, and a screenshot.
browse() {
  local page="$1" name="$2"
  local flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/chrome-$name"
               --enable-logging=stderr --v=0)
  timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$tmp/$page" >"$name.dom.html" 2>"$name.chrome.log" ||
    { tail "$name.chrome.log"; fail "$browser could not load $page"; }
  if grep -q ":CONSOLE" "$name.chrome.log"; then
    grep ":CONSOLE" "$name.chrome.log"; fail "$page logged to the console"
  fi
  timeout 120 "$browser" "${flags[@]}" --window-size=1400,4600 --screenshot="$tmp/$name.png" \
    "file://$tmp/$page" >/dev/null 2>&1 || fail "no screenshot of $page"
  [ -s "$name.png" ] || fail "empty screenshot of $page"
}
browse trained/report.html train
python3 "$here/report_check.py" train.dom.html loss_step loss_time auc_step auc_time logloss_step \
  logloss_time throughput split -- trained
grep -q 'id="checkpoints"' train.dom.html || fail "no checkpoints table"
grep -q 'id="embedding-tables"' train.dom.html || fail "no embedding tables table"
browse dist.html dist
python3 "$here/report_check.py" dist.dom.html loss_step split worker_split -- dist
grep -q "— slowest" dist.dom.html || fail "the report does not name the slowest worker"
browse both.html both
grep -q "bundle bytes  row p50 us" compress.out || { cat compress.out; fail "no serving cost in the before/after table"; }
[ "$(grep -c '"event":"compress_model".*"bundle_bytes":[1-9][0-9]*,"row_p50_us":[0-9]' compressed/metrics.jsonl)" -eq 3 ] ||
  fail "not 3 compress_model lines with bundle_bytes and row_p50_us"
[ ! -e compressed/serving-bundle ] || fail "the timed bundle was left behind"
python3 "$here/report_check.py" both.dom.html loss_step auc_step split tradeoff_bytes tradeoff_latency -- compressed trained
grep -q 'class="before-after"' both.dom.html || fail "no before/after table"
grep -q "<td>[0-9.]*x fewer</td>" both.dom.html || fail "no compression ratio in the before/after table"
grep -q 'id="chart-umec_resource"\|id="chart-deeplight_sparsity"' both.dom.html && fail "UMEC/DeepLight sections on a page without their runs"
browse slim.html slim
python3 "$here/report_check.py" slim.dom.html umec_resource umec_dropped umec_duals deeplight_sparsity \
  tradeoff_bytes -- umec dl
grep -q 'id="umec-selection"' slim.dom.html || fail "no UMEC selection table"
grep -q 'id="deeplight-prune"' slim.dom.html || fail "no DeepLight pruning table"

# Progress: log lines when stderr is not a terminal, a bar with rate and ETA on one.
"$ctrps" eval --model trained/model --data data/test.txt >eval.out 2>eval.err || fail "eval"
grep -q "eval 100.0% .* rows .*took" eval.err || { cat eval.err; fail "eval logged no progress line"; }
"$ctrps" export --checkpoint trained/model --out bundle >/dev/null 2>&1 || fail "export"
"$ctrps" predict --model bundle --data data/test.txt --out scores.txt 2>predict.err || fail "predict"
grep -q "predict 100.0% .* rows .*took" predict.err || { cat predict.err; fail "predict logged no progress line"; }
if command -v script >/dev/null 2>&1; then
  script -qec "'$ctrps' predict --model bundle --data data/test.txt --out scores_tty.txt" /dev/null >tty.log ||
    fail "predict on a terminal"
  grep -q $'\r.*predict \\[#*\\] 100.0%' tty.log || { cat -v tty.log; fail "no progress bar on a terminal"; }
fi

# The report's own errors name what is wrong.
expect_error() {  # expect_error CODE PATTERN ARGS...
  local code="$1" pattern="$2"; shift 2
  set +e; "$ctrps" report "$@" >err.out 2>err.txt; local rc=$?; set -e
  [ "$rc" -eq "$code" ] || { cat err.txt; fail "report $* exited $rc, expected $code"; }
  grep -q -- "$pattern" err.txt || { cat err.txt; fail "report $* did not say '$pattern'"; }
}
expect_error 2 "--out FILE is required" trained
expect_error 2 "give at least one run directory" --out x.html
expect_error 1 "nope: no such run directory" nope --out x.html
expect_error 1 "data holds no metrics.jsonl" data --out x.html
mkdir -p bad && { head -2 trained/metrics.jsonl; echo '{"event":"train","step":}'; tail -1 trained/metrics.jsonl; } > bad/metrics.jsonl
expect_error 1 "bad/metrics.jsonl:3: column 25: expected a number" bad --out x.html
[ ! -e x.html ] || fail "a failed report left a page"
echo "report: OK (screenshots: $tmp/train.png $tmp/dist.png $tmp/both.png $tmp/slim.png)"
