#include "control/services/maglev.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

using namespace vleaf;
using namespace vleaf::svc;

namespace {

std::vector<Backend> pods(unsigned n, bool v6 = false) {
    std::vector<Backend> out;
    for (unsigned i = 0; i < n; i++) {
        std::string ip =
            v6 ? "fd00:10::" + std::to_string(i + 1)
               : "10.244." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
        out.push_back({*IpAddr::parse(ip), 8080, 1});
    }
    return out;
}

std::vector<unsigned> shares(const std::vector<uint32_t> &table, size_t n) {
    std::vector<unsigned> count(n);
    for (uint32_t b : table) count.at(b)++;
    return count;
}

// The table with indices replaced by the backends they name, for comparing across orders.
std::vector<std::pair<IpAddr, uint16_t>> resolved(const std::vector<uint32_t> &table,
                                                  const std::vector<Backend> &bs) {
    std::vector<std::pair<IpAddr, uint16_t>> out;
    out.reserve(table.size());
    for (uint32_t b : table) out.emplace_back(bs.at(b).addr, bs.at(b).port);
    return out;
}

} // namespace

TEST(Maglev, EqualWeightsShareWithinOnePercent) {
    for (unsigned n : {3u, 7u, 100u}) {
        for (bool v6 : {false, true}) {
            auto bs = pods(n, v6);
            auto table = build(kDefaultTableSize, bs);
            ASSERT_EQ(table.size(), kDefaultTableSize);
            double fair = double(kDefaultTableSize) / n;
            for (unsigned c : shares(table, n))
                EXPECT_NEAR(c, fair, fair * 0.01) << n << " backends";
        }
    }
}

TEST(Maglev, WeightsAreProportional) {
    auto bs = pods(4);
    bs[0].weight = 1, bs[1].weight = 2, bs[2].weight = 3, bs[3].weight = 10;
    auto count = shares(build(kDefaultTableSize, bs), bs.size());
    for (size_t i = 0; i < bs.size(); i++) {
        double want = kDefaultTableSize * bs[i].weight / 16.0;
        EXPECT_NEAR(count[i], want, want * 0.01) << "backend " << i;
    }
    // A zero weight drains the backend entirely.
    bs[3].weight = 0;
    EXPECT_EQ(shares(build(kDefaultTableSize, bs), bs.size())[3], 0u);
}

TEST(Maglev, RemovingOneOfNMovesAboutOneNth) {
    for (unsigned n : {7u, 100u}) {
        auto bs = pods(n);
        auto before = resolved(build(kDefaultTableSize, bs), bs);
        auto gone = bs[n / 2];
        bs.erase(bs.begin() + n / 2);
        auto after = resolved(build(kDefaultTableSize, bs), bs);
        unsigned moved = 0, survivors_moved = 0;
        for (size_t s = 0; s < before.size(); s++) {
            if (before[s] == after[s]) continue;
            moved++;
            if (before[s].first != gone.addr) survivors_moved++;
        }
        double frac = double(moved) / kDefaultTableSize;
        // The removed backend's slots must all move (1/N). Maglev also reshuffles some
        // survivors' slots, more as N/M grows (measured 1.55% in all for N = 100, M = 65537).
        EXPECT_GE(frac, 1.0 / n * 0.99) << n;
        EXPECT_LE(frac, 2.0 / n) << n;
        EXPECT_LE(double(survivors_moved) / kDefaultTableSize, 1.0 / n) << n;
    }
}

TEST(Maglev, OrderDoesNotMatter) {
    auto bs = pods(50);
    bs[3].weight = 4;
    bs[9].port = 9090;
    auto want = resolved(build(kDefaultTableSize, bs), bs);
    std::mt19937 rng(42);
    for (int round = 0; round < 5; round++) {
        std::shuffle(bs.begin(), bs.end(), rng);
        EXPECT_EQ(resolved(build(kDefaultTableSize, bs), bs), want) << "round " << round;
    }
}

// Pins the table to known values so that any change to the hashing, which would break
// consistency between instances running different versions, fails here.
TEST(Maglev, TableIsStableAcrossBuilds) {
    auto bs = pods(3);
    auto t = build(kDefaultTableSize, bs);
    uint64_t h = 0;
    for (uint32_t b : t) h = mix64(h ^ b);
    EXPECT_EQ(t, build(kDefaultTableSize, bs));
    EXPECT_EQ(h, 28679880787419798u);
}

TEST(Maglev, TableSizeMustBePrime) {
    auto bs = pods(3);
    EXPECT_THROW(build(65536, bs), std::invalid_argument);
    EXPECT_THROW(build(65539 * 3, bs), std::invalid_argument);
    EXPECT_THROW(build(65521, bs), std::invalid_argument); // prime but below 65537
    EXPECT_EQ(build(131071, bs).size(), 131071u);
    EXPECT_TRUE(is_prime(65537));
    EXPECT_FALSE(is_prime(65535));
}

TEST(Maglev, EmptyAndDuplicateBackendSets) {
    auto t = build(kDefaultTableSize, {});
    ASSERT_EQ(t.size(), kDefaultTableSize);
    EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint32_t b) { return b == kNoBackend; }));
    auto bs = pods(2);
    bs[0].weight = bs[1].weight = 0;
    t = build(kDefaultTableSize, bs);
    EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint32_t b) { return b == kNoBackend; }));
    bs = pods(2);
    bs.push_back(bs[0]);
    EXPECT_THROW(build(kDefaultTableSize, bs), std::invalid_argument);
}

TEST(Maglev, FlowHashIsFixedAndSpreads) {
    // Fixed values: two instances (or versions) must pick the same slot for the same flow.
    EXPECT_EQ(flow_hash4(0x0a000001, 0x0a000002, 6, 1234, 80), 783588316u);
    uint8_t a[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    EXPECT_EQ(flow_hash6(a, b, 17, 5353, 53), 4172788755u);
    // Every field changes the hash.
    uint32_t base = flow_hash4(1, 2, 6, 3, 4);
    EXPECT_NE(flow_hash4(9, 2, 6, 3, 4), base);
    EXPECT_NE(flow_hash4(1, 9, 6, 3, 4), base);
    EXPECT_NE(flow_hash4(1, 2, 17, 3, 4), base);
    EXPECT_NE(flow_hash4(1, 2, 6, 9, 4), base);
    EXPECT_NE(flow_hash4(1, 2, 6, 3, 9), base);
    EXPECT_NE(flow_hash4(1, 2, 6, 3, 4), flow_hash4(2, 1, 6, 4, 3));
    // Sequential client ports spread evenly over 7 backends' slots.
    auto bs = pods(7);
    auto table = build(kDefaultTableSize, bs);
    std::vector<unsigned> hits(7);
    for (uint32_t port = 1024; port < 1024 + 70000; port++)
        hits[table[slot_of(flow_hash4(0x0a000001, 0x0a600001, 6, uint16_t(port), 80),
                           kDefaultTableSize)]]++;
    for (unsigned h : hits) EXPECT_NEAR(h, 10000, 400);
}
