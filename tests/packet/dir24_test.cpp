// The IPv4 DIR-24-8 table (dataplane/dir24.hpp) against a brute-force longest-prefix
// match over the same rules, after random adds, replaces and deletes of overlapping
// prefixes of every length (/0 and /32 included); tbl8 groups created, collapsed and
// reused only after a grace period; and a reader thread looking up while the writer
// churns more-specific routes, which must never see a half-written entry.
#include "dataplane/dir24.hpp"
#include "tests/packet/eal_main.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <rte_malloc.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

using namespace vleaf;
using namespace vleaf::test;

namespace {

// 32-bit draws (std::mt19937 returns unsigned long).
struct Rng {
    std::mt19937 g;
    explicit Rng(unsigned seed) : g(seed) {}
    uint32_t operator()() { return uint32_t(g()); }
};

uint32_t mask(unsigned len) {
    return len ? ~uint32_t(0) << (32 - len) : 0;
}

struct Rcu {
    rte_rcu_qsbr *v;
    explicit Rcu(unsigned threads) {
        size_t sz = rte_rcu_qsbr_get_memsize(threads);
        v = static_cast<rte_rcu_qsbr *>(rte_zmalloc("test_rcu", sz, RTE_CACHE_LINE_SIZE));
        rte_rcu_qsbr_init(v, threads);
    }
    ~Rcu() { rte_free(v); }
};

// Rules by (length, masked address); lookups by trying every length, longest first.
struct Reference {
    std::map<std::pair<unsigned, uint32_t>, NhId> rules;
    NhId lookup(uint32_t ip) const {
        for (int len = 32; len >= 0; len--) {
            auto it = rules.find({unsigned(len), ip & mask(unsigned(len))});
            if (it != rules.end()) return it->second;
        }
        return kNhNoRoute;
    }
};

// Compares the two on the first, last and a random address of every rule, the addresses
// just outside each rule, and random addresses, through lookup() and lookup_bulk().
void compare(const dp::Dir24 &t, const Reference &ref, Rng &rng,
             const std::vector<uint32_t> &anchors) {
    std::vector<uint32_t> probes;
    for (auto &[k, nh] : ref.rules) {
        uint32_t first = k.second, last = first | ~mask(k.first);
        probes.insert(probes.end(),
                      {first, last, first | (rng() & ~mask(k.first)), first - 1, last + 1});
    }
    for (int k = 0; k < 2000; k++)
        probes.push_back(anchors[rng() % anchors.size()] ^ (rng() >> (rng() % 32)));
    probes.push_back(0);
    probes.push_back(~uint32_t(0));
    std::vector<uint64_t> bulk(probes.size());
    t.lookup_bulk(probes.data(), bulk.data(), unsigned(probes.size()));
    for (size_t i = 0; i < probes.size(); i++) {
        NhId want = ref.lookup(probes[i]);
        ASSERT_EQ(t.lookup(probes[i]), want) << "address " << std::hex << probes[i];
        ASSERT_EQ(bulk[i], want) << "bulk, address " << std::hex << probes[i];
    }
}

TEST(Dir24, RandomUpdatesMatchBruteForceLongestPrefixMatch) {
    Rcu rcu(1);
    dp::Dir24 t(1 << 14, 8192, rcu.v, SOCKET_ID_ANY);
    Reference ref;
    Rng rng(7);
    // Few anchors, so that prefixes of all lengths pile up over each other.
    std::vector<uint32_t> anchors;
    anchors.reserve(6);
    for (int k = 0; k < 6; k++) anchors.push_back(rng());
    auto random_len = [&] {
        unsigned r = rng() % 1000;
        if (r < 3) return 0u;            // the default route: rewrites all 16M entries
        if (r < 8) return 1 + rng() % 7; // /1-/7: at least 128k entries each
        if (r < 400) return 8 + rng() % 17;
        return 25 + rng() % 8; // tbl8 groups
    };
    size_t adds = 0, replaces = 0, dels = 0, missing = 0, max_groups = 0;
    for (int op = 1; op <= 30000; op++) {
        if (rng() % 100 < 58 || ref.rules.empty()) {
            unsigned len = random_len();
            uint32_t ip = (anchors[rng() % anchors.size()] ^ (rng() >> (rng() % 32))) & mask(len);
            NhId nh = kFirstDynamicNh + rng() % 40;
            bool fresh = ref.rules.insert_or_assign({len, ip}, nh).second;
            ASSERT_EQ(t.add(ip | (rng() & ~mask(len)), uint8_t(len), nh), fresh ? 1 : 0);
            (fresh ? adds : replaces)++;
        } else if (rng() % 20 == 0) { // a rule that is not there
            unsigned len = random_len();
            uint32_t ip = rng() & mask(len);
            if (!ref.rules.count({len, ip})) {
                ASSERT_EQ(t.del(ip, uint8_t(len)), -ENOENT);
                missing++;
            }
        } else {
            auto it = std::next(ref.rules.begin(), long(rng() % ref.rules.size()));
            ASSERT_EQ(t.del(it->first.second, uint8_t(it->first.first)), 0);
            ref.rules.erase(it);
            dels++;
        }
        max_groups = std::max<size_t>(max_groups, t.groups_used());
        ASSERT_EQ(t.rules(), ref.rules.size());
        if (op % 1000 == 0) {
            SCOPED_TRACE("op " + std::to_string(op));
            ASSERT_NO_FATAL_FAILURE(compare(t, ref, rng, anchors));
        }
    }
    std::printf("%zu adds, %zu replaces, %zu deletes, %zu deletes of absent rules; %zu rules, "
                "%u tbl8 groups at the end, %zu at most\n",
                adds, replaces, dels, missing, ref.rules.size(), t.groups_used(), max_groups);
    EXPECT_GT(max_groups, 50u);
    // Everything deleted, longest first this time: no rule, no group, no route left.
    while (!ref.rules.empty()) {
        auto it = std::prev(ref.rules.end());
        ASSERT_EQ(t.del(it->first.second, uint8_t(it->first.first)), 0);
        ref.rules.erase(it);
    }
    EXPECT_EQ(t.rules(), 0u);
    EXPECT_EQ(t.groups_used(), 0u);
    compare(t, ref, rng, anchors);
}

TEST(Dir24, DeletesUncoverShorterPrefixesAndGroupsCollapse) {
    Rcu rcu(1);
    dp::Dir24 t(1024, 16, rcu.v, SOCKET_ID_ANY);
    const uint32_t net = 0x0a010200; // 10.1.2.0
    EXPECT_EQ(t.add(0, 0, 10), 1);
    EXPECT_EQ(t.add(net, 16, 16), 1);
    EXPECT_EQ(t.add(net, 24, 24), 1);
    EXPECT_EQ(t.add(net | 0x80, 25, 25), 1);
    EXPECT_EQ(t.add(net | 0x81, 32, 32), 1);
    EXPECT_EQ(t.groups_used(), 1u);
    EXPECT_EQ(t.lookup(net | 0x81), 32u);
    EXPECT_EQ(t.lookup(net | 0x82), 25u);
    EXPECT_EQ(t.lookup(net | 0x01), 24u);
    EXPECT_EQ(t.lookup(net + 0x100), 16u);
    EXPECT_EQ(t.lookup(0x0b000000), 10u);
    // A /24 deleted under its /25 and /32: the group keeps them, its other half goes to /16.
    EXPECT_EQ(t.del(net, 24), 0);
    EXPECT_EQ(t.lookup(net | 0x01), 16u);
    EXPECT_EQ(t.lookup(net | 0x81), 32u);
    EXPECT_EQ(t.del(net | 0x81, 32), 0);
    EXPECT_EQ(t.lookup(net | 0x81), 25u);
    // The last longer prefix: the group goes, the /24 entry points at the /16 again.
    EXPECT_EQ(t.del(net | 0x80, 25), 0);
    EXPECT_EQ(t.groups_used(), 0u);
    EXPECT_EQ(t.groups_retired(), 1u);
    EXPECT_EQ(t.lookup(net | 0x81), 16u);
    EXPECT_EQ(t.del(net, 16), 0);
    EXPECT_EQ(t.lookup(net), 10u);
    EXPECT_EQ(t.del(0, 0), 0);
    EXPECT_EQ(t.lookup(net), kNhNoRoute);
    EXPECT_EQ(t.del(0, 0), -ENOENT);
    EXPECT_EQ(t.add(0, 33, 5), -EINVAL);
    // A /32 over the default route only.
    EXPECT_EQ(t.add(0xffffffff, 32, 7), 1);
    EXPECT_EQ(t.lookup(0xffffffff), 7u);
    EXPECT_EQ(t.lookup(0xfffffffe), kNhNoRoute);
}

TEST(Dir24, GroupsAreReusedOnlyAfterAGracePeriod) {
    Rcu rcu(1);
    ASSERT_EQ(rte_rcu_qsbr_thread_register(rcu.v, 0), 0);
    rte_rcu_qsbr_thread_online(rcu.v, 0);
    dp::Dir24 t(1024, 2, rcu.v, SOCKET_ID_ANY);
    EXPECT_EQ(t.add(0x0a000080, 25, 5), 1);
    EXPECT_EQ(t.add(0x0a000180, 25, 5), 1);
    EXPECT_EQ(t.add(0x0a000280, 25, 5), -ENOSPC); // both groups in use
    EXPECT_EQ(t.rules(), 2u);
    EXPECT_EQ(t.del(0x0a000080, 25), 0);
    EXPECT_EQ(t.groups_retired(), 1u);      // the reader has not been quiescent since
    EXPECT_EQ(t.add(0x0a000000, 24, 6), 1); // a /24 needs no group
    rte_rcu_qsbr_quiescent(rcu.v, 0);
    EXPECT_EQ(t.add(0x0a000280, 25, 5), 1);
    EXPECT_EQ(t.groups_retired(), 0u);
    EXPECT_EQ(t.groups_used(), 2u);
    EXPECT_EQ(t.lookup(0x0a000281), 5u);
    EXPECT_EQ(t.lookup(0x0a000001), 6u);
    rte_rcu_qsbr_thread_offline(rcu.v, 0);
    rte_rcu_qsbr_thread_unregister(rcu.v, 0);
}

// Every prefix in 10.1/16 leads to next hop 5 and every one in 10.2/16 to 6, their /16s
// stay: a reader that sees anything else saw a half-done update.
TEST(Dir24, ReaderNeverSeesAHalfWrittenTable) {
    Rcu rcu(1);
    dp::Dir24 t(1 << 16, 4096, rcu.v, SOCKET_ID_ANY);
    ASSERT_EQ(t.add(0x0a010000, 16, 5), 1);
    ASSERT_EQ(t.add(0x0a020000, 16, 6), 1);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> lookups{0}, wrong{0};
    std::thread reader([&] {
        rte_rcu_qsbr_thread_register(rcu.v, 0);
        rte_rcu_qsbr_thread_online(rcu.v, 0);
        Rng rng(3);
        uint32_t ip[32];
        uint64_t nh[32];
        while (!stop.load(std::memory_order_relaxed)) {
            for (uint32_t &a : ip) a = 0x0a010000u + ((rng() & 1) << 16) + (rng() & 0xffff);
            t.lookup_bulk(ip, nh, 32);
            for (unsigned i = 0; i < 32; i++) wrong += nh[i] != ((ip[i] >> 16 & 3) == 1 ? 5u : 6u);
            lookups += 32;
            rte_rcu_qsbr_quiescent(rcu.v, 0);
        }
        rte_rcu_qsbr_thread_offline(rcu.v, 0);
        rte_rcu_qsbr_thread_unregister(rcu.v, 0);
    });
    Rng rng(9);
    std::vector<std::pair<uint32_t, uint8_t>> live;
    for (int op = 0; op < 300000; op++) {
        if (live.size() < 3000 && (rng() % 2 || live.empty())) {
            uint8_t len = uint8_t(17 + rng() % 16);
            uint32_t ip = (0x0a010000u + ((rng() & 1) << 16) + (rng() & 0xffff)) & mask(len);
            if (t.add(ip, len, (ip >> 16 & 3) == 1 ? 5 : 6) == 1) live.emplace_back(ip, len);
        } else {
            size_t i = rng() % live.size();
            ASSERT_EQ(t.del(live[i].first, live[i].second), 0);
            live[i] = live.back();
            live.pop_back();
        }
    }
    stop = true;
    reader.join();
    std::printf("%lu lookups during 300k updates, %lu wrong\n", (unsigned long)lookups.load(),
                (unsigned long)wrong.load());
    EXPECT_GT(lookups.load(), 0u);
    EXPECT_EQ(wrong.load(), 0u);
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog, 256); });
}
