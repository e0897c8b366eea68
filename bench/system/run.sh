#!/bin/bash
# One-lcore system benchmark: dpdk-testpmd (io forwarding, the I/O ceiling), DPDK's l3fwd
# (LPM) and vleafd forward the same 64-byte IPv4/UDP frames, replayed by net_pcap with
# infinite_rx, back out of the same port (net_pcap without tx_pcap counts and frees them).
# Every forwarder runs on lcore 1 in turn, ROUNDS times, in a new random order each round
# (the host drifts and a row's neighbours matter: a fixed order biases the rows); the
# tables show the median Mpps (port opackets over SECONDS, read through DPDK telemetry
# after WARMUP) and each round's ratios, which compare rows that ran back to back.
#
#   bench/system/run.sh [-r ROUNDS] [-s SECONDS] [-w WARMUP] [-n ROUTES] [-p PACKETS]
# Environment: BUILD_DIR (meson build with vleafd and tools/vleafctl; default build),
#   MEM_MODE (auto: hugepages if >= 256 are free, else --no-huge; or huge, nohuge),
#   VLEAFD, VLEAFCTL (override the binaries), VLEAFD_REF (another vleafd binary, e.g. of
#   the previous commit, measured interleaved with the others as row vleafd_ref),
#   L3FWD_REF (another l3fwd binary, e.g. the static one `make static` builds in its
#   source directory, as row l3fwd_ref), WORK (scratch directory, default a new one under
#   /tmp, removed on exit unless KEEP_WORK=1), L3FWD_DIR (where l3fwd is built and cached;
#   default $BUILD_DIR/l3fwd).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
VLEAFD=${VLEAFD:-$BUILD_DIR/vleafd}
VLEAFCTL=${VLEAFCTL:-$BUILD_DIR/tools/vleafctl}
L3FWD_DIR=${L3FWD_DIR:-$BUILD_DIR/l3fwd}
PY=/usr/bin/python3 # scapy lives in Debian's python, not in another python3 on PATH

ROUNDS=3 SECONDS_=5 WARMUP=2 ROUTES=512 PACKETS=1024
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2; }
while getopts "r:s:w:n:p:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    s) SECONDS_=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    n) ROUTES=$OPTARG ;;
    p) PACKETS=$OPTARG ;;
    *) usage ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (DPDK runtime dir /var/run/dpdk)" >&2; exit 1; }
command -v dpdk-testpmd >/dev/null || { echo "run.sh: dpdk-testpmd not found (package dpdk)" >&2; exit 1; }
[ -d /usr/share/dpdk/examples/l3fwd ] || { echo "run.sh: /usr/share/dpdk/examples missing (package dpdk-doc)" >&2; exit 1; }

WORK=${WORK:-$(mktemp -d /tmp/vleaf-sysbench.XXXXXX)}
mkdir -p "$WORK"
TAG=sb$$ # unique --file-prefix stem for this run
PREFIXES=()

SAMPLER=
cleanup() {
    local p
    [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
    stop
    for p in "${PREFIXES[@]}"; do
        rm -f /dev/hugepages/"$p"map_* 2>/dev/null || true
        rm -rf "/var/run/dpdk/$p"
        rm -f "/run/vleaf/$p.lock" # vleafd leaves it when EAL init fails
    done
    [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Hugepages when set up (tools/setup.sh mounts them) and enough are free, else plain
# memory; MEM_MODE=huge|nohuge forces one. Every forwarder of a run uses the same mode:
# hugepages make a large difference, and on a shared machine other processes may hold
# them, so -m stays small.
free_huge=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
MEM_MODE=${MEM_MODE:-auto}
if [ "$MEM_MODE" = auto ]; then
    MEM_MODE=nohuge
    if [ "${free_huge:-0}" -ge 256 ] && mountpoint -q /dev/hugepages; then MEM_MODE=huge; fi
fi
case $MEM_MODE in
huge) MEM=(-m 256 --huge-unlink) MEM_DESC="hugepages -m 256" ;;
nohuge) MEM=(--no-huge -m 1024) MEM_DESC="--no-huge -m 1024" ;;
*) echo "run.sh: MEM_MODE must be auto, huge or nohuge, not '$MEM_MODE'" >&2; exit 2 ;;
esac

"$PY" "$HERE/make_traffic.py" "$WORK" --routes "$ROUTES" --packets "$PACKETS"
PCAP="$WORK/traffic.pcap"
VDEV="net_pcap0,rx_pcap=$PCAP,infinite_rx=1"

# l3fwd from DPDK's examples, built once. Stock l3fwd requests RX checksum offload, which
# net_pcap lacks; mask the request with what the port offers (port and queue config).
build_l3fwd() {
    local src="$L3FWD_DIR/src"
    [ -x "$src/l3fwd/build/l3fwd" ] && return 0
    rm -rf "$src" && mkdir -p "$src"
    cp -r /usr/share/dpdk/examples/l3fwd /usr/share/dpdk/examples/common "$src/"
    sed -i \
        -e 's|^\(\t\tret = config_port_max_pkt_len(&local_port_conf, &dev_info);\)$|\t\tlocal_port_conf.rxmode.offloads \&= dev_info.rx_offload_capa;\n\1|' \
        -e 's|^\(\t\t\trxq_conf.offloads = port_conf.rxmode.offloads\);$|\1 \& dev_info.rx_offload_capa;|' \
        "$src/l3fwd/main.c"
    if [ "$(grep -c 'dev_info.rx_offload_capa' "$src/l3fwd/main.c")" != 2 ]; then
        echo "run.sh: the l3fwd offload patch no longer applies to $src/l3fwd/main.c" >&2
        exit 1
    fi
    make -s -C "$src/l3fwd" >"$L3FWD_DIR/make.log" 2>&1 ||
        { echo "run.sh: building l3fwd failed, see $L3FWD_DIR/make.log" >&2; exit 1; }
}
mkdir -p "$L3FWD_DIR"
build_l3fwd
L3FWD="$L3FWD_DIR/src/l3fwd/build/l3fwd"

have_vleafd=0
if [ -x "$VLEAFD" ]; then
    have_vleafd=1
    cat >"$WORK/vleafd.yaml" <<EOF
log_level: warn
burst: 32
mempool: {mbufs: 16383, cache: 256, data_room: 2176}
punt_police: {arp_nd: 5} # the pcap's ARP request, replayed with every 1024 frames, is set-up, not load
ports:
  - {name: p0, device: "$VDEV", rx_queues: 1, rss: false, promiscuous: true}
interfaces:
  - {name: bench0, port: p0, ipv4: [10.0.0.1/24]}
workers:
  - lcore: 1
    rx: [{port: p0, queue: 0}]
api:
  socket: $WORK/vleafd.sock
routes:
EOF
    cat "$WORK/routes.yaml" >>"$WORK/vleafd.yaml"
else
    echo "run.sh: $VLEAFD not found: vleafd is skipped" >&2
fi

# Starts a forwarder in the background as RUNNING; its stdin stays open (testpmd exits
# on EOF).
RUNNING=
start() {
    local name=$1 prefix=$2
    shift 2
    PREFIXES+=("$prefix")
    "$@" <"$WORK/stdin.fifo" >"$WORK/$name.log" 2>&1 &
    RUNNING=$!
}

stop() {
    local _
    [ -n "$RUNNING" ] || return 0
    kill -TERM "$RUNNING" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$RUNNING" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$RUNNING" 2>/dev/null || true
    wait "$RUNNING" 2>/dev/null || true
    RUNNING=
}

mkfifo "$WORK/stdin.fifo"
exec 7<>"$WORK/stdin.fifo"

measure() {
    local name=$1 round=$2 prefix="${TAG}_$1_$2"
    case $name in
    testpmd)
        start "$name" "$prefix" dpdk-testpmd -l 0,1 "${MEM[@]}" --no-pci \
            --file-prefix "$prefix" --log-level=error --vdev="$VDEV" -- \
            --total-num-mbufs=16384 --forward-mode=io --port-topology=loop --auto-start
        ;;
    l3fwd | l3fwd_ref)
        local l3=$L3FWD
        [ "$name" = l3fwd ] || l3=$L3FWD_REF
        start "$name" "$prefix" "$l3" -l 1 "${MEM[@]}" --no-pci \
            --file-prefix "$prefix" --log-level=error --vdev="$VDEV" -- \
            -p 0x1 -P --config="(0,0,1)" --parse-ptype \
            --rule_ipv4="$WORK/l3fwd_v4.cfg" --rule_ipv6="$WORK/l3fwd_v6.cfg"
        ;;
    vleafd | vleafd_ref)
        local bin=$VLEAFD
        [ "$name" = vleafd ] || bin=$VLEAFD_REF
        start "$name" "$prefix" "$bin" -l 0,1 "${MEM[@]}" --no-pci \
            --file-prefix "$prefix" --log-level=error -- --config "$WORK/vleafd.yaml"
        ;;
    esac
    # In the background so that a signal to this script is handled at once (bash runs
    # traps only between foreground commands, but interrupts `wait`).
    "$PY" "$HERE/telemetry.py" rate "$prefix" --pid "$RUNNING" --cpu 1 --warmup "$WARMUP" \
        --seconds "$SECONDS_" >"$WORK/$name.rate" &
    SAMPLER=$!
    if ! wait "$SAMPLER"; then
        SAMPLER=
        echo "run.sh: $name (round $round) gave no rates; its log:" >&2
        tail -20 "$WORK/$name.log" >&2
        stop
        return 1
    fi
    SAMPLER=
    if [ "$name" = vleafd ] && [ -x "$VLEAFCTL" ]; then
        "$VLEAFCTL" -s "$WORK/vleafd.sock" -j show stats >"$WORK/vleafd_stats_$round.json" 2>&1 || true
    fi
    stop
    mv "$WORK/$name.rate" "$WORK/${name}_$round.json"
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%-8s round %s: %6.2f Mpps out, %6.2f Mpps in" % (sys.argv[2], sys.argv[3], r["opps"]/1e6, r["ipps"]/1e6))' \
        "$WORK/${name}_$round.json" "$name" "$round"
}

NAMES=(testpmd l3fwd)
[ $have_vleafd = 1 ] && NAMES+=(vleafd)
if [ -n "${VLEAFD_REF:-}" ] && [ $have_vleafd = 1 ]; then
    [ -x "$VLEAFD_REF" ] || { echo "run.sh: VLEAFD_REF $VLEAFD_REF is not executable" >&2; exit 1; }
    NAMES+=(vleafd_ref)
fi
if [ -n "${L3FWD_REF:-}" ]; then
    [ -x "$L3FWD_REF" ] || { echo "run.sh: L3FWD_REF $L3FWD_REF is not executable" >&2; exit 1; }
    NAMES+=(l3fwd_ref)
fi
echo "system benchmark: $(date -u +%F), $ROUTES routes, $PACKETS frames of 64 B, $MEM_DESC," \
    "forwarding on lcore 1, $ROUNDS rounds x ${SECONDS_}s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    mapfile -t order < <(printf '%s\n' "${NAMES[@]}" | shuf)
    echo "${order[*]}" >"$WORK/order_$round"
    for name in "${order[@]}"; do measure "$name" "$round" || true; done
done

"$PY" - "$WORK" "$ROUNDS" "${NAMES[@]}" <<'EOF'
import json, os, statistics, sys

work, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def load_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None

def mpps(name):
    return [r["opps"] / 1e6 for k in range(1, rounds + 1)
            if (r := load(f"{work}/{name}_{k}.json"))]

def median_mpps(name):
    rates = mpps(name)
    return statistics.median(rates) if rates else None

def median_cpu_mpps(name):
    # packets per second of CPU time the forwarding lcore got (preemption excluded)
    rates = [r["opps_cpu"] / 1e6 for k in range(1, rounds + 1)
             if (r := load(f"{work}/{name}_{k}.json")) and r.get("opps_cpu")]
    return statistics.median(rates) if rates else None

def vleafd_cycles():
    # cycles/packet of the worker(s), as vleafd reports them (median over rounds)
    vals = []
    for k in range(1, rounds + 1):
        s = load(f"{work}/vleafd_stats_{k}.json")
        for w in (s or {}).get("workers", []):
            if w.get("cycles_per_packet") is not None:
                vals.append(float(w["cycles_per_packet"]))
    return statistics.median(vals) if vals else None

base = median_mpps("testpmd")
print("\n| forwarder | Mpps (median) | vs testpmd io | rounds ok | all rounds (Mpps) | Mpps per lcore CPU-second | cycles/packet |")
print("|---|---|---|---|---|---|---|")
for n in names:
    m = median_mpps(n)
    c = median_cpu_mpps(n)
    cyc = vleafd_cycles() if n == "vleafd" else None
    print("| {} | {} | {} | {}/{} | {} | {} | {} |".format(
        n, f"{m:.2f}" if m else "failed", f"{m / base:.2f}" if m and base else "-",
        len(mpps(n)), rounds, " ".join(f"{r:.2f}" for r in mpps(n)),
        f"{c:.2f}" if c else "-", f"{cyc:.1f}" if cyc else "-"))

# Ratios within each round: the rows of one round ran back to back, so their ratio is
# less exposed to the host's drift than a ratio of medians. In brackets the same of the
# rates per CPU-second of the forwarding lcore, which preemption does not lower.
pairs = [(a, b) for a, b in (("vleafd", "l3fwd"), ("vleafd_ref", "l3fwd"),
                             ("vleafd", "vleafd_ref"), ("vleafd", "l3fwd_ref"),
                             ("l3fwd_ref", "l3fwd"), ("l3fwd", "testpmd"))
         if a in names and b in names]

def round_rate(name, k, key):
    r = load(f"{work}/{name}_{k}.json")
    return r[key] / 1e6 if r and r.get(key) else None

def ratio(a, b, k, key):
    x, y = round_rate(a, k, key), round_rate(b, k, key)
    return x / y if x and y else None

def fmt(v, digits):
    return f"{v:.{digits}f}" if v else "-"

print("\n| round | order | " + " | ".join(names) + " | " +
      " | ".join(f"{a} / {b}" for a, b in pairs) + " |")
print("|---" * (2 + len(names) + len(pairs)) + "|")
ratios = {(p, key): [] for p in pairs for key in ("opps", "opps_cpu")}
for k in range(1, rounds + 1):
    order = (load_text(f"{work}/order_{k}") or "").split()
    cells = [fmt(round_rate(n, k, "opps"), 2) for n in names]
    for a, b in pairs:
        for key in ("opps", "opps_cpu"):
            if (v := ratio(a, b, k, key)):
                ratios[((a, b), key)].append(v)
        cells.append(f"{fmt(ratio(a, b, k, 'opps'), 3)} ({fmt(ratio(a, b, k, 'opps_cpu'), 3)})")
    print(f"| {k} | {' '.join(order)} | " + " | ".join(cells) + " |")
print()
for ((a, b), key), v in ratios.items():
    if v:
        print(f"{a} / {b}{' per CPU-second' if key == 'opps_cpu' else ''}: median"
              f" {statistics.median(v):.3f} over {len(v)} rounds (range {min(v):.3f}-{max(v):.3f})")
EOF
