// ACL vocabulary shared by the configuration, the control plane's policy registry
// (control/acl) and the dataplane's classifier and filter stage (dataplane/acl*).
//
// Semantics (Kubernetes NetworkPolicy and more): a policy is an ordered rule list plus a
// default action. Among the Allow and Deny rules that match a packet, the one with the
// lowest `priority` number decides (ties: the earlier rule); if none matches, the default
// decides. Count rules only count. A policy filters one interface, or every interface of a
// VRF (those without a policy of their own), in one direction.
#pragma once

#include "vleaf/addr.hpp"

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vleaf {

enum class AclAction : uint8_t { Allow, Deny, Count };

struct AclRule {
    Prefix src, dst;              // one family for both; host bits are ignored
    std::optional<uint8_t> proto; // nullopt: any protocol
    // Port ranges need proto tcp, udp or sctp (as in NetworkPolicy ports).
    uint16_t sport_lo = 0, sport_hi = 65535;
    uint16_t dport_lo = 0, dport_hi = 65535;
    std::optional<uint8_t> icmp_type; // needs proto icmp (IPv4) or icmpv6 (IPv6)
    int32_t priority = 0;             // lower number wins
    AclAction action = AclAction::Allow;
};

struct AclPolicy {
    std::vector<AclRule> rules;
    AclAction default_action = AclAction::Allow; // Allow or Deny
};

inline bool acl_has_ports(uint8_t proto) {
    return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

// Why `r` cannot be compiled, as "<field>: <reason>"; empty when it can.
inline std::string acl_rule_error(const AclRule &r) {
    const bool v4 = r.src.addr.is_v4();
    if (r.src.addr.family != r.dst.addr.family) return "dst: not of the family of src";
    if (r.src.len > r.src.addr.max_len()) return "src: prefix length too long";
    if (r.dst.len > r.dst.addr.max_len()) return "dst: prefix length too long";
    if (r.sport_lo > r.sport_hi) return "sport: range is empty";
    if (r.dport_lo > r.dport_hi) return "dport: range is empty";
    bool ports = r.sport_lo != 0 || r.sport_hi != 65535 || r.dport_lo != 0 || r.dport_hi != 65535;
    if (ports && !(r.proto && acl_has_ports(*r.proto)))
        return std::string(r.sport_lo != 0 || r.sport_hi != 65535 ? "sport" : "dport") +
               ": port ranges need proto tcp, udp or sctp";
    uint8_t icmp = v4 ? uint8_t(IPPROTO_ICMP) : uint8_t(IPPROTO_ICMPV6);
    if (r.icmp_type && r.proto != icmp)
        return v4 ? "icmp_type: needs proto icmp" : "icmp_type: needs proto icmpv6";
    if (r.action != AclAction::Allow && r.action != AclAction::Deny && r.action != AclAction::Count)
        return "action: unknown";
    return "";
}

enum class AclDirection : uint8_t { In, Out };

// Where a policy filters: received on (In) or sent out of (Out) one port, or every port of
// a VRF that has no policy of its own in that direction.
struct AclAttach {
    AclDirection dir = AclDirection::In;
    bool port = false; // true: `id` is a DPDK port id; false: a VRF id
    uint32_t id = 0;
};

} // namespace vleaf

namespace vleaf::acl {

// A policy as configured (or built through the API), before it is compiled.
struct Rule {
    uint32_t id = 0; // unique in its policy; 0 in a request: the next free id
    AclRule rule;
};

struct Policy {
    std::string name;
    AclDirection dir = AclDirection::In;
    std::string interface; // exactly one of interface and vrf
    std::string vrf;
    AclAction default_action = AclAction::Allow;
    std::vector<Rule> rules; // in order: priority ties go to the earlier rule
};

} // namespace vleaf::acl
