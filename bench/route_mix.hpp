// Synthetic route tables and lookup streams for the route-lookup benchmark.
// Deterministic for a given seed, so runs on different days compare.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vleaf::bench {

enum class Mix {
    Internet, // prefix lengths distributed like a real table
    Pods,     // Calico pod blocks: /26 in a /8 (IPv4), /122 in a /48 (IPv6)
};
const char *mix_name(Mix m);

using V6 = std::array<uint8_t, 16>; // network byte order, as rte_lpm6/rte_fib6 take it

struct Route4 {
    uint32_t addr; // host byte order, as rte_lpm/rte_fib take it
    uint8_t depth;
    uint32_t nh; // >= 1; 0 means "no route" in every table under test
};

struct Route6 {
    V6 addr;
    uint8_t depth;
    uint32_t nh;
};

// A route table and the destinations looked up in it: hits drawn from the routes,
// misses from address space no route covers, shuffled together.
struct Workload4 {
    std::vector<Route4> routes;
    std::vector<uint32_t> dsts;
    size_t misses = 0;
};

struct Workload6 {
    std::vector<Route6> routes;
    std::vector<V6> dsts;
    size_t misses = 0;
};

// n_dsts must be a power of two (the benchmark walks the array with a mask).
Workload4 make_workload4(Mix mix, size_t n_routes, size_t n_dsts, double miss_fraction,
                         uint64_t seed);
Workload6 make_workload6(Mix mix, size_t n_routes, size_t n_dsts, double miss_fraction,
                         uint64_t seed);

// Exact number of 8-bit second-level groups (tbl8) a DIR-24-8 table (rte_lpm, rte_fib)
// needs for these routes, and for the multi-level tries of rte_lpm6/rte_fib6, so the
// 1M-route tables are sized to what they use instead of a guess.
size_t tbl8_groups(const std::vector<Route4> &routes);
size_t tbl8_groups(const std::vector<Route6> &routes);
// rte_fib6's TRIE reserves groups pessimistically while adding: a route whose 8-bit-aligned
// prefix holds no earlier route reserves one group per level between its parent's depth
// (at least 24) and its own, without counting sharing. This replays that rule for the
// routes added in order, as rte_fib6_add refuses to go past num_tbl8.
size_t fib6_tbl8_reservation(const std::vector<Route6> &routes);

} // namespace vleaf::bench
