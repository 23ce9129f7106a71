# The body of a ctrps Slurm job (launch/slurm.sh puts the #SBATCH header
# and these settings above it; see there). Places the ranks, then starts
# them with srun or mpirun:
#   ranks 0..S-1 are the parameter servers (launch/cluster.cc), dealt round
#   robin over the first CTRPS_SERVER_NODES nodes of the allocation (over the
#   worker nodes when that is 0); ranks S.. are the workers, dealt round robin
#   over the next CTRPS_WORKER_NODES nodes.
# Settings (all set by launch/slurm.sh):
#   CTRPS_BIN            the ctrps binary (a path every node sees)
#   CTRPS_ARGS=(...)     the command and its flags: train --config FILE ...
#   CTRPS_SERVERS        S, server ranks (0 with CTRPS_COLOCATED=1)
#   CTRPS_WORKERS        W, worker ranks
#   CTRPS_SERVER_NODES   nodes for the servers alone (0: servers share the worker nodes)
#   CTRPS_WORKER_NODES   nodes for the workers
#   CTRPS_COLOCATED      1: every rank serves and trains (cluster.mode=COLOCATED)
#   CTRPS_CPUS           CPUs per rank
#   CTRPS_LAUNCHER       srun (default) or mpirun
#   CTRPS_SRUN_MPI       srun's --mpi plugin (pmix)
#   CTRPS_LAUNCHER_ARGS=(...)  extra flags for srun/mpirun
# Outside Slurm (tests, a dry run): CTRPS_NODES="host ..." stands for the
# allocation's nodes, and CTRPS_DRY_RUN=1 prints the launch line instead of
# running it.
set -euo pipefail
[ -n "${CTRPS_LAUNCHER_ARGS+set}" ] || CTRPS_LAUNCHER_ARGS=()

if [ -n "${CTRPS_NODES:-}" ]; then
  read -r -a nodes <<< "$CTRPS_NODES"
else
  mapfile -t nodes < <(scontrol show hostnames "${SLURM_JOB_NODELIST:?not inside a Slurm job}")
fi
need=$((CTRPS_SERVER_NODES + CTRPS_WORKER_NODES))
if [ "${#nodes[@]}" -lt "$need" ]; then
  echo "ctrps slurm: the allocation has ${#nodes[@]} nodes (${nodes[*]}); this job needs $need" \
       "($CTRPS_SERVER_NODES for servers, $CTRPS_WORKER_NODES for workers)" >&2
  exit 1
fi
worker_nodes=("${nodes[@]:CTRPS_SERVER_NODES:CTRPS_WORKER_NODES}")
if [ "$CTRPS_SERVER_NODES" -gt 0 ]; then
  server_nodes=("${nodes[@]:0:CTRPS_SERVER_NODES}")
else
  server_nodes=("${worker_nodes[@]}")
fi

# One line per rank, in rank order: the host it runs on.
hostfile="${CTRPS_HOSTFILE:-$PWD/ctrps-hosts.${SLURM_JOB_ID:-local}}"
: > "$hostfile"
rank=0
for ((s = 0; s < CTRPS_SERVERS; s++)); do
  host="${server_nodes[s % ${#server_nodes[@]}]}"
  echo "$host" >> "$hostfile"
  echo "ctrps slurm: rank $rank: server $s on $host" >&2
  rank=$((rank + 1))
done
for ((w = 0; w < CTRPS_WORKERS; w++)); do
  host="${worker_nodes[w % ${#worker_nodes[@]}]}"
  echo "$host" >> "$hostfile"
  echo "ctrps slurm: rank $rank: worker $w${CTRPS_COLOCATED:+ (and server)} on $host" >&2
  rank=$((rank + 1))
done

ranks=$((CTRPS_SERVERS + CTRPS_WORKERS))
args=("${CTRPS_ARGS[@]}")
if [ "${CTRPS_COLOCATED:-}" = "1" ]; then
  args+=(--set cluster.mode=COLOCATED)
else
  args+=(--servers "$CTRPS_SERVERS")
fi
case "${CTRPS_LAUNCHER:-srun}" in
  srun)
    # Slurm places task i on line i of SLURM_HOSTFILE.
    export SLURM_HOSTFILE="$hostfile"
    cmd=(srun --mpi="${CTRPS_SRUN_MPI:-pmix}" --distribution=arbitrary --ntasks="$ranks"
         --cpus-per-task="$CTRPS_CPUS" "${CTRPS_LAUNCHER_ARGS[@]}" "$CTRPS_BIN" "${args[@]}")
    ;;
  mpirun)
    # Open MPI's sequential mapper: rank i on the host of line i.
    cmd=(mpirun -np "$ranks" --hostfile "$hostfile" --map-by seq
         -x OMP_NUM_THREADS="$CTRPS_CPUS" "${CTRPS_LAUNCHER_ARGS[@]}" "$CTRPS_BIN" "${args[@]}")
    ;;
  *)
    echo "ctrps slurm: CTRPS_LAUNCHER must be srun or mpirun, got '$CTRPS_LAUNCHER'" >&2
    exit 2
    ;;
esac
echo "ctrps slurm: $(printf '%q ' "${cmd[@]}")" >&2
if [ "${CTRPS_DRY_RUN:-0}" = "1" ]; then exit 0; fi
exec "${cmd[@]}"
