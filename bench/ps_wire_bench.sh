#!/usr/bin/env bash
# The parameter server against the wire (issue 18 item 4): ps_bench across
# two hosts made of network namespaces (launch/netns_cluster.sh), rank 0 on
# one and rank 1 on the other, MPI over TCP through their veth link, so the
# server's pull/push is measured against raw MPI point-to-point over the
# same link, at the same message sizes, in the same run (and the end-to-end
# training rows: 1 server + 1 worker on different hosts vs one process).
# Needs root (namespaces); prints why where they cannot be made.
#
# On one machine the "wire" is the kernel copying through the veth pair, so
# it costs CPU like everything else: the ranks run at a raised priority
# (nice -15, as root) with mpi_yield_when_idle, both for raw MPI and the
# server, so a busy machine's other processes skew neither side.
# Usage: bench/ps_wire_bench.sh BUILD_DIR [steps=30] [micro]
#   micro: only the pull/push table (1 server thread, then the default count)
set -euo pipefail
build="$(cd "${1:?usage: ps_wire_bench.sh BUILD_DIR [steps] [micro]}" && pwd)"
steps="${2:-30}"; mode="${3:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cluster="$here/../launch/netns_cluster.sh"
if ! why=$("$cluster" check); then echo "ps_wire_bench: cannot run here: $why" >&2; exit 2; fi
name="pswb$$"
trap '"$cluster" down "$name" >/dev/null 2>&1' EXIT
"$cluster" up "$name" 2
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "link: veth $name-h0 <-> bridge <-> $name-h1, MPI: --mca btl tcp,self (no shared memory)"
args=("$steps"); [ "$mode" = micro ] && args+=(micro)
nice -n -15 "$cluster" mpirun "$name" -np 2 --mca mpi_yield_when_idle 1 "$build/bench/ps_bench" "${args[@]}"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
