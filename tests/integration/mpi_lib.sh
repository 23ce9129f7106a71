# Shared by the mpirun integration tests (source it): mpirun flags, failing
# with a message, running ctrps on NP ranks or in one process, running a
# compression job, model comparison, and finding the pid of one rank.
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
fail() { echo "FAIL: $*" >&2; exit 1; }
# ctrps_np NP OUTDIR CMD...: (mpirun -np NP) $ctrps CMD --set output.dir=OUTDIR
# (NP 0: no mpirun), its output in OUTDIR.out and OUTDIR.err; fails with the
# log's tail. The caller sets ctrps.
ctrps_np() {
  local np="$1" out="$2"; shift 2
  local cmd=("$ctrps" "$@" --set output.dir="$out")
  [ "$np" -gt 0 ] && cmd=("${MPIRUN[@]}" -np "$np" "${cmd[@]}")
  "${cmd[@]}" >"$out.out" 2>"$out.err" || { tail -20 "$out.err"; fail "$out (np $np $*)"; }
}
# compress NP OUTDIR [args...]: ctrps_np NP OUTDIR compress --config
# $COMPRESS_CONFIG --from $COMPRESS_FROM args (the caller sets both).
compress() {
  local np="$1" out="$2"; shift 2
  ctrps_np "$np" "$out" compress --config "$COMPRESS_CONFIG" --from "$COMPRESS_FROM" "$@"
}
same_model() {  # same_model DIR_A DIR_B: every model file byte-identical
  local f
  for f in "$1"/model/MANIFEST "$1"/model/*.bin; do
    cmp -s "$f" "$2/model/$(basename "$f")" || fail "$1 and $2 differ in $(basename "$f")"
  done
}
rank_pid() {  # rank_pid MPIRUN_PID RANK: the pid of that rank's process
  local p
  for p in $(pgrep -P "$1"); do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
