#!/usr/bin/env bash
# ctrps compact-data's refusals: a model that drops no field, a dropped
# field the data format has not, and a line over 1 MiB each fail with a
# message naming what is wrong (the field and the format's fields; the
# file and line), exit 1, and leave neither OUT nor OUT.tmp behind; a
# good run after them still works.
# Usage: compact_data.sh CTRPS TMPDIR
set -euo pipefail
ctrps="$1"; tmp="$2"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$ctrps" gen-data --format criteo --rows 200 --eval-rows 0 --out data --seed 3 --vocab-scale 0.001 --quiet
config() {  # config NAME DROPPED_FIELDS_LIST
  printf 'data { format: CRITEO train: "unused" }\nmodel { dropped_fields: [%s] }\n' "$2" > "$1.pbtxt"
}
refused() {  # refused NAME IN EXPECTED_MESSAGE: compact-data fails with that message, writes nothing
  local name="$1" in="$2" want="$3" rc=0
  "$ctrps" compact-data --config "$name.pbtxt" --in "$in" --out "$name.out.txt" >"$name.stdout" 2>"$name.err" || rc=$?
  [ "$rc" -eq 1 ] || fail "$name: exit $rc, expected 1 ($(cat "$name.err"))"
  grep -qF -- "$want" "$name.err" || fail "$name: the message '$(cat "$name.err")' lacks '$want'"
  [ ! -e "$name.out.txt" ] && [ ! -e "$name.out.txt.tmp" ] || fail "$name: left an output file"
}

config none ''
refused none data/train.txt "the model drops no field (model.dropped_fields is empty): nothing to compact"

config unknown '"C8", "C99"'
refused unknown data/train.txt "model.dropped_fields names 'C99', which criteo data has not (its fields: I1 I2"
grep -qF "C25 C26)" unknown.err || fail "unknown: the message does not list the format's fields"

config long '"C8"'
head -3 data/train.txt > long.txt
python3 -c "import sys; sys.stdout.write('1\t' + 'x' * (1 << 20) + '\n')" >> long.txt
head -2 data/train.txt >> long.txt
refused long long.txt "long.txt:4: a line longer than 1 MiB"

# The same config on good data works and blanks C8.
"$ctrps" compact-data --config long.pbtxt --in data/train.txt --out good.txt >good.out 2>good.err ||
  { cat good.err; fail "compact-data on good data"; }
[ "$(wc -l < good.txt)" -eq "$(wc -l < data/train.txt)" ] || fail "good: lines lost"
[ -z "$(cut -f 22 good.txt | sort -u)" ] || fail "good: C8 (column 22) not blanked"
echo "compact_data: OK"
