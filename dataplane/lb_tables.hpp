// Tables of the LB stage (dataplane/lb.hpp).
//
// Services: an immutable LbState (VIP index, reverse-NAT index, port bitmaps, and one
// immutable LbService per service holding its Maglev table) is rebuilt by the control
// thread on every change and published with one atomic pointer swap; the old state and any
// service it alone referenced are freed after an RCU grace period. Unchanged services are
// shared between consecutive states, so a backend change rebuilds only its own service.
//
// Flows: each worker owns an rte_hash (bounded, never resized, touched by that worker only)
// that pins an established flow to the backend it was given, even when the backend set
// changes afterwards. The entry holds a copy of the backend, so a removed backend keeps
// serving its flows until they go idle; workers age entries a few per burst. A DNAT flow
// has a second entry keyed by its reply's 5-tuple that gives the reply its VIP back: only
// replies of flows vleaf translated are touched, never other traffic of a backend (health
// checks, clients that reach the pod directly). The reply must therefore come in on a queue
// of the worker that saw the request (one worker per port pair, or DSR, which needs no
// reverse state).
#pragma once

#include "vleaf/service.hpp"

#include <rte_hash.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

namespace vleaf::dp {

struct LbBackend {
    uint8_t addr[16]; // network order; IPv4 in the first 4 bytes
    uint8_t node[16]; // DSR tunnel destination
    uint16_t port_be;
};

struct LbService {
    uint32_t id;
    bool v6;
    uint8_t proto;
    LbMode mode;
    uint16_t vport_be;
    uint8_t vip[16];
    uint8_t encap_src[16];
    uint32_t table_size;
    std::vector<LbBackend> backends;
    std::vector<uint32_t> table; // Maglev: slot -> index into backends (or svc::kNoBackend)
};

// Key of the VIP index.
struct LbKey {
    uint8_t addr[16];
    uint32_t vrf;
    uint16_t port_be;
    uint8_t proto;
    uint8_t v6;
};
static_assert(sizeof(LbKey) == 24);

inline LbKey lb_key(const uint8_t addr[16], uint32_t vrf, uint16_t port_be, uint8_t proto,
                    bool v6) {
    LbKey k;
    std::memcpy(k.addr, addr, 16);
    k.vrf = vrf;
    k.port_be = port_be;
    k.proto = proto;
    k.v6 = v6;
    return k;
}

// Immutable open-addressing index; at most half full, so probes stay short.
class LbIndex {
  public:
    static constexpr uint32_t kNone = UINT32_MAX;
    void build(const std::vector<std::pair<LbKey, uint32_t>> &items);
    uint32_t find(const LbKey &k) const;

  private:
    std::vector<LbKey> keys_;
    std::vector<uint32_t> vals_;
    uint32_t mask_ = 0;
};

struct LbState {
    LbIndex vips;
    // Bit per L4 port (host order): a VIP port / a port any DNAT backend ever had. Most
    // packets of other traffic leave the stage after one bit test.
    uint64_t vport_bits[1024] = {}, bport_bits[1024] = {};
    std::vector<const LbService *> svc; // index values of vips
    bool empty() const { return svc.empty(); }
};

inline bool port_bit(const uint64_t *bits, uint16_t port) {
    return (bits[port >> 6] >> (port & 63)) & 1;
}

struct FlowKey {
    uint8_t src[16], dst[16];
    uint16_t sport, dport; // network order
    uint8_t proto, v6;
    uint16_t vrf; // | kReplyKey for the reply of a DNAT flow
};
inline constexpr uint16_t kReplyKey = 0x8000;
static_assert(sizeof(FlowKey) == 40);

struct FlowEntry {
    LbBackend backend;  // a reply entry holds the VIP and its port here
    uint32_t service;   // LbService::id the flow belongs to
    uint64_t last_seen; // tsc; 0 = free slot
};

struct LbFlows {
    rte_hash *h = nullptr;
    FlowEntry *e = nullptr; // indexed by rte_hash key position
    uint32_t capacity = 0;
    uint32_t cursor = 0; // next position the ager looks at
    uint32_t used = 0;
    uint64_t timeout = 0; // idle tsc cycles before a flow is forgotten
};

class Lb {
  public:
    Lb(rte_rcu_qsbr *rcu, unsigned workers, const LbLimits &limits, int socket);
    ~Lb();
    Lb(const Lb &) = delete;
    Lb &operator=(const Lb &) = delete;

    // Control thread. Publishes service `id` (new or replaced) with its Maglev table.
    void set(uint32_t id, uint32_t vrf, const Service &s, const std::vector<uint32_t> &table);
    void del(uint32_t id);

    const LbState *state() const { return state_.load(std::memory_order_acquire); }
    LbFlows *flows(unsigned worker) { return &flows_[worker]; }
    unsigned workers() const { return static_cast<unsigned>(flows_.size()); }

  private:
    void publish();

    struct Live {
        uint32_t vrf;
        std::unique_ptr<LbService> svc;
    };
    rte_rcu_qsbr *rcu_;
    LbLimits limits_;
    std::atomic<const LbState *> state_{nullptr};
    std::map<uint32_t, Live> live_;
    uint64_t bport_bits_[1024] = {};
    std::vector<LbFlows> flows_;
};

} // namespace vleaf::dp
