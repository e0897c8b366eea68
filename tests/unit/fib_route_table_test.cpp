// The programmer's open-addressing route table against std::map: inserts that grow it,
// erases that shift later slots of a chain back, lookups of keys present and gone; the
// huge-page allocator of its slots.
#include "control/fib/route_table.hpp"
#include "vleaf/huge_pages.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <utility>

using namespace vleaf;
using fib::RouteKey;
using fib::RouteSlot;
using fib::RouteTable;

namespace {

RouteKey key(uint32_t vrf, uint32_t addr, uint8_t len) {
    return RouteKey{vrf, Prefix{IpAddr::v4(addr), len}};
}

std::pair<uint32_t, uint64_t> model_key(const RouteKey &k) {
    return {k.vrf, uint64_t(k.prefix.addr.v4_host()) << 8 | k.prefix.len};
}

TEST(RouteTable, MatchesAMapThroughGrowthAndErases) {
    RouteTable t;
    std::map<std::pair<uint32_t, uint64_t>, NhId> model;
    std::mt19937 rng(7);
    std::vector<RouteKey> keys;
    // Few VRFs and addresses: the same keys come back after erases, chains get long.
    for (int step = 0; step < 200000; step++) {
        RouteKey k = key(rng() % 3, (rng() % 2000) << 8, uint8_t(16 + rng() % 3));
        if (rng() % 3) {
            RouteSlot &s = t.slot(k);
            s.nh = NhId(step);
            s.present = true;
            model[model_key(k)] = NhId(step);
        } else {
            t.erase(k);
            model.erase(model_key(k));
        }
        keys.push_back(k);
    }
    size_t n = 0;
    t.for_each([&](const RouteSlot &s) {
        n++;
        auto it = model.find(model_key(s.key));
        ASSERT_NE(it, model.end());
        EXPECT_EQ(s.nh, it->second);
    });
    EXPECT_EQ(n, model.size());
    for (const RouteKey &k : keys) {
        const RouteSlot *s = std::as_const(t).find(k);
        auto it = model.find(model_key(k));
        ASSERT_EQ(s != nullptr, it != model.end());
        if (s) {
            EXPECT_EQ(s->nh, it->second);
        }
    }
}

TEST(RouteTable, VrfAndLengthAreOfTheKey) {
    RouteTable t;
    t.slot(key(0, 0x0a000000, 8)).nh = 5;
    t.slot(key(1, 0x0a000000, 8)).nh = 6;
    t.slot(key(0, 0x0a000000, 16)).nh = 7;
    EXPECT_EQ(t.find(key(0, 0x0a000000, 8))->nh, 5u);
    EXPECT_EQ(t.find(key(1, 0x0a000000, 8))->nh, 6u);
    EXPECT_EQ(t.find(key(0, 0x0a000000, 16))->nh, 7u);
    EXPECT_EQ(t.find(key(0, 0x0a000000, 24)), nullptr);
    t.erase(key(1, 0x0a000000, 8));
    EXPECT_EQ(t.find(key(1, 0x0a000000, 8)), nullptr);
    EXPECT_EQ(t.find(key(0, 0x0a000000, 8))->nh, 5u);
}

// Past 2 MiB the slots move to a mapping of their own (HugePageAllocator): a table grown
// through that size keeps every route.
TEST(RouteTable, KeepsItsRoutesAcrossTheHugePageSize) {
    RouteTable t;
    constexpr uint32_t kRoutes = 200000; // 512k slots of 48 bytes: 24 MiB
    for (uint32_t k = 0; k < kRoutes; k++) {
        RouteSlot &s = t.slot(key(0, k << 8, 24));
        s.nh = k;
        s.present = true;
    }
    for (uint32_t k = 0; k < kRoutes; k += 2) t.erase(key(0, k << 8, 24));
    for (uint32_t k = 0; k < kRoutes; k++) {
        const RouteSlot *s = t.find(key(0, k << 8, 24));
        ASSERT_EQ(s != nullptr, k % 2 == 1) << k;
        if (s) {
            EXPECT_EQ(s->nh, k);
        }
    }
}

TEST(HugePageAllocator, LargeArraysAreAlignedValueInitializedAndMovable) {
    using Big = std::vector<uint64_t, HugePageAllocator<uint64_t>>;
    constexpr size_t kHuge = HugePageAllocator<uint64_t>::kHugePage;
    Big v(kHuge / sizeof(uint64_t) + 3); // one huge page and a bit: two are mapped
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHuge, 0u);
    for (size_t i = 0; i < v.size(); i += 511) ASSERT_EQ(v[i], 0u) << i;
    v.front() = 1;
    v.back() = 2;
    v.resize(3 * kHuge / sizeof(uint64_t)); // a new mapping; the old one is unmapped
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHuge, 0u);
    EXPECT_EQ(v.front(), 1u);
    EXPECT_EQ(v[kHuge / sizeof(uint64_t) + 2], 2u);
    EXPECT_EQ(v.back(), 0u);
    Big small(16, 7); // under 2 MiB: from the heap
    EXPECT_EQ(small[15], 7u);
}

} // namespace
