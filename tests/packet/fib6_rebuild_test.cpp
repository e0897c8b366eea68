// DPDK 22.11's rte_fib6 keeps the tbl8 reservation of every deleted route, so a table of
// num_tbl8 groups takes only about num_tbl8/5 /64 inserts in its life, however few routes
// are live. dp::Fib then rebuilds the VRF's table from its live routes. Here a small
// table (max_routes_v6 1024: ~205 /64 inserts) is churned far past that: no add may fail,
// and every lookup must match a brute-force longest-prefix match of the live routes. A
// replaced table must outlive the grace period of readers that may still hold it.
#include "dataplane/fib.hpp"
#include "tests/packet/eal_main.hpp"

#include <gtest/gtest.h>

#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <map>
#include <memory>
#include <random>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr uint32_t kMaxV6 = 1024;
constexpr NhId kNh = kFirstDynamicNh; // kNh + k forwards out of port k, k < kPorts
constexpr unsigned kPorts = 4;

// VRF 0's tables with a next hop per port, written from this thread; readers are RCU
// thread 0, offline unless a test says otherwise.
struct Tables {
    rte_rcu_qsbr *rcu = nullptr;
    std::unique_ptr<dp::Fib> fib;
    std::map<Prefix, NhId> live; // what the IPv6 table must hold

    Tables() {
        rcu = static_cast<rte_rcu_qsbr *>(rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(1), 64));
        rte_rcu_qsbr_init(rcu, 1);
        rte_rcu_qsbr_thread_register(rcu, 0);
        fib = std::make_unique<dp::Fib>(std::vector<dp::Fib::VrfSpec>{{0, 1024, kMaxV6}}, rcu, 0);
        for (unsigned k = 0; k < kPorts; k++) {
            Nexthop n;
            n.kind = NhKind::Forward;
            n.port = uint16_t(k);
            EXPECT_EQ(fib->apply(Update::nexthop_set(kNh + k, n)), "");
        }
    }
    ~Tables() {
        fib.reset();
        rte_free(rcu);
    }
    Tables(const Tables &) = delete;
    Tables &operator=(const Tables &) = delete;

    std::string add(const Prefix &p, NhId nh) {
        live[p] = nh;
        return fib->apply(Update::route_add(0, p, nh));
    }
    std::string del(Prefix p) { // a copy: `p` may be a key of `live`
        live.erase(p);
        return fib->apply(Update::route_del(0, p));
    }
};

// fd00:<0-3>:<0-3>:<0-15>:<0-3><random>::<random>: dense enough that routes nest.
IpAddr random_addr(std::mt19937 &rng) {
    uint8_t b[16] = {0xfd,
                     0,
                     0,
                     uint8_t(rng() % 4),
                     0,
                     uint8_t(rng() % 4),
                     0,
                     uint8_t(rng() % 16),
                     uint8_t(rng() % 4),
                     uint8_t(rng()),
                     0,
                     0,
                     0,
                     0,
                     0,
                     uint8_t(rng())};
    return IpAddr::v6(b);
}

uint64_t lookup(rte_fib6 *t, const IpAddr &a) {
    uint8_t ip[1][16];
    std::memcpy(ip[0], a.bytes.data(), 16);
    uint64_t nh = UINT64_MAX;
    rte_fib6_lookup_bulk(t, ip, &nh, 1);
    return nh;
}

uint64_t longest_match(const std::map<Prefix, NhId> &routes, const IpAddr &a) {
    int best = -1;
    uint64_t nh = kNhNoRoute;
    for (const auto &[p, n] : routes)
        if (p.len > best && p.contains(a)) {
            best = p.len;
            nh = n;
        }
    return nh;
}

// Looks up an address in each route (random host bits) and random ones in fd00::/16;
// returns how many of them `t` gets wrong.
size_t wrong_lookups(rte_fib6 *t, const std::map<Prefix, NhId> &routes, std::mt19937 &rng) {
    std::vector<IpAddr> probes;
    for (const auto &e : routes) {
        IpAddr a = e.first.addr;
        for (unsigned bit = e.first.len; bit < 128; bit++)
            if (rng() % 2) a.bytes[bit / 8] |= uint8_t(0x80 >> bit % 8);
        probes.push_back(a);
    }
    for (unsigned k = 0; k < 500; k++) probes.push_back(random_addr(rng));
    size_t wrong = 0;
    for (const IpAddr &a : probes) wrong += lookup(t, a) != longest_match(routes, a);
    return wrong;
}

TEST(Fib6Rebuild, ChurnFarPastTheTbl8ReservationLosesNoAddAndLooksUpRight) {
    constexpr size_t kOps = 6000, kMaxLive = 60, kBatch = 32;
    constexpr uint8_t kLens[] = {32, 48, 56, 64, 64, 64, 72, 128};
    Tables t;
    std::mt19937 rng(3);
    ASSERT_EQ(t.add(*Prefix::parse("fd00::/16"), kNh), ""); // the parent of all, kept
    size_t adds = 0, errors = 0;
    std::string first_error;
    for (size_t op = 1; op <= kOps; op++) {
        std::string err;
        if (t.live.size() < kMaxLive && (rng() % 100 < 55 || t.live.size() == 1)) {
            // Next hops of 4: many routes have their parent's, which dp::Fib adds twice.
            Prefix p = Prefix{random_addr(rng), kLens[rng() % std::size(kLens)]}.masked();
            err = t.add(p, kNh + rng() % kPorts);
            adds++;
        } else {
            auto it = std::next(t.live.begin(), long(1 + rng() % (t.live.size() - 1)));
            err = t.del(it->first);
        }
        if (!err.empty() && errors++ == 0) first_error = err;
        if (op % kBatch == 0) { // as the FIB programmer does
            EXPECT_EQ(t.fib->settle(), "");
        }
        if (op % 1000 == 0) {
            EXPECT_EQ(wrong_lookups(t.fib->vrf(0)->fib6(), t.live, rng), 0u) << "after " << op;
        }
    }
    EXPECT_EQ(t.fib->settle(), "");
    const auto &fc = t.fib->counters();
    std::printf("%zu ops (%zu adds) with at most %zu routes live in a table for %u: %lu "
                "rebuilds, %.1f ms each\n",
                kOps, adds, kMaxLive, kMaxV6, (unsigned long)fc.v6_rebuilds,
                fc.v6_rebuilds ? double(fc.v6_rebuild_ns) / 1e6 / double(fc.v6_rebuilds) : 0.0);
    EXPECT_EQ(errors, 0u) << "first: " << first_error;
    EXPECT_EQ(fc.failed, 0u);
    EXPECT_EQ(fc.routes_v6, t.live.size());
    EXPECT_GE(fc.v6_rebuilds, 3u) << "the churn did not exhaust the table";
    EXPECT_EQ(wrong_lookups(t.fib->vrf(0)->fib6(), t.live, rng), 0u);
}

// A worker that looked up in the old table may still be reading it: the old table stays
// until the grace period begun when the new one was published is over, and goes then.
// Tables are named vleaf_fib6_<vrf>.<n>, n counting the tables dp::Fib made.
TEST(Fib6Rebuild, ReplacedTableOutlivesItsReaders) {
    Tables t;
    std::mt19937 rng(4);
    ASSERT_EQ(t.add(*Prefix::parse("fd00::/16"), kNh), "");
    auto p64 = [](unsigned k) {
        uint8_t b[16] = {0xfd, 0, 0, 9, uint8_t(k >> 8), uint8_t(k)};
        return Prefix{IpAddr::v6(b), 64};
    };
    // Adds and deletes, 8 routes live, no reader online: rebuilds come every `period` adds.
    unsigned next = 0;
    auto churn = [&] {
        ASSERT_EQ(t.add(p64(next), kNh + 1), "");
        if (next >= 8) {
            ASSERT_EQ(t.del(p64(next - 8)), "");
        }
        next++;
        ASSERT_EQ(t.fib->settle(), "");
    };
    unsigned at[3] = {};
    for (uint64_t r = 1; r <= 2; r++) {
        while (t.fib->counters().v6_rebuilds < r && next < 5000) churn();
        ASSERT_EQ(t.fib->counters().v6_rebuilds, r);
        at[r] = next;
    }
    const unsigned period = at[2] - at[1];
    for (unsigned k = 0; k + 10 < period; k++) churn();
    ASSERT_EQ(t.fib->counters().v6_rebuilds, 2u);
    ASSERT_EQ(rte_fib6_find_existing("vleaf_fib6_0.1"), nullptr) << "not freed with no reader";
    rte_fib6 *old = t.fib->vrf(0)->fib6();
    ASSERT_EQ(rte_fib6_find_existing("vleaf_fib6_0.2"), old);

    rte_rcu_qsbr_thread_online(t.rcu, 0); // a reader that may hold `old` from now on
    // Adds only (an add after a delete would wait for this reader), up to the next rebuild.
    for (unsigned k = 0; t.fib->counters().v6_rebuilds == 2 && k < 40; k++)
        ASSERT_EQ(t.add(p64(next++), kNh + 2), "");
    ASSERT_EQ(t.fib->counters().v6_rebuilds, 3u);
    rte_fib6 *fresh = t.fib->vrf(0)->fib6();
    EXPECT_NE(fresh, old);
    EXPECT_EQ(t.fib->settle(), "");
    EXPECT_EQ(rte_fib6_find_existing("vleaf_fib6_0.2"), old) << "freed under a reader";
    auto in_old = t.live;
    in_old.erase(p64(next - 1)); // the add that needed the rebuild went to `fresh` only
    EXPECT_EQ(wrong_lookups(old, in_old, rng), 0u) << "the old table changed under a reader";
    EXPECT_EQ(wrong_lookups(fresh, t.live, rng), 0u);

    rte_rcu_qsbr_quiescent(t.rcu, 0);
    EXPECT_EQ(t.fib->settle(), "");
    EXPECT_EQ(rte_fib6_find_existing("vleaf_fib6_0.2"), nullptr) << "kept after its grace period";
    EXPECT_EQ(rte_fib6_find_existing("vleaf_fib6_0.3"), fresh);
    rte_rcu_qsbr_thread_offline(t.rcu, 0);
    EXPECT_EQ(t.fib->counters().failed, 0u);
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog, 512); });
}
