// Route and next-hop tables shared by all workers, and their single writer.
// IPv4: our own DIR-24-8 (dataplane/dir24.hpp), whose rules live in a hash, so an update
// costs a couple of cache misses instead of rte_rib's tree walks. IPv6: rte_fib6 (trie),
// whose rte_rib6 tree keeps adding 1M routes O(n log n) where rte_lpm6 is O(n^2).
// Readers (workers) never lock: next hops are replaced atomically, and anything a worker
// may still hold (tbl8 groups a delete freed, ECMP groups, deleted next hops) is reused
// only after an RCU grace period.
#pragma once

#include "dataplane/dir24.hpp"
#include "dataplane/nexthop.hpp"
#include "dataplane/overlay.hpp"
#include "vleaf/update.hpp"

#include <rte_fib6.h>
#include <rte_rcu_qsbr.h>
#include <rte_rib6.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace vleaf::dp {

struct VrfTables {
    Dir24 *v4 = nullptr;
    rte_fib6 *v6 = nullptr;
};

struct FibCounters {
    uint64_t applied = 0;
    uint64_t failed = 0;
    uint64_t routes_v4 = 0;
    uint64_t routes_v6 = 0;
    uint64_t nexthops = 0;
    uint64_t ecmp_groups = 0;
    uint64_t grace_periods = 0; // retirements made reusable
    uint64_t grace_waits = 0;   // of them, those not yet over when needed: the writer spun
};

class Fib {
  public:
    struct VrfSpec {
        uint32_t id;
        uint32_t max_v4;
        uint32_t max_v6;
    };
    // rcu: the QSBR variable workers report on; writer_thread: not used as a reader id.
    Fib(const std::vector<VrfSpec> &vrfs, rte_rcu_qsbr *rcu, int socket);
    ~Fib();
    Fib(const Fib &) = delete;
    Fib &operator=(const Fib &) = delete;

    // The source MAC that Forward next hops out of `port` write; before any next hop.
    void set_port_mac(uint16_t port, const rte_ether_addr &mac);

    // Applies one update; returns an error text, empty on success.
    std::string apply(const Update &u);

    const VrfTables *vrf(uint32_t id) const { return id < vrfs_.size() ? &vrfs_[id] : nullptr; }
    const Nh *nexthops() const { return nh_; }
    const EcmpGroup *groups() const { return groups_; }
    const FibCounters &counters() const { return counters_; }
    const Overlay &overlay() const { return *overlay_; }
    Overlay &overlay() { return *overlay_; }

  private:
    std::string set_nexthop(NhId id, const Nexthop &n);
    std::string del_nexthop(NhId id);
    std::string route(const Update &u, bool add);
    uint32_t alloc_group();
    // Makes what was unlinked reusable once no worker can still see it: at once if the
    // grace period that began with the last retirement is over (workers report every
    // loop, so by the next batch it usually is), else after spinning for it.
    void quiesce();
    // After anything is unlinked: the grace period that covers it begins.
    void retired() { retired_token_ = rte_rcu_qsbr_start(rcu_); }
    uint64_t retired_token_ = 0;
    // rte_fib6 frees a tbl8 group on delete and may hand it to the next add at once; a
    // worker midway through a lookup could then read another prefix's next hop. Deleted
    // next hops and replaced ECMP groups keep their contents (a worker that looked up
    // the old route still forwards it the old way) until their ids are reused. So
    // deletes only retire things, and one grace period separates any retirements from
    // the next reuse: the FIB programmer sends adds before deletes within a batch, so
    // that is at most one grace period per batch. (Dir24 defers its own tbl8 groups.)
    bool deleted_v6_since_quiesce_ = false;
    // DPDK 22.11's trie skips its tbl8 reservation when a new route has the same next
    // hop as its parent route, yet releases one when that route is deleted:
    // the counter underflows and every later add of a long prefix fails with ENOSPC.
    // Such a route is added first with an alias of its next hop (a copy in a spare slot,
    // so packets forward the same), which takes the accounted path; the second add then
    // only rewrites the next hop.
    static uint64_t parent_nh(rte_rib6 *rib, const uint8_t *ip, uint8_t len);
    NhId alias(NhId nh);
    NhId alias_cursor_ = kMaxNh - 1;
    std::vector<NhId> retired_nh_;
    std::vector<uint32_t> retired_groups_;

    std::vector<VrfTables> vrfs_;
    std::vector<std::unique_ptr<Dir24>> v4_;
    rte_rcu_qsbr *rcu_;
    std::unique_ptr<Overlay> overlay_;
    Nh *nh_ = nullptr;
    EcmpGroup *groups_ = nullptr;
    std::vector<uint32_t> free_groups_;
    std::vector<uint8_t> nh_used_;
    FibCounters counters_;
    std::array<rte_ether_addr, RTE_MAX_ETHPORTS> port_mac_{};
};

} // namespace vleaf::dp
