# Shared by the mpirun integration tests (source it): mpirun flags, failing
# with a message, model comparison, and finding the pid of one rank.
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
fail() { echo "FAIL: $*" >&2; exit 1; }
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
