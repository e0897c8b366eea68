// Route and next-hop tables shared by all workers, and their single writer.
// IPv4: our own DIR-24-8 (dataplane/dir24.hpp), whose rules live in a hash, so an update
// costs a couple of cache misses instead of rte_rib's tree walks. IPv6: rte_fib6 (trie),
// whose rte_rib6 tree keeps adding 1M routes O(n log n) where rte_lpm6 is O(n^2).
// Readers (workers) never lock: next hops are replaced atomically, and anything a worker
// may still hold (tbl8 groups a delete freed, ECMP groups, deleted next hops, a replaced
// IPv6 table) is reused only after an RCU grace period.
#pragma once

#include "dataplane/dir24.hpp"
#include "dataplane/nexthop.hpp"
#include "dataplane/overlay.hpp"
#include "vleaf/update.hpp"

#include <rte_fib6.h>
#include <rte_rcu_qsbr.h>
#include <rte_rib6.h>

#include <array>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace vleaf::dp {

struct VrfTables {
    Dir24 *v4 = nullptr;
    rte_fib6 *v6 = nullptr; // replaced whole when rebuilt: workers read it with fib6()
    rte_fib6 *fib6() const { return __atomic_load_n(&v6, __ATOMIC_ACQUIRE); }
};

struct FibCounters {
    uint64_t applied = 0;
    uint64_t failed = 0;
    uint64_t routes_v4 = 0;
    uint64_t routes_v6 = 0;
    uint64_t nexthops = 0;
    uint64_t ecmp_groups = 0;
    uint64_t grace_periods = 0;  // begun: one per batch that unlinked anything
    uint64_t grace_waits = 0;    // the writer spun for one not over yet when it needed it
    uint64_t grace_wait_ns = 0;  // and how long in all
    uint64_t nh_reuse_waits = 0; // of those spins, for a next-hop id reused too early
    uint64_t v6_deferred = 0;    // IPv6 route updates applied later instead of waiting
    uint64_t v6_rebuilds = 0;    // IPv6 tables rebuilt after ENOSPC (see Fib::rebuild6)
    uint64_t v6_rebuild_ns = 0;  // the writer's time in them
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
    // Brings what apply() of a route add (or delete) of `p` will read into the cache; the
    // FIB programmer calls it some routes ahead of their apply().
    void prefetch(uint32_t vrf, const Prefix &p, bool add) const {
        if (vrf < vrfs_.size() && vrfs_[vrf].v4 && p.addr.is_v4())
            vrfs_[vrf].v4->prefetch(p.addr.v4_host(), p.len, add);
    }

    const VrfTables *vrf(uint32_t id) const { return id < vrfs_.size() ? &vrfs_[id] : nullptr; }
    const Nh *nexthops() const { return nh_; }
    const EcmpGroup *groups() const { return groups_; }
    const FibCounters &counters() const { return counters_; }
    const Overlay &overlay() const { return *overlay_; }
    Overlay &overlay() { return *overlay_; }

    // For the FIB programmer after each batch, and for the writer when idle: a grace period
    // covering everything unlinked so far begins (if anything was), what no worker can see
    // any more is freed, and deferred IPv6 updates whose wait is over are applied. Returns
    // the errors of deferred updates (apply() returns those applied meanwhile).
    std::string settle();
    // Whether deleted next-hop id `id` is free again (no worker can hold it); never waits.
    bool released(NhId id);
    // IPv6 updates deferred (see v6_deferred_) and not in the table yet.
    size_t v6_backlog() const { return v6_deferred_.size(); }

  private:
    std::string set_nexthop(NhId id, const Nexthop &n);
    std::string del_nexthop(NhId id);
    std::string route(const Update &u, bool add);
    std::string route6(const Update &u, bool add);
    uint32_t alloc_group();
    // Gives the retirements since the last token that may have one (and an IPv6 delete) a
    // token; returns the newest.
    uint64_t take_token();
    bool over(uint64_t token); // never waits
    // Frees whatever no worker can see any more; never waits.
    void reclaim();
    // Spins until the grace period `token` is over (counted); `nh`: for a next-hop reuse.
    void wait(uint64_t token, bool nh);
    // Retired things wait here, oldest first, with the token of the grace period that
    // covers them: 0 until settle() or a reuse that cannot wait for it takes one (one token
    // per batch, not per retirement: each bumps the token workers read).
    struct Retiree {
        uint64_t token;
        uint64_t after; // a deleted next hop: the deferred IPv6 updates that may name it
        uint32_t id;
        bool group; // an ECMP group slot, else a next-hop id
    };
    std::deque<Retiree> retirees_;
    size_t untokened_ = 0; // at the back of retirees_
    void retire(uint32_t id, bool group, uint64_t after = 0);
    uint64_t last_token_ = 0;
    uint64_t released_token_ = 0; // the newest token known to be over
    // rte_fib6 frees a tbl8 group on delete and may hand it to the next add at once; a
    // worker midway through a lookup could then read another prefix's next hop. So an
    // IPv6 add comes after the grace period that covers the last IPv6 delete. The FIB
    // programmer sends adds before deletes within a batch, and settle() at its end starts
    // that grace period: the next batch's adds find it over, unless the worker was slow. (Dir24
    // defers its own tbl8 groups.) Deleted next hops and replaced ECMP groups keep their contents
    // (a worker that looked up the old route still forwards it the old way) until reused.
    bool v6_deleted_ = false; // since the last token
    bool v6_pending_ = false; // v6_token_ not known to be over
    uint64_t v6_token_ = 0;
    bool v6_blocked(); // an IPv6 add must wait; never waits itself
    // The writer does not wait for that: an IPv6 update that would wait, and every one after
    // it (their order matters), waits here and is applied by settle() or the next IPv6
    // update once the grace period is over. A next hop deleted meanwhile may be what one of
    // them adds: its own grace period begins only once they are in the table.
    std::deque<Update> v6_deferred_;
    uint64_t v6_queued_ = 0, v6_applied_ = 0; // deferred so far, and applied of them
    // Applies deferred updates while no add must wait; all of them if `wait` (spinning).
    void apply_deferred_v6(bool wait);
    std::string deferred_errors_; // of deferred updates, not yet returned
    // DPDK 22.11's trie skips its tbl8 reservation when a new route has the same next
    // hop as its parent route, yet releases one when that route is deleted:
    // the counter underflows and every later add of a long prefix fails with ENOSPC.
    // Such a route is added first with an alias of its next hop (a copy in a spare slot,
    // so packets forward the same; in a table no worker reads yet, any other value), which
    // takes the accounted path; the second add then only rewrites the next hop.
    static uint64_t parent_nh(rte_rib6 *rib, const uint8_t *ip, uint8_t len);
    NhId alias(NhId nh);
    NhId alias_cursor_ = kMaxNh - 1;
    // Adds a route `t` does not hold yet; `published`: workers may read `t`.
    int add6(rte_fib6 *t, const uint8_t *ip, uint8_t len, NhId nh, bool published);
    // A route added the accounted way gets nothing back when deleted (trie_modify looks up
    // the deleted route itself where it wants its parent's depth), so adds of prefixes
    // longer than /24 fail with ENOSPC once a VRF has seen about num_tbl8/5 /64 inserts,
    // however few are live. On that ENOSPC the VRF gets a fresh table holding its live
    // routes, published whole by one pointer store; the old one is freed after a grace
    // period. Returns why not, or "".
    std::string rebuild6(uint32_t vrf);
    rte_fib6 *create6(uint32_t vrf);
    std::vector<uint32_t> max_v6_; // per VRF
    int socket_;
    uint32_t v6_generation_ = 0; // of the newest table, for a name no live table has
    struct OldTable {
        uint64_t token;
        rte_fib6 *t;
    };
    std::deque<OldTable> old_v6_; // replaced, oldest first, freed after their grace period

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
