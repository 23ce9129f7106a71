#!/usr/bin/env bash
# Runs a ctrps job (train or compress) on a Slurm cluster: writes an sbatch
# script (the #SBATCH header for the counts below, then launch/slurm/
# ctrps_job.sh, which places the ranks and starts them) and submits it.
#
#   launch/slurm.sh --servers 2 --workers 8 --server-nodes 1 --worker-nodes 4 \
#       --cpus-per-task 8 --time 4:00:00 --partition gpu -- \
#       train --config configs/criteo_deepfm.pbtxt --set train.threads=8
#   launch/slurm.sh ... --dry-run -- train ...   # print the script and the launch line only
#
# Ranks 0..S-1 serve embedding shards, the rest train (launch/cluster.cc);
# servers get the first --server-nodes nodes (0: they share the worker
# nodes), workers the next --worker-nodes nodes, each dealt round robin.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<USAGE
Usage: launch/slurm.sh [options] -- train|compress FLAGS...
  --servers S          parameter-server ranks (default 1; not with --colocated)
  --workers W          worker ranks (default 1)
  --server-nodes K     nodes for the servers alone (default 1; 0: servers share the worker nodes)
  --worker-nodes M     nodes for the workers (default: W, one worker per node)
  --colocated          every rank serves and trains (cluster.mode=COLOCATED); W ranks
  --cpus-per-task C    CPUs per rank (default 1; match train.threads)
  --time T --partition P --account A --mem M --job-name NAME --output FILE
                       the usual sbatch settings (defaults: none; ctrps-COMMAND; ctrps-%j.out)
  --exclusive          nodes for this job alone
  --launcher srun|mpirun   how the ranks start (default srun, with --mpi=pmix)
  --srun-mpi TYPE      srun's MPI plugin (default pmix; 'srun --mpi=list' shows yours)
  --launcher-arg ARG   one more flag for srun/mpirun (repeatable)
  --ctrps PATH         the ctrps binary, on a path every node sees (default $root/build/launch/ctrps)
  --script FILE        where to write the job script (default ./ctrps-COMMAND.sbatch)
  --dry-run            print the job script and, for an allocation of nodes node1..nodeN,
                       the placement and the launch line; submit nothing
USAGE
}
die() { echo "ctrps slurm: $*" >&2; exit 2; }
count() {  # count NAME VALUE MIN: VALUE must be an integer >= MIN
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] || die "$1 must be a whole number >= $3, got '$2'"
}

servers=1 workers=1 server_nodes="" worker_nodes="" colocated=0 cpus=1
time_limit="" partition="" account="" mem="" job_name="" output="ctrps-%j.out" exclusive=0
launcher=srun srun_mpi=pmix launcher_args=() ctrps="$root/build/launch/ctrps" script="" dry_run=0
servers_given=0
while [ $# -gt 0 ]; do
  opt="$1"
  case "$opt" in
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    --colocated) colocated=1; shift; continue ;;
    --exclusive) exclusive=1; shift; continue ;;
    --dry-run) dry_run=1; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "$opt needs a value (see --help)"
  val="$2"; shift 2
  case "$opt" in
    --servers) servers="$val"; servers_given=1 ;;
    --workers) workers="$val" ;;
    --server-nodes) server_nodes="$val" ;;
    --worker-nodes) worker_nodes="$val" ;;
    --cpus-per-task) cpus="$val" ;;
    --time) time_limit="$val" ;;
    --partition) partition="$val" ;;
    --account) account="$val" ;;
    --mem) mem="$val" ;;
    --job-name) job_name="$val" ;;
    --output) output="$val" ;;
    --launcher) launcher="$val" ;;
    --srun-mpi) srun_mpi="$val" ;;
    --launcher-arg) launcher_args+=("$val") ;;
    --ctrps) ctrps="$val" ;;
    --script) script="$val" ;;
    *) die "unknown option $opt (see --help)" ;;
  esac
done
[ $# -ge 1 ] || die "no ctrps command after '--' (e.g. -- train --config FILE)"
case "$1" in
  train|compress) ;;
  *) die "the command must be train or compress (the ones that run on servers and workers), got '$1'" ;;
esac
command="$1"
for a in "$@"; do
  case "$a" in
    --servers|--servers=*) die "give the server count as launch/slurm.sh --servers, not to ctrps" ;;
  esac
done
count --workers "$workers" 1
count --cpus-per-task "$cpus" 1
if [ "$colocated" = 1 ]; then
  [ "$servers_given" = 0 ] || die "--colocated: every rank serves; leave out --servers"
  servers=0
  [ -z "$server_nodes" ] || [ "$server_nodes" = 0 ] || die "--colocated: no nodes for servers alone (--server-nodes)"
  server_nodes=0
else
  count --servers "$servers" 1
fi
server_nodes="${server_nodes:-1}"
worker_nodes="${worker_nodes:-$workers}"
count --server-nodes "$server_nodes" 0
count --worker-nodes "$worker_nodes" 1
[ "$server_nodes" -le "$servers" ] || die "--server-nodes $server_nodes is more than the $servers servers"
[ "$worker_nodes" -le "$workers" ] || die "--worker-nodes $worker_nodes is more than the $workers workers"
case "$launcher" in srun|mpirun) ;; *) die "--launcher must be srun or mpirun, got '$launcher'" ;; esac
case "$ctrps" in /*) ;; *) ctrps="$PWD/$ctrps" ;; esac
[ "$dry_run" = 1 ] || [ -x "$ctrps" ] || die "no ctrps binary at $ctrps (build it, or give --ctrps)"

ceil() { echo $(( ($1 + $2 - 1) / $2 )); }
nodes=$((server_nodes + worker_nodes))
per_node=$(ceil "$workers" "$worker_nodes")
if [ "$server_nodes" -gt 0 ]; then
  s=$(ceil "$servers" "$server_nodes"); [ "$s" -gt "$per_node" ] && per_node=$s
elif [ "$servers" -gt 0 ]; then
  per_node=$((per_node + $(ceil "$servers" "$worker_nodes")))  # servers beside the workers
fi
job_name="${job_name:-ctrps-$command}"
script="${script:-$PWD/ctrps-$command.sbatch}"
case "$script" in /*) ;; *) script="$PWD/$script" ;; esac

{
  echo "#!/usr/bin/env bash"
  echo "# Written by launch/slurm.sh: $servers servers on $server_nodes nodes, $workers workers on $worker_nodes nodes."
  echo "#SBATCH --job-name=$job_name"
  echo "#SBATCH --nodes=$nodes"
  echo "#SBATCH --ntasks-per-node=$per_node"
  echo "#SBATCH --cpus-per-task=$cpus"
  echo "#SBATCH --output=$output"
  [ -z "$time_limit" ] || echo "#SBATCH --time=$time_limit"
  [ -z "$partition" ] || echo "#SBATCH --partition=$partition"
  [ -z "$account" ] || echo "#SBATCH --account=$account"
  [ -z "$mem" ] || echo "#SBATCH --mem=$mem"
  [ "$exclusive" = 0 ] || echo "#SBATCH --exclusive"
  echo
  printf 'CTRPS_BIN=%q\n' "$ctrps"
  printf 'CTRPS_ARGS=(%s)\n' "$(printf '%q ' "$@")"
  echo "CTRPS_SERVERS=$servers CTRPS_WORKERS=$workers"
  echo "CTRPS_SERVER_NODES=$server_nodes CTRPS_WORKER_NODES=$worker_nodes"
  [ "$colocated" = 1 ] && echo "CTRPS_COLOCATED=1" || echo "CTRPS_COLOCATED="
  echo "CTRPS_CPUS=$cpus CTRPS_LAUNCHER=$launcher CTRPS_SRUN_MPI=$srun_mpi"
  printf 'CTRPS_LAUNCHER_ARGS=(%s)\n' "$( [ ${#launcher_args[@]} -eq 0 ] || printf '%q ' "${launcher_args[@]}")"
  echo "export OMP_NUM_THREADS=$cpus"
  echo
  cat "$root/launch/slurm/ctrps_job.sh"
} > "$script"

if [ "$dry_run" = 1 ]; then
  cat "$script"
  echo
  echo "# For an allocation of nodes node1..node$nodes:"
  sample=""
  for ((i = 1; i <= nodes; i++)); do sample+="node$i "; done
  CTRPS_NODES="$sample" CTRPS_DRY_RUN=1 CTRPS_HOSTFILE="$script.hosts" bash "$script" 2>&1 |
    sed 's/^ctrps slurm: /# /'
  echo "# hosts by rank ($script.hosts): $(tr '\n' ' ' < "$script.hosts")"
  exit 0
fi
command -v sbatch >/dev/null 2>&1 || die "no sbatch here: the job script is $script (submit it with sbatch on the cluster)"
sbatch "$script"
