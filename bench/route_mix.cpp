#include "route_mix.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_set>

namespace vleaf::bench {

namespace {

using u128 = unsigned __int128;

uint32_t mask4(uint8_t depth) {
    return depth == 0 ? 0 : ~uint32_t{0} << (32 - depth);
}
u128 mask6(uint8_t depth) {
    return depth == 0 ? 0 : ~u128{0} << (128 - depth);
}

u128 rand128(std::mt19937_64 &rng) {
    u128 hi = rng();
    return hi << 64 | rng();
}

V6 to_bytes(u128 a) {
    V6 b;
    for (int i = 15; i >= 0; --i, a >>= 8) b[i] = static_cast<uint8_t>(a);
    return b;
}

u128 from_bytes(const V6 &b) {
    u128 a = 0;
    for (uint8_t byte : b) a = a << 8 | byte;
    return a;
}

// Next hops cycle through a few thousand ids, like a table with many peers/nodes.
uint32_t nh_for(size_t i) {
    return 1 + static_cast<uint32_t>(i % 4096);
}

size_t count_misses(size_t n_dsts, double miss_fraction) {
    if (n_dsts == 0 || (n_dsts & (n_dsts - 1)) != 0)
        throw std::invalid_argument("n_dsts must be a power of two");
    return static_cast<size_t>(static_cast<double>(n_dsts) * miss_fraction);
}

// Prefix lengths of a full IPv4 table (roughly the DFZ: /24 dominates, a tail of
// /16-/23 aggregates) plus the /25-/32 more-specifics a DC router carries.
std::vector<Route4> internet4(size_t n, std::mt19937_64 &rng) {
    static constexpr uint8_t depths[] = {16, 17, 18, 19, 20, 21, 22, 23, 24,
                                         25, 26, 27, 28, 29, 30, 31, 32};
    static constexpr double weights[] = {1.0, 0.5, 1.0, 2.0, 4.0, 5.0, 9.0, 8.0, 59.0,
                                         1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 0.5, 3.0};
    std::discrete_distribution<size_t> pick_depth(std::begin(weights), std::end(weights));
    // Unicast space 1.0.0.0-223.255.255.255; 240/4 stays free for misses.
    std::uniform_int_distribution<uint32_t> pick_addr(0x01000000u, 0xDFFFFFFFu);
    std::unordered_set<uint64_t> seen;
    std::vector<Route4> routes;
    routes.reserve(n);
    while (routes.size() < n) {
        uint8_t depth = depths[pick_depth(rng)];
        uint32_t addr = pick_addr(rng) & mask4(depth);
        if (!seen.insert(uint64_t{addr} << 8 | depth).second) continue;
        routes.push_back({addr, depth, nh_for(routes.size())});
    }
    return routes;
}

// Calico /26 blocks picked at random from 10.0.0.0/8; a /8 holds only 262,144 blocks,
// so bigger tables take the following /8s as extra pools.
std::vector<Route4> pods4(size_t n, std::mt19937_64 &rng) {
    constexpr uint32_t blocks_per_pool = 1u << 18;
    const size_t pools = (n + blocks_per_pool - 1) / blocks_per_pool;
    std::vector<uint32_t> blocks(pools * blocks_per_pool);
    std::iota(blocks.begin(), blocks.end(), 0u);
    std::vector<Route4> routes;
    routes.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        std::uniform_int_distribution<size_t> pick(i, blocks.size() - 1);
        std::swap(blocks[i], blocks[pick(rng)]);
        routes.push_back({(10u << 24) + (blocks[i] << 6), 26, nh_for(i)});
    }
    return routes;
}

// ISP /32 aggregates in 2000::/3 with customer /48s at random inside them and site /64s
// numbered from 0 inside some of those /48s. One /32 per 2048 routes keeps the 1M table
// within what the tries can hold in 1 GB, as real allocations cluster too.
std::vector<Route6> internet6(size_t n, std::mt19937_64 &rng) {
    std::vector<Route6> routes;
    routes.reserve(n);
    const size_t n_parents = std::max<size_t>(1, n / 2048);
    std::vector<uint32_t> parents;
    std::unordered_set<uint64_t> seen;
    while (parents.size() < n_parents && routes.size() < n) {
        uint32_t p = 0x20000000u | (static_cast<uint32_t>(rng()) & 0x1FFFFFFFu);
        if (!seen.insert(p).second) continue;
        parents.push_back(p);
        routes.push_back({to_bytes(u128{p} << 96), 32, nh_for(routes.size())});
    }
    const size_t rest = n - routes.size();
    const size_t n48 = rest - rest / 4;
    std::vector<uint64_t> sites; // top 48 bits of each /48
    std::uniform_int_distribution<size_t> pick_parent(0, parents.size() - 1);
    seen.clear();
    while (sites.size() < n48) {
        uint64_t s = uint64_t{parents[pick_parent(rng)]} << 16 | (rng() & 0xFFFF);
        if (!seen.insert(s).second) continue;
        sites.push_back(s);
        routes.push_back({to_bytes(u128{s} << 80), 48, nh_for(routes.size())});
    }
    if (sites.empty()) return routes;
    std::vector<uint16_t> next_subnet(sites.size(), 0);
    std::uniform_int_distribution<size_t> pick_site(0, sites.size() - 1);
    while (routes.size() < n) {
        size_t j = pick_site(rng);
        if (next_subnet[j] == 0xFFFF) continue;
        u128 a = (u128{sites[j]} << 16 | next_subnet[j]++) << 64;
        routes.push_back({to_bytes(a), 64, nh_for(routes.size())});
    }
    return routes;
}

// Calico /122 blocks in a ULA /48 pool. The pool has 2^74 blocks: Calico's allocator walks
// it from a random block, so the blocks of a cluster are consecutive from a random start.
std::vector<Route6> pods6(size_t n, std::mt19937_64 &rng) {
    const u128 pool = (u128{0xFD} << 120) | (u128{rng() & 0xFFFFFFFFFFull} << 80);
    const u128 start = rand128(rng) & ((u128{1} << 73) - 1);
    std::vector<Route6> routes;
    routes.reserve(n);
    for (size_t i = 0; i < n; ++i)
        routes.push_back({to_bytes(pool | (start + i) << 6), 122, nh_for(i)});
    return routes;
}

template <class Route, class Dst, class Hit, class Miss>
std::vector<Dst> make_dsts(const std::vector<Route> &routes, size_t n_dsts, size_t misses,
                           std::mt19937_64 &rng, Hit hit, Miss miss) {
    std::vector<Dst> dsts;
    dsts.reserve(n_dsts);
    std::uniform_int_distribution<size_t> pick(0, routes.size() - 1);
    for (size_t i = misses; i < n_dsts; ++i) dsts.push_back(hit(routes[pick(rng)]));
    for (size_t i = 0; i < misses; ++i) dsts.push_back(miss());
    std::shuffle(dsts.begin(), dsts.end(), rng);
    return dsts;
}

} // namespace

const char *mix_name(Mix m) {
    return m == Mix::Internet ? "internet" : "pods";
}

Workload4 make_workload4(Mix mix, size_t n_routes, size_t n_dsts, double miss_fraction,
                         uint64_t seed) {
    std::mt19937_64 rng(seed);
    Workload4 w;
    w.misses = count_misses(n_dsts, miss_fraction);
    w.routes = mix == Mix::Internet ? internet4(n_routes, rng) : pods4(n_routes, rng);
    w.dsts = make_dsts<Route4, uint32_t>(
        w.routes, n_dsts, w.misses, rng,
        [&](const Route4 &r) { return r.addr | (static_cast<uint32_t>(rng()) & ~mask4(r.depth)); },
        [&] { return 0xF0000000u | (static_cast<uint32_t>(rng()) & 0x0FFFFFFFu); });
    return w;
}

Workload6 make_workload6(Mix mix, size_t n_routes, size_t n_dsts, double miss_fraction,
                         uint64_t seed) {
    std::mt19937_64 rng(seed);
    Workload6 w;
    w.misses = count_misses(n_dsts, miss_fraction);
    w.routes = mix == Mix::Internet ? internet6(n_routes, rng) : pods6(n_routes, rng);
    w.dsts = make_dsts<Route6, V6>(
        w.routes, n_dsts, w.misses, rng,
        [&](const Route6 &r) {
            return to_bytes(from_bytes(r.addr) | (rand128(rng) & ~mask6(r.depth)));
        },
        // 4000::/3 is unallocated: no route of either mix lies there.
        [&] { return to_bytes((u128{2} << 125) | (rand128(rng) >> 3)); });
    return w;
}

size_t tbl8_groups(const std::vector<Route4> &routes) {
    std::vector<uint32_t> groups;
    for (const Route4 &r : routes)
        if (r.depth > 24) groups.push_back(r.addr >> 8);
    std::sort(groups.begin(), groups.end());
    return static_cast<size_t>(std::unique(groups.begin(), groups.end()) - groups.begin());
}

size_t tbl8_groups(const std::vector<Route6> &routes) {
    // The first level resolves 24 bits, every further level 8: a route of depth d needs
    // one group per level whose index prefix (k bytes, k >= 3) is shorter than d.
    size_t total = 0;
    std::vector<u128> groups;
    for (unsigned k = 3; k < 16; ++k) {
        groups.clear();
        for (const Route6 &r : routes)
            if (r.depth > 8 * k) groups.push_back(from_bytes(r.addr) >> (128 - 8 * k));
        std::sort(groups.begin(), groups.end());
        total += static_cast<size_t>(std::unique(groups.begin(), groups.end()) - groups.begin());
    }
    return total;
}

size_t fib6_tbl8_reservation(const std::vector<Route6> &routes) {
    auto ceil8 = [](unsigned d) { return (d + 7) / 8 * 8; };
    std::map<uint8_t, std::set<u128>> added; // by depth
    size_t total = 0;
    for (const Route6 &r : routes) {
        const u128 a = from_bytes(r.addr);
        if (r.depth > 24) {
            const unsigned floor = r.depth / 8 * 8;
            const u128 lo = a & mask6(static_cast<uint8_t>(floor));
            const u128 hi = lo | ~mask6(static_cast<uint8_t>(floor));
            bool covered = false;
            for (auto it = added.lower_bound(static_cast<uint8_t>(floor));
                 it != added.end() && !covered; ++it) {
                auto e = it->second.lower_bound(lo);
                covered = e != it->second.end() && *e <= hi;
            }
            if (!covered) {
                unsigned parent = 24;
                for (auto &[depth, set] : added)
                    if (depth < r.depth && depth > parent && set.count(a & mask6(depth)))
                        parent = depth;
                total += (ceil8(r.depth) - ceil8(parent)) / 8;
            }
        }
        added[r.depth].insert(a);
    }
    return total;
}

} // namespace vleaf::bench
