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

enum class AclDirection : uint8_t { In, Out };

} // namespace vleaf
