// A worker lcore: owns its RX queues and one TX queue on every port, counts per lcore,
// never locks and never allocates.
#pragma once

#include "dataplane/acl_tables.hpp"
#include "dataplane/burst.hpp"
#include "dataplane/doorbell.hpp"
#include "dataplane/lb_tables.hpp"
#include "dataplane/police.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>

namespace vleaf::dp {

#ifdef VLEAF_STAGE_CYCLES
inline constexpr bool kStageCycles = true; // meson -Dstage_cycles=true
#else
inline constexpr bool kStageCycles = false;
#endif

enum Stage : uint8_t {
    StageParse,
    StageDecap,
    StageBridgeIn,
    StageAclIn,
    StageHandoff,
    StageLb,
    StageRoute,
    StageForward,
    StageAclOut,
    StageBridgeOut,
    StageEncap,
    StageDispatch,
    StageCount
};
inline constexpr const char *stage_names[] = {"parse",   "decap",      "bridge_in", "acl_in",
                                              "handoff", "lb",         "route",     "forward",
                                              "acl_out", "bridge_out", "encap",     "dispatch"};

// rdtsc costs ~50 cycles in a VM, 3 per packet if every burst of 32 were timed: the
// pipeline's cycles per packet are sampled on one burst in this many.
inline constexpr uint64_t kTimedBurstEvery = 16;

struct alignas(64) WorkerStats {
    uint64_t rx = 0;
    uint64_t tx = 0;
    uint64_t bursts = 0;
    uint64_t pipeline_packets = 0;
    uint64_t timed_packets = 0;   // in the bursts timed (one in kTimedBurstEvery)
    uint64_t pipeline_cycles = 0; // of the timed bursts, rx and tx bursts excluded
    uint64_t stage_cycles[StageCount] = {};
    uint64_t drops[static_cast<int>(Drop::count)] = {};
    uint64_t punts[static_cast<int>(Punt::count)] = {};
    uint64_t injected = 0;
    uint64_t decapsulated = 0;
    uint64_t encapsulated = 0;
    uint64_t flooded = 0;       // BUM frames replicated (each counted once)
    uint64_t learn_sent = 0;    // MACs reported to the control thread
    uint64_t learn_dropped = 0; // learn ring full
    LbCounters lb;
};

// What each port looks like to a worker; written before workers start.
struct PortInfo {
    rte_ether_addr mac;
    uint16_t mtu = 1500;
    uint32_t vrf = 0;
    bool tx_ip_cksum = false; // the port computes outer IPv4 checksums
};

// A packet handed to the control thread, with why and (for resolution) which next hop.
struct PuntMsg {
    rte_mbuf *m;
    uint32_t nh;
    uint8_t reason;
    uint8_t vrf;   // the VRF the packet was routed in
    uint16_t port; // receiving port
};
static_assert(sizeof(PuntMsg) == 16);

// An LB packet handed to the worker that owns its flow (lb_handoff.hpp), after ACL-in.
struct HandoffMsg {
    rte_mbuf *m;
    uint16_t port; // receiving port
    uint8_t vrf;   // the VRF it is routed in
    uint8_t v6;
};
static_assert(sizeof(HandoffMsg) == 16);
inline constexpr unsigned kHandoffRing = 1024; // per worker

struct TxBuf {
    uint16_t n = 0;
    rte_mbuf *m[kMaxBurst * 2];
};

struct RxQueue {
    uint16_t port;
    uint16_t queue;
};

struct Worker {
    unsigned lcore = 0;
    unsigned rcu_id = 0;
    uint16_t txq = 0; // this worker's TX queue on every port
    uint16_t burst = 32;
    uint16_t n_rxq = 0;
    RxQueue rxq[16];
    const Fib *fib = nullptr;
    const Overlay *ov = nullptr; // the fib's overlay tables
    const PortInfo *ports = nullptr;
    rte_mempool *pool = nullptr; // flood replicas
    rte_rcu_qsbr *rcu = nullptr;
    rte_ring *punt = nullptr;   // to control, shared by all workers (MP/SC)
    rte_ring *inject = nullptr; // from control: PuntMsg, reason 0 = transmit, 1 = process
    Doorbell *bell = nullptr;   // rung after handing the control thread punts or MACs
    const std::atomic<bool> *stop = nullptr;
    const Lb *lb = nullptr;   // services; null: the LB stage passes everything
    LbFlows *flows = nullptr; // this worker's own flow table
    const Acl *acl = nullptr; // ACL policies; rcu_id is this worker's hit counter row
    // LB handoff (lb_handoff.hpp): every worker's ring, by rcu_id; null with one worker.
    rte_ring *const *handoff = nullptr;
    uint16_t n_workers = 1;

    // Packets waiting for a neighbor reach the control thread at most once per
    // resolve_gap cycles per destination (hashed into a small table), so that a flood
    // towards an unresolved neighbor cannot fill the punt ring.
    static constexpr unsigned kResolveSlots = 256;
    uint64_t resolve_gap = 0;
    uint64_t resolve_last[kResolveSlots] = {};
    bool allow_resolve(uint32_t key, uint64_t now) { return allow(resolve_last, key, now); }
    // The same for reporting MACs to learn, so a flood of frames from one new source
    // sends one message per resolve_gap.
    uint64_t learn_last[kResolveSlots] = {};
    bool allow_learn(uint64_t key, uint64_t now) {
        return allow(learn_last, uint32_t(key ^ (key >> 29)), now);
    }
    // Packets too big for a tunnel reach the control thread (to be answered with ICMP)
    // at most once per icmp_gap cycles per source; the others are dropped.
    uint64_t icmp_gap = 0;
    uint64_t icmp_last[kResolveSlots] = {};
    bool allow_icmp(uint32_t key, uint64_t now) { return allow(icmp_last, key, now, icmp_gap); }
    bool allow(uint64_t *table, uint32_t key, uint64_t now) {
        return allow(table, key, now, resolve_gap);
    }
    static bool allow(uint64_t *table, uint32_t key, uint64_t now, uint64_t gap) {
        uint64_t &last = table[(key * 0x9e3779b1u) >> 24];
        if (last != 0 && now - last < gap) return false; // 0: slot never used
        last = now;
        return true;
    }
    uint16_t ip_id = 0; // outer IPv4 identification when DF is off

    // Punts per class (police.hpp), refilled from `clock`, read once per burst that
    // punts; tests set a clock of their own.
    PuntBucket police[static_cast<int>(PuntClass::count)];
    uint64_t (*clock)() = tsc;
    static uint64_t tsc() { return rte_rdtsc(); }

    uint16_t n_dirty = 0;
    uint16_t dirty[RTE_MAX_ETHPORTS];
    TxBuf tx[RTE_MAX_ETHPORTS];
    WorkerStats stats;
    // The lcore's kernel thread id once it runs: whose scheduler accounting tells how
    // long forwarding stopped because something else held the worker's CPU.
    std::atomic<int> tid{0};

    void wake_control() {
        if (bell) bell->ring();
    }

    int run();              // the lcore loop
    void process(Burst &b); // one burst through the pipeline, then transmitted
    // Up to kHandoffDrain bursts from this worker's handoff ring through the pipeline from
    // the LB stage on, then transmitted.
    void drain_handoff(Burst &b);
    static constexpr unsigned kHandoffDrain = 8;
};

// Inject messages: Transmit as is; Process: route in VRF `nh`; Bridge: flood or forward
// in bridge domain `nh & 0xffff`, never back out of `port` with VLAN `nh >> 16`.
enum InjectKind : uint8_t { InjectTransmit = 0, InjectProcess = 1, InjectBridge = 2 };

int worker_main(void *worker); // rte_eal_remote_launch entry

} // namespace vleaf::dp
