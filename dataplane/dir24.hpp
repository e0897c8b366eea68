// IPv4 longest-prefix match: DIR-24-8 (one 4-byte entry per /24, and 256-entry tbl8
// groups for the /24s that hold longer prefixes), with its rules in a hash (RuleHash)
// instead of rte_fib's rte_rib tree. Every entry carries the depth of the prefix it came
// from, so the writer updates in place without looking at the other rules: an add
// overwrites the entries of its range whose depth is not longer than its own; a delete
// puts back its covering rule (found by probing the hash at the populated shorter
// depths) where the entries still have its depth.
//
// Workers read concurrently with the single writer: every entry is one aligned 4-byte
// store, a tbl8 group is filled before the tbl24 entry that points to it is published,
// and a group that no longer holds a longer prefix returns to the free list only after an
// RCU grace period (rte_rcu_qsbr), so a lookup midway never reads another /24's group.
#pragma once

#include "dataplane/rule_hash.hpp"

#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <deque>
#include <vector>

namespace vleaf::dp {

class Dir24 {
  public:
    // tbl8_groups: /24s holding longer prefixes at a time (plus those awaiting a grace
    // period). The tables come from DPDK memory on `socket` when EAL has hugepages, else
    // from a mapping with transparent huge pages.
    Dir24(uint32_t max_rules, uint32_t tbl8_groups, rte_rcu_qsbr *rcu, int socket);
    ~Dir24();
    Dir24(const Dir24 &) = delete;
    Dir24 &operator=(const Dir24 &) = delete;

    // Workers. ip in host byte order; kNhNoRoute where nothing matches.
    NhId lookup(uint32_t ip) const {
        uint32_t e = load(&tbl24_[ip >> 8]);
        if (__builtin_expect(e & kExt, 0)) e = load(&tbl8_[tbl8_index(e, ip)]);
        return e >> kValueShift;
    }
    // The tbl24 entry of the packet kAhead places on is prefetched meanwhile.
    void lookup_bulk(const uint32_t *ip, uint64_t *nh, unsigned n) const {
        constexpr unsigned kAhead = 8;
        unsigned ahead = std::min(n, kAhead), i = 0;
        for (unsigned k = 0; k < ahead; k++) rte_prefetch0(&tbl24_[ip[k] >> 8]);
        for (; i + ahead < n; i++) {
            rte_prefetch0(&tbl24_[ip[i + ahead] >> 8]);
            nh[i] = lookup(ip[i]);
        }
        for (; i < n; i++) nh[i] = lookup(ip[i]);
    }

    // The writer. ip need not be masked. add: 1 if the rule is new, 0 if it replaced the
    // next hop, -ENOSPC if the rules or tbl8 groups are exhausted. del: 0, or -ENOENT. Both:
    // -EINVAL for a length over 32.
    int add(uint32_t ip, uint8_t len, NhId nh);
    int del(uint32_t ip, uint8_t len);
    // Brings what add() (or del()) of ip/len will read into the cache: a writer applying
    // a run of updates calls it some updates ahead, so that their cache misses overlap.
    void prefetch(uint32_t ip, uint8_t len, bool add) const;
    uint32_t rules() const { return rules_.size(); }
    // tbl8 groups in use, and those waiting for a grace period.
    uint32_t groups_used() const {
        return n_groups_ - uint32_t(free_.size()) - uint32_t(retired_.size());
    }
    uint32_t groups_retired() const { return uint32_t(retired_.size()); }

  private:
    // Entry: next hop << 7 | depth << 1, or tbl8 group << 8 | ext (the group's first
    // entry, less the flag: the lookup adds the low byte of the address to it).
    static constexpr uint32_t kExt = 1;
    static constexpr unsigned kValueShift = 7;
    static constexpr unsigned kGroupShift = 8;
    static uint32_t entry(NhId nh, unsigned depth) { return nh << kValueShift | depth << 1; }
    static uint32_t ext_entry(uint32_t group) { return group << kGroupShift | kExt; }
    static uint32_t group_of(uint32_t ext_entry) { return ext_entry >> kGroupShift; }
    static unsigned depth_of(uint32_t e) { return e >> 1 & 63; }
    static size_t tbl8_index(uint32_t ext_entry, uint32_t ip) {
        return (ext_entry ^ kExt) | (ip & 0xff);
    }
    static uint32_t load(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static void store(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

    // The entry of the longest rule covering ip/len with a depth in [lo, len), or 0.
    uint32_t covering(uint32_t ip, unsigned len, unsigned lo) const;
    // Writes `e` over the entries of tbl24 [first, first + count) and of their groups
    // whose depth passes `replace`.
    template <class Replace>
    void write24(uint32_t first, uint32_t count, uint32_t e, Replace replace);
    uint32_t *alloc_table(const char *name, size_t entries, int socket) const;
    void free_table(uint32_t *t, size_t entries) const;
    uint32_t alloc_group();
    void retire_group(uint32_t g);
    void count_depth(unsigned len, int delta);

    uint32_t *tbl24_ = nullptr;
    uint32_t *tbl8_ = nullptr;
    uint32_t n_groups_;
    uint32_t max_rules_;
    bool huge_; // EAL has hugepages: the tables are DPDK memory
    rte_rcu_qsbr *rcu_;
    RuleHash rules_;
    uint32_t depth_rules_[33] = {};
    uint64_t depths_ = 0; // bit d: some rule has depth d
    // Per group: rules longer than /24 in it, and the entry of its /24's covering rule.
    std::vector<uint32_t> group_rules_, group_base_;
    std::vector<uint32_t> free_;
    struct Retired {
        uint64_t token;
        uint32_t group;
    };
    std::deque<Retired> retired_;
};

} // namespace vleaf::dp
