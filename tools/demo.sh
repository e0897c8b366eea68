#!/usr/bin/env bash
# vleaf demo (as root on Debian 12): installs and builds, then runs vleafd on its
# embedded default configuration (conf/demo.yaml) inside a network namespace, with two
# more namespaces as hosts on different subnets:
#
#   vleaf-h1 (10.0.1.2, fd00:1::2) ─ veth ─ vl-h1 [vleaf-vl: vleafd] vl-h2 ─ veth ─ vleaf-h2 (10.0.2.2, fd00:2::2)
#
# and shows real traffic crossing it: ping, a TCP transfer, vleafd's own tables and
# counters. Everything it creates is removed on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash tools/setup.sh
VLEAFD=$ROOT/build/vleafd
VLEAFCTL=$ROOT/build/tools/vleafctl
SOCK=/run/vleaf/demo.sock # api.socket of the embedded default config
PREFIX=vleaf-demo
VL=vleaf-vl H1=vleaf-h1 H2=vleaf-h2
LOG=$(mktemp /tmp/vleafd-demo.XXXXXX.log)
VLEAFD_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$VLEAFD_PID" ] && kill -0 "$VLEAFD_PID" 2>/dev/null; then
    kill -TERM "$VLEAFD_PID"
    for _ in $(seq 50); do kill -0 "$VLEAFD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$VLEAFD_PID" 2>/dev/null || true
  fi
  for ns in $VL $H1 $H2; do
    if ip netns list | grep -qw "^$ns"; then
      for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns"
    fi
  done
  rm -f /dev/hugepages/"$PREFIX"map_* "$SOCK"
  rm -rf /var/run/dpdk/"$PREFIX"
  if [ "$rc" -ne 0 ]; then
    echo "demo FAILED (exit $rc); vleafd log: $LOG" >&2
    tail -n 30 "$LOG" >&2 || true
  else
    rm -f "$LOG"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nsx() { ip netns exec "$@"; }
say() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }

# Leftovers of an interrupted earlier demo.
for ns in $VL $H1 $H2; do ip netns del "$ns" 2>/dev/null || true; done

say "namespaces $VL (vleafd), $H1 and $H2 (hosts)"
for ns in $VL $H1 $H2; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done
for n in 1 2; do
  h=$H1; [ $n = 2 ] && h=$H2
  ip link add name vl-h$n netns $VL type veth peer name eth0 netns "$h"
  # The kernel of $VL keeps off the veths that vleafd owns: vleafd answers ARP/ND
  # there and hands the kernel its share through the taps.
  nsx $VL sysctl -qw net.ipv6.conf.vl-h$n.disable_ipv6=1 net.ipv4.conf.vl-h$n.arp_ignore=8 \
    net.ipv4.conf.vl-h$n.rp_filter=1 net.ipv4.conf.all.rp_filter=1
  nsx $VL ip link set vl-h$n up
  # Frames leave the hosts whole and checksummed, as on a wire (af_packet sees them raw).
  nsx "$h" ethtool -K eth0 tx off tso off gso off gro off >/dev/null
  nsx "$h" ip addr add 10.0.$n.2/24 dev eth0
  nsx "$h" ip addr add fd00:$n::2/64 dev eth0 nodad
  nsx "$h" ip link set eth0 up
  nsx "$h" ip route add default via 10.0.$n.1
  nsx "$h" ip -6 route add default via fd00:$n::1
done
# Targets behind h2 for vleafd's static routes 10.100.0.0/16 and fd00:100::/48.
nsx $H2 ip addr add 10.100.0.1/32 dev lo
nsx $H2 ip addr add fd00:100::1/128 dev lo nodad

EAL=(-l '0,1' --no-pci --file-prefix "$PREFIX" --log-level='*:warning')
if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge 128 ] && mountpoint -q /dev/hugepages; then
  EAL+=(-m 256)
else
  EAL+=(--no-huge -m 512)
fi
say "vleafd ${EAL[*]}  (embedded default config, see conf/demo.yaml)"
mkdir -p /run/vleaf
rm -f "$SOCK"
# Not through nsx: $! must be vleafd itself (ip netns exec execs it), not a subshell.
ip netns exec $VL "$VLEAFD" "${EAL[@]}" >"$LOG" 2>&1 &
VLEAFD_PID=$!
for _ in $(seq 300); do
  kill -0 $VLEAFD_PID 2>/dev/null || { echo "vleafd exited:" >&2; cat "$LOG" >&2; exit 1; }
  [ -S "$SOCK" ] && nsx $VL ip link show vl-tap-h2 >/dev/null 2>&1 && break
  sleep 0.1
done
[ -S "$SOCK" ] || { echo "vleafd did not open $SOCK within 30 s" >&2; exit 1; }
echo "vleafd running (pid $VLEAFD_PID)"

ping_from_h1() {
  say "ping $H1 -> $1 ($2)"
  nsx $H1 ping -n -c 4 -i 0.3 -w 10 "$1"
}
ping_from_h1 10.0.2.2 "IPv4 through vleafd"
ping_from_h1 fd00:2::2 "IPv6 through vleafd"
ping_from_h1 10.100.0.1 "IPv4 static route via 10.0.2.2"
ping_from_h1 fd00:100::1 "IPv6 static route via fd00:2::2"
ping_from_h1 10.0.1.1 "vleafd's own address, answered by the kernel through tap vl-tap-h1"

say "TCP: 8 MB from $H1 to 10.0.2.2:5001, sha256 on both ends"
XFER=$ROOT/tests/integration/lib/tcp_transfer.py
nsx $H2 /usr/bin/python3 "$XFER" sink 10.0.2.2 5001 >"$LOG.sink" &
for _ in $(seq 50); do grep -q listening "$LOG.sink" && break; sleep 0.1; done
sent=$(nsx $H1 /usr/bin/python3 "$XFER" source 10.0.2.2 5001 $((8 << 20)))
wait $!
got=$(tail -n 1 "$LOG.sink")
rm -f "$LOG.sink"
echo "sent:     $sent"
echo "received: $got"
[ "$sent" = "$got" ] || { echo "TCP transfer corrupted or incomplete" >&2; exit 1; }

for what in interfaces routes neighbors stats; do
  say "vleafctl show $what"
  "$VLEAFCTL" -s "$SOCK" show $what
done

say "stopping vleafd (SIGTERM)"
kill -TERM $VLEAFD_PID
for _ in $(seq 50); do kill -0 $VLEAFD_PID 2>/dev/null || break; sleep 0.1; done
if kill -0 $VLEAFD_PID 2>/dev/null; then echo "vleafd still runs 5 s after SIGTERM" >&2; exit 1; fi
if wait $VLEAFD_PID; then echo "vleafd exited cleanly"; else echo "vleafd exited with $?" >&2; exit 1; fi
VLEAFD_PID=
say "demo OK"
