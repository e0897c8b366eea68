// Counter vocabulary shared by the dataplane (which counts) and the API (which reports).
#pragma once

#include <cstdint>

namespace vleaf {

// Every packet a worker does not transmit ends in exactly one of these.
#define VLEAF_DROP_REASONS(X)                                                                      \
    X(unknown_ethertype)                                                                           \
    X(runt)                                                                                        \
    X(ip_bad_version)                                                                              \
    X(ip_bad_header_len)                                                                           \
    X(ip_bad_total_len)                                                                            \
    X(ip_bad_checksum)                                                                             \
    X(ip_options)                                                                                  \
    X(ip_fragment)                                                                                 \
    X(ip_martian)                                                                                  \
    X(ttl_exceeded)                                                                                \
    X(no_route)                                                                                    \
    X(blackhole)                                                                                   \
    X(neigh_unresolved)                                                                            \
    X(mtu_exceeded)                                                                                \
    X(punt_ring_full)                                                                              \
    X(tx_full)                                                                                     \
    X(vxlan_truncated) /* shorter than outer headers + VXLAN + inner Ethernet */                   \
    X(vxlan_bad_flags) /* VXLAN header without the I (valid VNI) flag */                           \
    X(vxlan_unknown_vni)                                                                           \
    X(vxlan_wrong_dst)           /* VXLAN to one of our addresses that is not a VTEP */            \
    X(vxlan_no_vtep)             /* tunnel to a remote VTEP that is gone */                        \
    X(vxlan_underlay_unresolved) /* the remote VTEP's underlay neighbor has no MAC yet */          \
    X(vxlan_mtu_exceeded) /* larger than the underlay MTU, no ICMP error (rate limit, no DF) */    \
    X(vxlan_no_headroom)                                                                           \
    X(unknown_vlan)     /* tagged frame on an access port without that VLAN */                     \
    X(l2_bad_source)    /* multicast or zero source MAC */                                         \
    X(l2_hairpin)       /* destination on the segment the frame came from */                       \
    X(l2_split_horizon) /* from a tunnel, to a remote MAC: never back into the overlay */          \
    X(l2_flood_empty)   /* BUM frame with nowhere to go */                                         \
    X(mbuf_exhausted)   /* no mbuf for a flood replica */                                          \
    X(lb_no_backend)                                                                               \
    X(lb_truncated)                                                                                \
    X(lb_no_headroom)                                                                              \
    X(lb_handoff_full) /* the owner worker's handoff ring is full */                               \
    X(acl_deny)                                                                                    \
    X(punt_policed_arp_nd) /* over the ARP/ND punt rate (config punt_police) */                    \
    X(punt_policed_host)   /* over the rate of other traffic for the host (ICMP, ...) */           \
    X(punt_policed_bgp)    /* over the rate of TCP/179 for the host */

enum class Drop : uint8_t {
#define X(name) name,
    VLEAF_DROP_REASONS(X)
#undef X
        count
};

inline constexpr const char *drop_names[] = {
#define X(name) #name,
    VLEAF_DROP_REASONS(X)
#undef X
};

// Why a packet went to the control thread instead of out of a port.
#define VLEAF_PUNT_REASONS(X)                                                                      \
    X(local)                                                                                       \
    X(arp)                                                                                         \
    X(nd)                                                                                          \
    X(resolve)                                                                                     \
    X(bd_arp)  /* ARP in a bridge domain: gateway, suppression or flood; nh = bd | vlan << 16 */   \
    X(bd_nd)   /* the same for IPv6 neighbor discovery */                                          \
    X(too_big) /* too big for its tunnel, to answer with ICMP; nh = MTU | (bd + 1) << 16 bridged   \
                */

enum class Punt : uint8_t {
#define X(name) name,
    VLEAF_PUNT_REASONS(X)
#undef X
        count
};

inline constexpr const char *punt_names[] = {
#define X(name) #name,
    VLEAF_PUNT_REASONS(X)
#undef X
};

// What the LB stage did, per worker (not drops: those are in the reasons above).
#define VLEAF_LB_COUNTERS(X)                                                                       \
    X(flows_created)                                                                               \
    X(flow_hits)                                                                                   \
    X(flows_aged)                                                                                  \
    X(flow_table_full) /* new flow balanced without being pinned */                                \
    X(dnat)                                                                                        \
    X(reverse_nat)                                                                                 \
    X(dsr_encap)                                                                                   \
    X(handoff_out) /* packets handed to the worker that owns their flow */                         \
    X(handoff_in)  /* packets other workers handed to this one */

struct LbCounters {
#define X(name) uint64_t name = 0;
    VLEAF_LB_COUNTERS(X)
#undef X
};

} // namespace vleaf
