#!/usr/bin/env bash
# A cluster of "hosts" on one machine: network namespaces joined by veth links
# to a bridge, each with its own address, host name and /etc/hosts, so that
# mpirun starts its daemons on them through a launcher agent (as it would
# through ssh) and the ranks talk over TCP between the namespaces, not over
# shared memory. For trying multi-host layouts and measuring the parameter
# server against the wire without a second machine. Needs root and iproute2.
#
#   netns_cluster.sh up NAME N [SLOTS]   make hosts NAME-h0 .. NAME-h(N-1), 10.213.0.1.. on eth0
#   netns_cluster.sh down NAME           remove them (and every process in them)
#   netns_cluster.sh check               exit 0 where namespaces can be made, else say why
#   netns_cluster.sh mpirun NAME ARGS..  mpirun from NAME-h0 over the hosts (TCP only)
#   netns_cluster.sh exec NAME I CMD..   run CMD on host I
#   netns_cluster.sh crash NAME I        host I vanishes: its link goes down, then every
#                                        process on it is killed (no FIN or RST reaches
#                                        the others: they see silence, as after a power cut)
#   netns_cluster.sh agent HOST CMD..    the launcher agent mpirun calls (plm_rsh_agent)
#
# `mpirun` adds --hostfile (one line per host, SLOTS slots each, default 1),
# --mca plm_rsh_agent (this script), --mca btl tcp,self and the eth0 interface
# for both MPI and mpirun's own messages, and --bind-to none: the hosts share
# this machine's cores, so each host's daemon binding its first rank to "its"
# first core would put every host's first rank on the same core (what Open MPI
# does by default for 2 ranks or fewer per host); give it -np and the rest.
set -euo pipefail
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
state_root=/run/ctrps-netns
die() { echo "netns_cluster: $*" >&2; exit 2; }
ns() { echo "$1-h$2"; }  # ns NAME I: the namespace (and host name) of host I
hosts_of() {  # the host names of cluster NAME, in order
  [ -f "$state_root/$1/hostfile" ] || die "no cluster '$1' (run: netns_cluster.sh up $1 N)"
  awk '{print $1}' "$state_root/$1/hostfile"
}

check() {
  [ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)"; return 1; }
  command -v ip >/dev/null || { echo "needs iproute2 (ip)"; return 1; }
  command -v unshare >/dev/null || { echo "needs unshare (util-linux)"; return 1; }
  local probe="ctrps-probe-$$" err
  err=$(ip netns add "$probe" 2>&1) || { echo "cannot make a network namespace: $err"; return 1; }
  err=$(ip -n "$probe" link add v0 type veth peer name v1 2>&1 &&
        ip -n "$probe" link add b0 type bridge 2>&1) || {
    ip netns del "$probe"; echo "cannot make veth links or a bridge: $err"; return 1; }
  err=$(ip netns exec "$probe" unshare --uts true 2>&1) || {
    ip netns del "$probe"; echo "cannot make a UTS namespace: $err"; return 1; }
  ip netns del "$probe"
}

up() {
  local name="$1" n="$2" slots="${3:-1}" i
  [[ "$name" =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "cluster name '$name': 1-10 lower-case letters/digits"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "host count '$n': 1..200"
  local why; why=$(check) || die "$why"
  down "$name" 2>/dev/null || true
  local dir="$state_root/$name"; mkdir -p "$dir/vanished"
  ip netns add "$name-hub"
  ip -n "$name-hub" link set lo up
  ip -n "$name-hub" link add br0 type bridge
  ip -n "$name-hub" link set br0 up
  : > "$dir/hostfile"
  local hosts="127.0.0.1 localhost"$'\n'
  for ((i = 0; i < n; i++)); do hosts+="10.213.$((i / 250)).$((i % 250 + 1)) $(ns "$name" $i)"$'\n'; done
  for ((i = 0; i < n; i++)); do
    local h; h=$(ns "$name" $i)
    ip netns add "$h"
    ip link add eth0 netns "$h" type veth peer name "p$i" netns "$name-hub"
    ip -n "$h" addr add "10.213.$((i / 250)).$((i % 250 + 1))/16" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" link set lo up
    # A host's TCP gives up on an unanswered peer after ~6 s (4 retransmissions)
    # instead of ~15 min, as clusters that must notice a dead host are tuned.
    ip netns exec "$h" sh -c "echo 4 > /proc/sys/net/ipv4/tcp_retries2"
    ip -n "$name-hub" link set "p$i" master br0
    ip -n "$name-hub" link set "p$i" up
    mkdir -p "/etc/netns/$h"; printf '%s' "$hosts" > "/etc/netns/$h/hosts"  # ip netns exec mounts it
    echo "$h slots=$slots" >> "$dir/hostfile"
  done
  echo "netns_cluster: $n hosts $(ns "$name" 0) .. $(ns "$name" $((n - 1))) on 10.213.0.0/16 (bridge in $name-hub)"
}

down() {
  local name="$1" h
  for h in $(ip netns list | awk '{print $1}' | grep -E "^$name-(hub|h[0-9]+)$" || true); do
    ip netns pids "$h" | xargs -r kill -9 2>/dev/null || true
    ip netns del "$h" 2>/dev/null || true
    rm -rf "/etc/netns/$h"
  done
  rm -rf "${state_root:?}/$name"
}

on_host() {  # on_host HOST CMD...: CMD in HOST's network and UTS namespaces, named HOST
  local h="$1"; shift
  ip netns exec "$h" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
}

case "${1:-}" in
  check) check ;;
  up) [ $# -ge 3 ] || die "usage: up NAME N [SLOTS]"; up "$2" "$3" "${4:-1}" ;;
  down) [ $# -eq 2 ] || die "usage: down NAME"; down "$2" ;;
  exec) [ $# -ge 4 ] || die "usage: exec NAME I CMD..."; name="$2" i="$3"; shift 3
        on_host "$(ns "$name" "$i")" "$@" ;;
  mpirun)
    [ $# -ge 2 ] || die "usage: mpirun NAME ARGS..."; name="$2"; shift 2
    hosts_of "$name" >/dev/null
    extra=(); [ "$(id -u)" -eq 0 ] && extra+=(--allow-run-as-root)
    on_host "$(ns "$name" 0)" mpirun "${extra[@]}" --hostfile "$state_root/$name/hostfile" \
      --mca plm_rsh_agent "$self agent" --bind-to none --mca btl tcp,self \
      --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 \
      --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 2 \
      --mca oob_tcp_keepalive_probes 2 "$@" ;;
  crash)
    [ $# -eq 3 ] || die "usage: crash NAME I"; h=$(ns "$2" "$3")
    ip netns list | grep -q "^$h\b" || die "no host $h"
    touch "$state_root/$2/vanished/$h"
    pids=$(ip netns pids "$h")
    ip -n "$h" link set eth0 down
    kill -9 $pids 2>/dev/null || true
    echo "netns_cluster: $h vanished (link down, $(echo $pids | wc -w) processes killed)" ;;
  agent)
    # mpirun runs: agent HOST 'orted ...' (as with ssh, the words are one shell
    # command). Like an ssh session to a host that vanished without closing its
    # connections, the agent of a crashed host notices nothing until its
    # keep-alives time out (ssh's ServerAliveInterval x ServerAliveCountMax:
    # CTRPS_NETNS_ALIVE_S, 20 s by default), then exits as ssh does (255).
    [ $# -ge 3 ] || die "usage: agent HOST CMD..."; h="$2"; shift 2
    name="${h%-h*}"
    set +e; on_host "$h" sh -c "$*"; rc=$?; set -e
    if [ -e "$state_root/$name/vanished/$h" ]; then
      sleep "${CTRPS_NETNS_ALIVE_S:-20}"
      echo "netns_cluster agent: connection to $h lost (no keep-alive answer)" >&2
      exit 255
    fi
    exit $rc ;;
  *) sed -n '2,20p' "$self" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
