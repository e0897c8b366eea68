// A burst of packets moving through the pipeline, with per-packet scratch state kept in
// parallel arrays so that each stage walks contiguous memory. Stages hand packets on
// through index lists: route lookups (per family), decapsulation, bridging, encapsulation.
#pragma once

#include "control/config/config.hpp"
#include "dataplane/fib.hpp"
#include "vleaf/stats.hpp"

#include <rte_mbuf.h>

namespace vleaf::dp {

inline constexpr uint16_t kMaxBurst = config::kMaxBurst; // the config refuses larger bursts

// Done: a stage already queued or freed the packet (flooding).
enum class Action : uint8_t { Tx, Drop, Punt, Done };

// How a burst enters the pipeline: received on a port, or injected by the control thread
// to be routed in a VRF or bridged in a bridge domain.
enum class Entry : uint8_t { Port, Routed, Bridged };

// Where a bridged frame came from: it decides learning and split horizon.
enum class From : uint8_t { Access, Tunnel, Gateway };

inline constexpr uint16_t kAnyVlan = 0xffff; // matches no access port: nothing excluded

struct Burst {
    uint16_t n = 0;
    uint16_t port = 0; // every packet of a burst came in on this port
    Entry entry = Entry::Port;
    uint16_t entry_id = 0;   // Routed: the VRF; Bridged: the bridge domain
    uint16_t entry_vlan = 0; // Bridged: the VLAN of `port` not to flood back to
    rte_mbuf *m[kMaxBurst];

    // -> route
    uint16_t n4 = 0, n6 = 0;
    uint8_t idx4[kMaxBurst], idx6[kMaxBurst];
    uint8_t vrf4[kMaxBurst], vrf6[kMaxBurst];
    uint32_t dst4[kMaxBurst]; // host byte order, as rte_fib wants
    uint8_t dst6[kMaxBurst][16];
    // route -> forward: next-hop ids in list order (rte_fib's 64-bit results)
    uint64_t nh4[kMaxBurst], nh6[kMaxBurst];

    // -> vxlan_decap
    uint16_t nd = 0;
    uint8_t idxd[kMaxBurst];

    // -> bridge_in (the first n2in entries) -> bridge_out
    uint16_t n2 = 0, n2in = 0;
    uint8_t idx2[kMaxBurst];
    uint16_t bd[kMaxBurst];
    uint16_t vlan_in[kMaxBurst]; // Access: the VLAN it came in on (0 untagged)
    From from[kMaxBurst];
    const uint8_t *outer_src[kMaxBurst]; // Tunnel: the outer source address, in the headroom
    uint8_t outer_v6[kMaxBurst];

    // -> vxlan_encap
    uint16_t ne = 0;
    uint8_t idxe[kMaxBurst];
    uint16_t vtep[kMaxBurst];
    uint32_t vni[kMaxBurst];
    uint32_t hash[kMaxBurst]; // the inner flow's (RFC 7348: the outer UDP source port)

    uint8_t vrf[kMaxBurst]; // the VRF a packet is routed in
    uint32_t nh[kMaxBurst]; // Punt: the next hop (to resolve)
    Action action[kMaxBurst];
    uint8_t reason[kMaxBurst]; // Drop or Punt value
    uint16_t out_port[kMaxBurst];

    void drop(unsigned i, Drop why) {
        action[i] = Action::Drop;
        reason[i] = static_cast<uint8_t>(why);
    }
    void punt(unsigned i, Punt why) {
        action[i] = Action::Punt;
        reason[i] = static_cast<uint8_t>(why);
    }
    void to_route4(unsigned i, uint32_t dst, uint8_t in_vrf) {
        action[i] = Action::Tx;
        vrf[i] = in_vrf;
        dst4[n4] = dst;
        vrf4[n4] = in_vrf;
        idx4[n4++] = static_cast<uint8_t>(i);
    }
    void to_route6(unsigned i, const uint8_t *dst, uint8_t in_vrf) {
        action[i] = Action::Tx;
        vrf[i] = in_vrf;
        std::memcpy(dst6[n6], dst, 16);
        vrf6[n6] = in_vrf;
        idx6[n6++] = static_cast<uint8_t>(i);
    }
    void to_bridge(unsigned i, uint16_t in_bd, From f, uint16_t vlan) {
        action[i] = Action::Tx;
        bd[i] = in_bd;
        from[i] = f;
        vlan_in[i] = vlan;
        idx2[n2++] = static_cast<uint8_t>(i);
    }
    // `frame`: where packet i starts.
    void to_encap(unsigned i, const uint8_t *frame, uint16_t to_vtep, uint32_t to_vni,
                  uint32_t flow_hash) {
        // The outer headers go into the headroom's last cache line, which nothing has
        // touched since the buffer was last used: fetched well before encapsulation.
        rte_prefetch0_write(frame - RTE_CACHE_LINE_SIZE);
        vtep[i] = to_vtep;
        vni[i] = to_vni;
        hash[i] = flow_hash;
        idxe[ne++] = static_cast<uint8_t>(i);
    }
    // A stage between parse and route that dropped packets takes them out of the family
    // lists, so that route and forward never see (and re-decide) them.
    void compact() {
        unsigned n = 0;
        for (unsigned k = 0; k < n4; k++)
            if (action[idx4[k]] == Action::Tx) {
                idx4[n] = idx4[k];
                vrf4[n] = vrf4[k];
                dst4[n++] = dst4[k];
            }
        n4 = uint16_t(n);
        n = 0;
        for (unsigned k = 0; k < n6; k++)
            if (action[idx6[k]] == Action::Tx) {
                idx6[n] = idx6[k];
                vrf6[n] = vrf6[k];
                std::memcpy(dst6[n++], dst6[k], 16);
            }
        n6 = uint16_t(n);
    }
};

} // namespace vleaf::dp
