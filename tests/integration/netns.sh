#!/usr/bin/env bash
# Several hosts on one machine: three network namespaces joined by veth links
# (launch/netns_cluster.sh), one rank on each, mpirun starting its daemons
# through the launcher agent that enters each namespace, and MPI over TCP
# between them (no shared memory). Checks: 2 servers + 1 worker on three
# hosts train the same model as the single process, bit for bit, and their
# traffic crossed the links; when the host of a server vanishes (its link
# down, then every process on it killed: silence, as after a power cut) the
# job ends in time, naming the rank and its host.
# Skips (exit 77, the reason on stdout) where namespaces cannot be made.
# Usage: netns.sh CTRPS TMPDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/mpi_lib.sh"
cluster="$here/../../launch/netns_cluster.sh"
ctrps="$1"; tmp="$2"
if ! why=$("$cluster" check); then echo "SKIP: network namespaces cannot be made here: $why"; exit 77; fi
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp"
name="ctn$$"
trap '"$cluster" down "$name"' EXIT
"$cluster" up "$name" 3
export CTRPS_NETNS_ALIVE_S=10  # the crashed host's launcher session gives up after 10 s

"$ctrps" gen-data --format criteo --rows 40000 --eval-rows 5000 --out data --seed 5 2>gen.log
cat > job.pbtxt <<CFG
data { train: "data/train.txt" valid: "data/valid.txt" shuffle_buffer: 4000 }
model { type: DEEPFM embedding_dim: 8 mlp_dims: [32, 16] }
train { batch_size: 256 threads: 1 log_interval_s: 100
        sparse_optimizer { learning_rate: 0.003 } dense_optimizer { learning_rate: 0.003 } }
cluster { peer_timeout_ms: 20000 }
CFG
rx() { ip -n "$name-h$1" -s link show eth0 | awk 'f {print $1; exit} /RX:/ {f = 1}'; }

"$ctrps" train --config job.pbtxt --set output.dir=single >single.out 2>single.err \
  || { tail single.err; fail "single-process train"; }
before=$(rx 1)
"$cluster" mpirun "$name" -np 3 "$ctrps" train --config job.pbtxt --set output.dir=hosts3 --servers 2 \
  >hosts3.out 2>hosts3.err || { tail -30 hosts3.err; fail "train on 3 hosts"; }
same_model single hosts3
grep -q "cluster: 3 ranks on 3 hosts, 2 servers, 1 workers" hosts3.err \
  || { head hosts3.err; fail "the cluster line does not say 3 hosts"; }
moved=$(( $(rx 1) - before ))
[ "$moved" -gt 1000000 ] || fail "only $moved bytes reached $name-h1 over its link"
echo "3 hosts: same model as the single process; $moved bytes into $name-h1 over its veth"

# The host of server 1 (rank 1) vanishes mid-run.
"$cluster" mpirun "$name" -np 3 "$ctrps" train --config job.pbtxt --set output.dir=crash --servers 2 \
  --set train.epochs=1000 --set cluster.peer_timeout_ms=3000 >crash.out 2>crash.err &
mpid=$!
for i in $(seq 150); do grep -q "eval valid" crash.err 2>/dev/null && break; sleep 0.2; done
grep -q "eval valid" crash.err || { kill $mpid; tail crash.err; fail "the long run did not start"; }
start=$SECONDS
"$cluster" crash "$name" 1
set +e
for i in $(seq 600); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $mpid 2>/dev/null; then kill $mpid; tail -30 crash.err; fail "job still running 60 s after the host vanished"; fi
wait $mpid; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the job exited 0 after losing a server's host"
grep -q "from rank 1 (server 1 on $name-h1): the server is gone or silent" crash.err \
  || { tail -30 crash.err; fail "the error does not name rank 1 and its host"; }
echo "host of server 1 vanished: job ended in $((SECONDS - start)) s (rc $rc), naming rank 1 on $name-h1"
echo "netns: all checks passed"
