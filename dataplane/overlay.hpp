// The overlay tables shared by all workers, and their single writer (the Fib's apply):
// the local VTEP's parameters, remote VTEPs, the VNI map, bridge domains with their
// access ports and flood lists, and one MAC table for all bridge domains.
// Readers never lock. Entries are published with single aligned stores; anything a
// worker may still hold (a deleted VTEP, a MAC table slot) is reused only after an RCU
// grace period. Workers report MACs to learn over a ring; the control thread applies
// them as MacSet updates, like configured or BGP-learned ones.
#pragma once

#include "vleaf/update.hpp"

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vleaf::dp {

// The local VTEP, fixed before the workers start.
struct VxlanParams {
    bool has4 = false, has6 = false;
    uint32_t src4 = 0; // network order
    uint8_t src6[16] = {};
    uint16_t port_be = 0; // UDP destination port, network order
    uint16_t sport_min = 49152;
    uint32_t sport_span = 16384; // number of source ports in the range
    uint8_t ttl = 64;
    bool df = true;
};

struct VxlanHdr {
    uint32_t flags; // 0x08000000: the VNI is valid
    uint32_t vni;   // VNI << 8
};
inline constexpr uint32_t kVxlanFlagI = 0x08000000;
inline constexpr unsigned kOuter4 =
    sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + sizeof(VxlanHdr); // 50
inline constexpr unsigned kGrows4 = kOuter4 - sizeof(rte_ether_hdr); // what IPv4 total length adds
inline constexpr unsigned kOuter6 = kOuter4 + sizeof(rte_ipv6_hdr) - sizeof(rte_ipv4_hdr); // 70

struct alignas(64) RemoteVtep {
    uint8_t family = 0; // 0: unused slot, 4 or 6
    NhId underlay = kNhNoRoute;
    uint8_t addr[16] = {}; // network order; IPv4 in the first 4 bytes
    // IPv4: the ones' complement sum (RFC 1071, folded) of the outer IPv4 header's
    // constant words read as numbers (network order), and of what the headers add to the
    // total length (20 + 8 + 8); encapsulation adds the inner length and identification.
    uint16_t sum4 = 0;
    // The outer headers of every frame toward this VTEP (kOuter4 or kOuter6 bytes), built
    // when it is set: Ethernet type, IPv4 or IPv6, UDP and VXLAN with what never changes.
    // Encapsulation copies them with 32-byte stores and fills in the MACs of the underlay
    // next hop, the lengths, the IPv4 checksum, the UDP source port and the VNI.
    alignas(32) uint8_t outer[96] = {};
};
static_assert(kOuter6 <= sizeof(RemoteVtep::outer) && sizeof(RemoteVtep) == 128);

// VNI map slot: valid bit, L3 bit, 24-bit VNI, and the bridge domain or VRF.
inline constexpr uint64_t kVniValid = 1ull << 63, kVniL3 = 1ull << 62;
inline constexpr unsigned kVniSlots = 1 << 14, kVniProbes = 16;

inline constexpr unsigned kMaxLocalPorts = 64; // access ports per bridge domain
inline constexpr unsigned kMaxFlood = 256;     // remote VTEPs per flood list

struct AccessRef {
    uint16_t port;
    uint16_t vlan;
};

struct alignas(64) BridgeDomain {
    uint32_t vni = 0;
    uint32_t vrf = 0;
    rte_ether_addr gw_mac{};
    uint8_t used = 0;
    uint8_t has_gw = 0;
    // Lists change in place: a reader racing a change may miss or repeat one member for
    // one BUM frame, which flooding tolerates.
    uint16_t n_local = 0, n_flood = 0;
    AccessRef local[kMaxLocalPorts];
    uint16_t flood[kMaxFlood];
};

// A MAC table entry's destination packed in 64 bits, read and written whole.
namespace mac_dest {
inline constexpr uint64_t kLocal = 1, kRemote = 2, kStatic = 4;
inline uint64_t local(uint16_t port, uint16_t vlan) {
    return kLocal | uint64_t(port) << 16 | uint64_t(vlan) << 32;
}
inline uint64_t remote(uint16_t vtep) {
    return kRemote | uint64_t(vtep) << 48;
}
inline uint16_t port(uint64_t d) {
    return uint16_t(d >> 16);
}
inline uint16_t vlan(uint64_t d) {
    return uint16_t(d >> 32);
}
inline uint16_t vtep(uint64_t d) {
    return uint16_t(d >> 48);
}
inline uint64_t pack(const MacDest &m) {
    uint64_t d = m.kind == MacDest::Kind::Local ? local(m.port, m.vlan) : remote(m.vtep);
    return d | (m.is_static ? kStatic : 0);
}
} // namespace mac_dest

struct alignas(16) MacSlot {
    uint64_t dest;
    uint32_t seen; // worker clock (rte_rdtsc() >> kSeenShift) when last seen as a source
    uint32_t unused;
};
inline constexpr unsigned kSeenShift = 24;

inline uint64_t mac_key(uint16_t bd, const uint8_t *mac) {
    uint64_t k = uint64_t(bd) << 48;
    for (int i = 0; i < 6; i++) k |= uint64_t(mac[i]) << (40 - 8 * i);
    return k;
}

// A MAC a worker saw as a source where the table has it elsewhere or not at all.
struct LearnMsg {
    uint64_t key;
    uint64_t dest;  // Local: port and VLAN; Remote: the VTEP is `addr`
    uint8_t family; // Remote: 4 or 6
    uint8_t unused[7];
    uint8_t addr[16];
};
static_assert(sizeof(LearnMsg) == 40);

struct OverlayCounters {
    uint64_t macs = 0, macs_learned = 0, mac_moves = 0, macs_aged = 0;
    uint64_t learn_static_conflicts = 0; // learning tried to move a static MAC
    uint64_t macs_flushed = 0;           // learned behind a VTEP that was deleted
    uint64_t vteps = 0, vnis = 0, bds = 0;
};

class Overlay {
  public:
    Overlay(rte_rcu_qsbr *rcu, int socket, uint32_t mac_entries = 1 << 16);
    ~Overlay();
    Overlay(const Overlay &) = delete;
    Overlay &operator=(const Overlay &) = delete;

    std::string apply(const Update &u);
    // Before any VTEP is set: their outer header templates are built from it.
    void set_params(const VxlanParams &p) { params_ = p; }

    // Worker side.
    const VxlanParams &params() const { return params_; }
    const RemoteVtep *vteps() const { return vteps_; }
    const BridgeDomain *bds() const { return bds_; }
    const uint16_t *access(uint16_t port) const { return access_[port]; } // bd + 1, by VLAN
    const rte_ether_addr *router_macs() const { return rmac_; }           // by VRF
    const rte_hash *macs() const { return mac_hash_; }
    MacSlot *slots() const { return slots_; }
    rte_ring *learn_ring() const { return learn_; }
    // The slot of VNI `vni`, or 0.
    uint64_t vni(uint32_t vni) const {
        for (unsigned p = 0, h = vni_hash(vni); p < kVniProbes; p++, h = (h + 1) % kVniSlots) {
            uint64_t s = __atomic_load_n(&vni_[h], __ATOMIC_ACQUIRE);
            if (s == 0) return 0;
            if ((s & kVniValid) && uint32_t(s >> 32 & 0xffffff) == vni) return s;
        }
        return 0;
    }

    // Control side.
    unsigned drain_learned(LearnMsg *out, unsigned max);
    bool learn_pending() const { return rte_ring_count(learn_) != 0; }
    // Removes dynamic MACs not seen for `max_age` cycles; returns how many, and their
    // keys (mac_key) in `aged` when given.
    unsigned age(uint64_t now_tsc, uint64_t max_age, std::vector<uint64_t> *aged = nullptr);
    struct MacView {
        uint16_t bd;
        MacAddr mac;
        MacDest dest;
        uint64_t idle_tsc;
    };
    std::vector<MacView> mac_table(uint64_t now_tsc) const;
    const OverlayCounters &counters() const { return counters_; }

  private:
    static unsigned vni_hash(uint32_t vni) { return (vni * 0x9e3779b1u) >> 18; }
    std::string vtep_set(const Update &u);
    std::string vni_set(const Update &u);
    std::string vni_del(uint32_t vni);
    std::string bd_set(const Update &u);
    std::string flood(const Update &u, bool add);
    std::string access_set(const Update &u, bool add);
    std::string mac_set(const Update &u);
    std::string mac_del(uint64_t key);
    struct Shadow {
        uint64_t dest;
        uint32_t slot;
    };
    // Removes the MACs `which` picks with one grace period; returns how many (and their
    // keys in `removed` when given).
    unsigned remove_macs(const std::function<bool(const Shadow &)> &which,
                         std::vector<uint64_t> *removed = nullptr);

    rte_rcu_qsbr *rcu_;
    int socket_;
    VxlanParams params_;
    RemoteVtep *vteps_ = nullptr;
    uint64_t *vni_ = nullptr;
    BridgeDomain *bds_ = nullptr;
    uint16_t *access_[RTE_MAX_ETHPORTS] = {};
    rte_ether_addr rmac_[256] = {};
    rte_hash *mac_hash_ = nullptr;
    MacSlot *slots_ = nullptr;
    rte_ring *learn_ = nullptr;
    std::map<uint64_t, Shadow> mac_shadow_; // what the table holds, for display and aging
    std::vector<uint32_t> free_slots_;
    OverlayCounters counters_;
};

} // namespace vleaf::dp
