#!/usr/bin/env bash
# launch/slurm.sh without a Slurm controller: the scripts parse (bash -n),
# --dry-run prints an sbatch script with the right counts and the
# placement (servers on the server nodes, workers dealt over the worker
# nodes, rank order as launch/cluster.cc assigns roles) and the srun or
# mpirun line; bad settings are refused naming the option; and the job
# script itself, given this host as its allocation, starts a real
# 1 server + 2 workers training job through mpirun's sequential mapper.
# Usage: slurm.sh CTRPS TMPDIR SOURCE_DIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lib.sh"
ctrps="$1"; tmp="$2"; src="$3"
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
slurm="$src/launch/slurm.sh"

bash -n "$slurm" || fail "launch/slurm.sh does not parse"
bash -n "$src/launch/slurm/ctrps_job.sh" || fail "launch/slurm/ctrps_job.sh does not parse"
"$slurm" --help | grep -q -- "--server-nodes" || fail "--help"

# 2 servers on 1 node, 4 workers over 2 nodes, srun.
"$slurm" --servers 2 --workers 4 --worker-nodes 2 --cpus-per-task 4 --time 2:00:00 \
  --partition batch --ctrps "$ctrps" --script job.sbatch --dry-run -- \
  train --config "my job.pbtxt" --set 'train.threads=4' >dry.txt 2>&1 || { cat dry.txt; fail "dry run"; }
bash -n job.sbatch || fail "the job script does not parse"
for line in "#SBATCH --nodes=3" "#SBATCH --ntasks-per-node=2" "#SBATCH --cpus-per-task=4" \
            "#SBATCH --time=2:00:00" "#SBATCH --partition=batch" "#SBATCH --job-name=ctrps-train"; do
  grep -qx -- "$line" job.sbatch || { cat job.sbatch; fail "no '$line' in the job script"; }
done
expect_lines() {  # expect_lines FILE LINE...: each line present, in this order
  local file="$1"; shift
  local got
  got="$(grep -F -x -f <(printf '%s\n' "$@") "$file")"
  [ "$got" = "$(printf '%s\n' "$@")" ] || { cat "$file"; fail "expected, in order: $*"; }
}
expect_lines dry.txt "# rank 0: server 0 on node1" "# rank 1: server 1 on node1" \
  "# rank 2: worker 0 on node2" "# rank 3: worker 1 on node3" "# rank 4: worker 2 on node2" \
  "# rank 5: worker 3 on node3"
grep -qF "# srun --mpi=pmix --distribution=arbitrary --ntasks=6 --cpus-per-task=4 $ctrps train --config my\\ job.pbtxt --set train.threads=4 --servers 2" dry.txt ||
  { grep srun dry.txt; fail "wrong srun line"; }
[ "$(cat job.sbatch.hosts | tr '\n' ' ')" = "node1 node1 node2 node3 node2 node3 " ] || fail "wrong host file"

# Servers sharing the worker nodes; mpirun; colocated.
"$slurm" --servers 2 --workers 2 --server-nodes 0 --launcher mpirun --ctrps "$ctrps" \
  --script shared.sbatch --dry-run -- compress --config c.pbtxt --from m >shared.txt 2>&1 || { cat shared.txt; fail "dry run (shared)"; }
grep -qx "#SBATCH --nodes=2" shared.sbatch || fail "shared: node count"
grep -qx "#SBATCH --ntasks-per-node=2" shared.sbatch || fail "shared: tasks per node"
expect_lines shared.txt "# rank 0: server 0 on node1" "# rank 1: server 1 on node2" \
  "# rank 2: worker 0 on node1" "# rank 3: worker 1 on node2"
grep -qF "# mpirun -np 4 --hostfile $tmp/shared.sbatch.hosts --map-by seq" shared.txt || { cat shared.txt; fail "mpirun line"; }
grep -qF -- "--from m --servers 2" shared.txt || fail "compress arguments"
"$slurm" --colocated --workers 3 --ctrps "$ctrps" --script co.sbatch --dry-run -- train --config c \
  >co.txt 2>&1 || { cat co.txt; fail "dry run (colocated)"; }
launch_line="$(grep "^# srun " co.txt)"
[[ "$launch_line" == *"--ntasks=3 "* && "$launch_line" == *"--set cluster.mode=COLOCATED"* ]] ||
  { cat co.txt; fail "colocated"; }
[[ "$launch_line" != *"--servers"* ]] || fail "colocated passes --servers: $launch_line"

# Bad settings, each named.
expect_refused() {  # expect_refused PATTERN ARGS...
  local pattern="$1"; shift
  set +e; "$slurm" "$@" >bad.txt 2>&1; local rc=$?; set -e
  [ "$rc" -eq 2 ] || { cat bad.txt; fail "slurm.sh $* exited $rc, expected 2"; }
  grep -qF -- "$pattern" bad.txt || { cat bad.txt; fail "slurm.sh $* did not say '$pattern'"; }
}
expect_refused "--workers must be a whole number >= 1, got '0'" --workers 0 --dry-run -- train
expect_refused "--servers must be a whole number >= 1, got 'x'" --servers x --dry-run -- train
expect_refused "no ctrps command after '--'" --dry-run
expect_refused "the command must be train or compress" --dry-run -- eval --model m
expect_refused "give the server count as launch/slurm.sh --servers" --dry-run -- train --servers 3
expect_refused "--server-nodes 3 is more than the 2 servers" --servers 2 --server-nodes 3 --dry-run -- train
expect_refused "--colocated: every rank serves; leave out --servers" --colocated --servers 1 --dry-run -- train
expect_refused "--launcher must be srun or mpirun" --launcher ssh --dry-run -- train
expect_refused "unknown option --nodes" --nodes 3 --dry-run -- train
expect_refused "no ctrps binary at /nope" --ctrps /nope -- train
# The job refuses an allocation smaller than it asked for.
set +e; CTRPS_NODES="node1 node2" CTRPS_DRY_RUN=1 bash job.sbatch >small.txt 2>&1; rc=$?; set -e
[ "$rc" -eq 1 ] && grep -q "the allocation has 2 nodes (node1 node2); this job needs 3" small.txt ||
  { cat small.txt; fail "a too small allocation was not refused"; }

# The job script for real: this host as both nodes of the allocation,
# mpirun's sequential mapper, 1 server + 2 workers training.
"$ctrps" gen-data --format criteo --rows 4000 --eval-rows 500 --out data --seed 2 >gen.out 2>gen.log
cat > train.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" }
model { type: DEEPFM embedding_dim: 4 mlp_dims: [8] }
train { batch_size: 128 threads: 1 log_interval_s: 100 }
cluster { peer_timeout_ms: 20000 }
output { dir: "run" }
CFG
launcher_args=()
[ "$(id -u)" -eq 0 ] && launcher_args+=(--launcher-arg --allow-run-as-root)
"$slurm" --servers 1 --workers 2 --worker-nodes 1 --launcher mpirun "${launcher_args[@]}" \
  --ctrps "$ctrps" --script real.sbatch --dry-run -- train --config train.pbtxt >/dev/null 2>&1 || fail "real job script"
CTRPS_NODES="$(hostname) $(hostname)" CTRPS_HOSTFILE="$tmp/real.hosts" bash real.sbatch >real.out 2>real.err ||
  { tail -20 real.err; fail "the job script did not run the job"; }
grep -q "cluster: 3 ranks, 1 servers, 2 workers" real.err || { cat real.err; fail "wrong cluster"; }
grep -q "ctrps train: .* done (2 workers" real.out || { cat real.out; fail "no training summary"; }
echo "slurm: OK"
