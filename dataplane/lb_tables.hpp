// Tables of the LB stage (dataplane/lb.hpp).
//
// Services: an immutable LbState (VIP index, reverse-NAT index, port bitmaps, and one
// immutable LbService per service holding its Maglev table) is rebuilt by the control
// thread on every change and published with one atomic pointer swap; the old state and any
// service it alone referenced are freed after an RCU grace period. Unchanged services are
// shared between consecutive states, so a backend change rebuilds only its own service.
//
// Flows: each worker owns a flow table (lb_flows.hpp: bounded, never resized, touched by
// that worker only) that pins an established flow to the backend it was given, even when the
// backend set changes afterwards. The entry holds a copy of the backend, so a removed backend keeps
// serving its flows until they go idle; workers age entries a few per burst. A DNAT flow
// has a second entry keyed by its reply's 5-tuple that gives the reply its VIP back: only
// replies of flows vleaf translated are touched, never other traffic of a backend (health
// checks, clients that reach the pod directly). Both entries live at the flow's owner
// worker, to which other workers hand the flow's packets (lb_handoff.hpp).
#pragma once

#include "dataplane/lb_flows.hpp"
#include "vleaf/service.hpp"

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
    // DNAT's checksum deltas (csum.hpp) from VIP:port to addr:port_be, and back for the
    // replies: the IPv4 header's (addresses) and TCP/UDP's (addresses and ports).
    uint16_t ip_delta, l4_delta, reply_ip_delta, reply_l4_delta;
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

// Key of the VIP index, made in registers: the address (IPv4 in the low 4 bytes of w[0]),
// then VRF, port, protocol and family in w[2].
struct LbKey {
    uint64_t w[3];
    bool operator==(const LbKey &) const = default;
};

inline LbKey lb_key(const uint8_t *addr, bool v6, uint32_t vrf, uint16_t port_be, uint8_t proto) {
    LbKey k{};
    if (v6) {
        std::memcpy(&k.w[0], addr, 8);
        std::memcpy(&k.w[1], addr + 8, 8);
    } else {
        uint32_t a;
        std::memcpy(&a, addr, 4);
        k.w[0] = a;
    }
    k.w[2] = vrf | uint64_t(port_be) << 32 | uint64_t(proto) << 48 | uint64_t(v6) << 56;
    return k;
}

// Immutable open-addressing index; at most half full, so probes stay short. find() only
// after build().
class LbIndex {
  public:
    static constexpr uint32_t kNone = UINT32_MAX;
    void build(const std::vector<std::pair<LbKey, uint32_t>> &items);
    uint32_t find(const LbKey &k) const {
        for (uint32_t at = hash(k) & mask_;; at = (at + 1) & mask_) {
            if (vals_[at] == kNone) return kNone;
            if (keys_[at] == k) return vals_[at];
        }
    }

  private:
    static uint32_t hash(const LbKey &k) {
        return crc32c64(k.w[2], crc32c64(k.w[1], crc32c64(k.w[0], 0)));
    }
    std::vector<LbKey> keys_;
    std::vector<uint32_t> vals_;
    uint32_t mask_ = 0;
};

inline constexpr unsigned kAddrBits = 4096;

// Bit of an address in an address filter.
inline uint32_t addr_bit4(uint32_t a) {
    return (a * 0x9e3779b1u) >> 20;
}
inline uint32_t addr_bit(const uint8_t *a, bool v6) {
    uint32_t w[4] = {};
    std::memcpy(w, a, v6 ? 16 : 4);
    return addr_bit4(w[0] ^ w[1] ^ w[2] ^ w[3]);
}
static_assert(kAddrBits == 1u << (32 - 20));

struct LbState {
    LbIndex vips;
    // Bit per L4 port (host order): a VIP port / a port any DNAT backend ever had; bit per
    // address hash (addr_bit): a VIP / an address any DNAT backend ever had. Other traffic
    // leaves the stage after two bit tests.
    uint64_t vport_bits[1024] = {}, bport_bits[1024] = {};
    uint64_t vaddr_bits[kAddrBits / 64] = {}, baddr_bits[kAddrBits / 64] = {};
    std::vector<const LbService *> svc; // index values of vips
    bool empty() const { return svc.empty(); }
};

inline bool test_bit(const uint64_t *bits, uint32_t bit) {
    return (bits[bit >> 6] >> (bit & 63)) & 1;
}

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
    void free_flows();

    struct Live {
        uint32_t vrf;
        std::unique_ptr<LbService> svc;
    };
    rte_rcu_qsbr *rcu_;
    LbLimits limits_;
    std::atomic<const LbState *> state_{nullptr};
    std::map<uint32_t, Live> live_;
    uint64_t bport_bits_[1024] = {}, baddr_bits_[kAddrBits / 64] = {};
    std::vector<LbFlows> flows_;
};

} // namespace vleaf::dp
