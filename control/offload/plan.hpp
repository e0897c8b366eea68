// Which rte_flow rules vleaf asks a port for, and which ACL rules it must not offload.
//
// ACL drop rules: a port that drops in hardware must drop exactly what the software ACL
// would drop and nothing more (the software ACL stays authoritative for everything that
// reaches it). So an ingress Deny rule is offloaded only when no packet it matches could be
// decided otherwise: no Allow rule that takes precedence over it overlaps it, no Count
// rule would miss packets it drops, and it cannot match traffic the ACL stage never sees
// (VXLAN to our VTEP, which the ACL filters decapsulated; IPv6 neighbor discovery,
// link-local and multicast, which go to the host). Port ranges become value/mask blocks,
// a few at most.
//
// VXLAN steering: per VNI, VXLAN to our VTEP is spread over the port's RX queues by RSS on
// the inner headers, or sent to one configured queue.
#pragma once

#include "vleaf/acl.hpp"
#include "vleaf/offload.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vleaf::offload {

enum class Kind : uint8_t { AclDrop, VxlanRss, VxlanQueue };
const char *kind_name(Kind k); // "acl-drop", "vxlan-rss", "vxlan-queue"

// One rule to offload: all its flows are installed, or none.
struct Want {
    Kind kind = Kind::AclDrop;
    std::string owner; // the ACL policy's name, or "vxlan"
    uint32_t id = 0;   // the ACL rule's id, or the VNI
    std::vector<FlowSpec> flows;
    std::string unfit; // why it cannot be offloaded at all; empty: try the port

    bool operator==(const Want &) const = default;
};

// Most flows one ACL rule may expand to (port range blocks, sport times dport).
inline constexpr size_t kMaxFlowsPerRule = 8;
inline constexpr uint32_t kAclPriority = 0;   // drops are matched before steering
inline constexpr uint32_t kVxlanPriority = 1; // (the ACL plan keeps the two disjoint)

// [lo, hi] as the fewest (value, mask) blocks; {0, 0} is every port.
std::vector<std::pair<uint16_t, uint16_t>> port_blocks(uint16_t lo, uint16_t hi);

// Whether some packet matches both rules.
bool overlap(const AclRule &a, const AclRule &b);

// Our VTEP, as far as the ACL plan and the VXLAN steering need it.
struct Vtep {
    std::optional<IpAddr> v4, v6;
    uint16_t udp_port = 4789;
};

// The Deny rules of an ingress policy, each with its flows or why it is unfit.
std::vector<Want> plan_acl(const acl::Policy &p, const Vtep &vtep);

// VXLAN steering for a port with `rx_queues` queues: one rule per VNI (in order), to its
// queue in `queues` or spread by RSS. Nothing without a VTEP address.
std::vector<Want> plan_vxlan(const Vtep &vtep, const std::vector<uint32_t> &vnis,
                             const std::map<uint32_t, uint16_t> &queues, uint16_t rx_queues);

} // namespace vleaf::offload
