// Stateless ACLs with Kubernetes-NetworkPolicy-like rules, compiled into rte_acl tries.
//
// Semantics: a policy is an ordered rule list plus a default action. Among the Allow and
// Deny rules that match a packet, the one with the lowest `priority` number decides (ties:
// the earlier rule in the list); if none matches, the default action decides. Count rules
// are not terminal: the best matching Count rule is reported and counted, and the decision
// still comes from the Allow/Deny rules. Every rule and the default have hit counters.
//
// Publishing: AclSet::build runs on the control thread (it can take seconds for 10k rules)
// and returns a new immutable set; the owner publishes it with an atomic pointer swap, and
// frees the old set only after an RCU grace period, when no worker can still be classifying
// with it. At that point its counters are final and can be folded into running totals.
#pragma once

#include "vleaf/acl.hpp"

#include <rte_acl.h>

#include <memory>
#include <optional>
#include <vector>

namespace vleaf::dp {

using vleaf::AclAction;
using vleaf::AclPolicy;
using vleaf::AclRule;

constexpr uint32_t kAclDefault = UINT32_MAX;

struct AclVerdict {
    AclAction action; // Allow or Deny
    uint32_t rule;    // index in AclPolicy::rules of the deciding rule, or kAclDefault
    uint32_t counted; // index of the best matching Count rule, or kAclDefault for none
};

class AclSet {
  public:
    // Validates and compiles `p` for `workers` workers (each with its own counter row).
    // Throws std::invalid_argument naming the bad rule and field, std::runtime_error if
    // rte_acl fails (e.g. out of memory).
    static std::unique_ptr<const AclSet> build(const AclPolicy &p, unsigned workers, int socket);
    ~AclSet();
    AclSet(const AclSet &) = delete;
    AclSet &operator=(const AclSet &) = delete;

    // Classifies n packets given pointers to their L3 headers and the bytes available from
    // there; `worker` selects the counter row. Non-first fragments and truncated packets have
    // no L4 header: they are classified with ports 0 (ICMP type 0). IPv6 extension headers
    // (hop-by-hop, routing, fragment, destination options, AH) are walked to the L4 header.
    void classify4(const uint8_t *const l3[], const uint16_t len[], unsigned n, AclVerdict out[],
                   unsigned worker) const;
    void classify6(const uint8_t *const l3[], const uint16_t len[], unsigned n, AclVerdict out[],
                   unsigned worker) const;

    // Hits summed over workers; kAclDefault gives the default action's. Exact once no worker
    // uses the set any more, approximate (but never torn) while they do.
    uint64_t hits(uint32_t rule) const;
    size_t size() const { return actions_.size(); }

  private:
    AclSet() = default;
    template <typename Key>
    void classify(rte_acl_ctx *ctx, const uint8_t *const l3[], const uint16_t len[], unsigned n,
                  AclVerdict out[], unsigned worker) const;

    rte_acl_ctx *ctx4_ = nullptr, *ctx6_ = nullptr; // null when the family has no rules
    uint32_t categories_ = 1; // 1, or RTE_ACL_RESULTS_MULTIPLIER when Count rules exist
    AclAction default_ = AclAction::Allow;
    std::vector<AclAction> actions_;
    // workers rows of `stride_` counters, rows padded to a cache line so that workers
    // never write the same line: no atomics needed.
    uint64_t *hits_ = nullptr;
    unsigned workers_ = 0;
    size_t stride_ = 0;
};

} // namespace vleaf::dp
