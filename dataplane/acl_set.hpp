// Stateless ACLs with Kubernetes-NetworkPolicy-like rules, compiled into an exact-match
// table (acl_exact.hpp) for the rules that pin one address to a host, and rte_acl tries for
// the rest.
//
// Semantics: a policy is an ordered rule list plus a default action. Among the Allow and
// Deny rules that match a packet, the one with the lowest `priority` number decides (ties:
// the earlier rule in the list); if none matches, the default action decides. Count rules
// are not terminal: the best matching Count rule is reported and counted, and the decision
// still comes from the Allow/Deny rules. Every rule and the default have hit counters.
//
// Per family, the rules whose destination (or source, whichever more rules pin) is a /32 or
// /128 go to the exact-match part and the others stay in rte_acl; a packet checks the exact
// part first and goes through rte_acl only if a rule there could still beat (or count
// before) what the exact part found: never when rte_acl holds no rule of the family. The
// split is made only when it pays: the remaining rte_acl rules are none, or rank after at
// least half of the exact ones, or are fewer than the exact ones (a trie of half the rules
// or less is cheaper even when every packet still goes through it; bench/README.md);
// otherwise, or when the exact part cannot hold the rules (too many under one key), the
// whole family stays in rte_acl.
//
// Publishing: AclSet::build runs on the control thread (it can take seconds for 10k rules)
// and returns a new immutable set; the owner publishes it with an atomic pointer swap, and
// frees the old set only after an RCU grace period, when no worker can still be classifying
// with it. At that point its counters are final and can be folded into running totals.
#pragma once

#include "dataplane/acl_exact.hpp"
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

    // classify4 for a burst of n <= 64 plain IPv4 headers (IHL 5, not a later fragment, at
    // least 4 bytes after the header in the frame), read in place: `frame[i] + proto` points
    // at the protocol byte of header i (offset 9), `home[i]` is what prefetch4 returned.
    // Counts hits as classify4 does and returns the denied packets (bit i: packet i) instead
    // of verdicts, which is all plain4 needs.
    uint64_t deny4_plain(const uint8_t *const frame[], unsigned proto, const uint32_t home[],
                         unsigned n, unsigned worker) const;
    // For classify4_plain: prefetches what the exact-match part will read for the plain
    // IPv4 header whose protocol byte is at `key`.
    uint32_t prefetch4(const uint8_t *key) const { return exact4_ ? exact4_->prefetch(key) : 0; }

    // Hits summed over workers; kAclDefault gives the default action's. Exact once no worker
    // uses the set any more, approximate (but never torn) while they do.
    uint64_t hits(uint32_t rule) const;
    size_t size() const { return by_rank_.size(); }
    // How many rules the exact-match parts hold (the others are in rte_acl).
    size_t exact_rules() const { return part4_.exact_rules + part6_.exact_rules; }

  private:
    AclSet() = default;
    // The rte_acl side of one family.
    struct Part {
        rte_acl_ctx *ctx = nullptr; // null when rte_acl holds no rule of the family
        uint32_t categories = 1;    // 1, or RTE_ACL_RESULTS_MULTIPLIER with Count rules
        // The best ranks in ctx: a packet skips rte_acl when the exact part found better.
        uint32_t decide = kNoRank, count = kNoRank;
        size_t exact_rules = 0;
    };
    template <unsigned Bytes, typename Key>
    static void compile(const AclPolicy &p, Family fam, const std::vector<uint32_t> &rank,
                        std::unique_ptr<AclExact<Bytes>> &exact, Part &part, int socket);
    template <typename Key, unsigned Bytes>
    void classify(const Part &part, const AclExact<Bytes> *exact, const uint8_t *const l3[],
                  const uint16_t len[], unsigned n, AclVerdict out[], unsigned worker) const;
    // The verdicts of n <= 64 packets read at data[i] (acl_set.cpp's key layout), in `out`
    // with kVerdicts, and the denied packets (bit per packet).
    template <bool kVerdicts, unsigned Bytes>
    uint64_t decide(const Part &part, const AclExact<Bytes> *exact, const uint8_t *const data[],
                    const uint32_t *home, unsigned n, AclVerdict out[], unsigned worker) const;

    Part part4_, part6_;
    std::unique_ptr<AclExact<4>> exact4_;
    std::unique_ptr<AclExact<16>> exact6_;
    AclAction default_ = AclAction::Allow;
    std::vector<uint32_t> by_rank_; // rule of each rank, as in AclMatch::rule
    // workers rows of `stride_` counters (the default's last), rows padded to a cache line
    // so that workers never write the same line: no atomics needed.
    uint64_t *hits_ = nullptr;
    unsigned workers_ = 0;
    size_t stride_ = 0;
};

} // namespace vleaf::dp
