// Route-stage candidates compared on the same tables and destinations: rte_lpm (bulk and
// x4), rte_fib DIR-24-8 and ours (dataplane/dir24.hpp, what the workers use) for IPv4;
// rte_lpm6 and rte_fib6 TRIE for IPv6. Each iteration
// looks up one burst of 32 destinations from an array larger than L2, as a worker would.
#include "dataplane/dir24.hpp"
#include "route_mix.hpp"

#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vleaf::bench {
namespace {

constexpr unsigned kBurst = 32;
constexpr size_t kDsts = size_t{1} << 20; // 4 MB of IPv4, 16 MB of IPv6 destinations
constexpr double kMissFraction = 0.1;
constexpr uint64_t kSeed = 20261121;
constexpr uint32_t kNoRoute = 0; // every route's next hop is >= 1
constexpr size_t kChunkBursts = 16;
// rte_fib6 reserves 2-3.4 GB of tbl8 groups for the 1M-route tables (see
// fib6_tbl8_reservation); --no-huge memory is committed only where it is touched.
constexpr const char *kEalMemoryMb = "5120";

std::string rte_error(const char *what) {
    return std::string(what) + ": " + rte_strerror(rte_errno);
}

// The tables of one benchmark stay alive until a benchmark needs a different one: a
// 1M-route table takes from 300 MB to 3.5 GB, and two of them would not fit.
std::string g_table_key;
std::shared_ptr<void> g_table;

template <class T> T &table(const std::string &key, const std::function<T *()> &build) {
    if (key != g_table_key) {
        g_table.reset();
        g_table_key.clear();
        g_table = std::shared_ptr<T>(build());
        g_table_key = key;
    }
    return *static_cast<T *>(g_table.get());
}

// Seconds taken by adding all routes, one rte_*_add call each.
template <class Add> double timed_adds(Add add) {
    const auto t0 = std::chrono::steady_clock::now();
    add();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Owners free the table even when a constructor throws half way through the adds.
template <class T, void (*Free)(T *)> struct Deleter {
    void operator()(T *p) const { Free(p); }
};
template <class T, void (*Free)(T *)> using Owned = std::unique_ptr<T, Deleter<T, Free>>;

struct Lpm4 {
    double add_s = 0;
    Owned<rte_lpm, rte_lpm_free> lpm;
    explicit Lpm4(const Workload4 &w) {
        rte_lpm_config cfg{};
        cfg.max_rules = static_cast<uint32_t>(w.routes.size());
        cfg.number_tbl8s = static_cast<uint32_t>(tbl8_groups(w.routes) + 64);
        lpm.reset(rte_lpm_create("bench_lpm", SOCKET_ID_ANY, &cfg));
        if (!lpm) throw std::runtime_error(rte_error("rte_lpm_create"));
        add_s = timed_adds([&] {
            for (const Route4 &r : w.routes)
                if (int rc = rte_lpm_add(lpm.get(), r.addr, r.depth, r.nh); rc < 0)
                    throw std::runtime_error("rte_lpm_add: " + std::string(rte_strerror(-rc)));
        });
    }
    void bulk(const uint32_t *ips, uint32_t *hops) const {
        rte_lpm_lookup_bulk(lpm.get(), ips, hops, kBurst);
        // The bulk API flags valid entries instead of taking a default; a worker would
        // test the flag per packet too, so it stays inside the measured loop.
        for (unsigned i = 0; i < kBurst; ++i)
            hops[i] = (hops[i] & RTE_LPM_LOOKUP_SUCCESS) ? hops[i] & 0x00FFFFFF : kNoRoute;
    }
    void x4(const uint32_t *ips, uint32_t *hops) const {
        for (unsigned i = 0; i < kBurst; i += 4) {
            xmm_t v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(ips + i));
            rte_lpm_lookupx4(lpm.get(), v, hops + i, kNoRoute);
        }
    }
};

struct Fib4 {
    double add_s = 0;
    Owned<rte_fib, rte_fib_free> fib;
    explicit Fib4(const Workload4 &w) {
        rte_fib_conf cfg{};
        cfg.type = RTE_FIB_DIR24_8;
        cfg.default_nh = kNoRoute;
        cfg.max_routes = static_cast<int>(w.routes.size());
        cfg.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
        cfg.dir24_8.num_tbl8 = static_cast<uint32_t>(tbl8_groups(w.routes) + 64);
        fib.reset(rte_fib_create("bench_fib", SOCKET_ID_ANY, &cfg));
        if (!fib) throw std::runtime_error(rte_error("rte_fib_create"));
        add_s = timed_adds([&] {
            for (const Route4 &r : w.routes)
                if (int rc = rte_fib_add(fib.get(), r.addr, r.depth, r.nh); rc < 0)
                    throw std::runtime_error("rte_fib_add: " + std::string(rte_strerror(-rc)));
        });
    }
    void bulk(const uint32_t *ips, uint64_t *hops) const {
        rte_fib_lookup_bulk(fib.get(), const_cast<uint32_t *>(ips), hops, kBurst);
    }
};

struct Dir4 {
    double add_s = 0;
    std::unique_ptr<rte_rcu_qsbr, Deleter<void, rte_free>> rcu; // no reader registers
    std::unique_ptr<dp::Dir24> dir;
    explicit Dir4(const Workload4 &w) {
        rcu.reset(static_cast<rte_rcu_qsbr *>(
            rte_zmalloc("bench_rcu", rte_rcu_qsbr_get_memsize(1), RTE_CACHE_LINE_SIZE)));
        if (!rcu) throw std::runtime_error("rte_zmalloc: out of memory");
        rte_rcu_qsbr_init(rcu.get(), 1);
        dir = std::make_unique<dp::Dir24>(static_cast<uint32_t>(w.routes.size()),
                                          static_cast<uint32_t>(tbl8_groups(w.routes) + 64),
                                          rcu.get(), SOCKET_ID_ANY);
        add_s = timed_adds([&] {
            for (const Route4 &r : w.routes)
                if (int rc = dir->add(r.addr, r.depth, r.nh); rc < 0)
                    throw std::runtime_error("Dir24::add: " + std::string(rte_strerror(-rc)));
        });
    }
    void bulk(const uint32_t *ips, uint64_t *hops) const { dir->lookup_bulk(ips, hops, kBurst); }
};

struct Lpm6 {
    double add_s = 0;
    Owned<rte_lpm6, rte_lpm6_free> lpm;
    explicit Lpm6(const Workload6 &w) {
        rte_lpm6_config cfg{};
        cfg.max_rules = static_cast<uint32_t>(w.routes.size());
        cfg.number_tbl8s = static_cast<uint32_t>(tbl8_groups(w.routes) + 64);
        lpm.reset(rte_lpm6_create("bench_lpm6", SOCKET_ID_ANY, &cfg));
        if (!lpm) throw std::runtime_error(rte_error("rte_lpm6_create"));
        add_s = timed_adds([&] {
            for (const Route6 &r : w.routes)
                if (int rc = rte_lpm6_add(lpm.get(), r.addr.data(), r.depth, r.nh); rc < 0)
                    throw std::runtime_error("rte_lpm6_add: " + std::string(rte_strerror(-rc)));
        });
    }
    void bulk(const V6 *ips, int32_t *hops) const {
        rte_lpm6_lookup_bulk_func(
            lpm.get(), reinterpret_cast<uint8_t(*)[16]>(const_cast<V6 *>(ips)), hops, kBurst);
    }
};

struct Fib6 {
    double add_s = 0;
    Owned<rte_fib6, rte_fib6_free> fib;
    explicit Fib6(const Workload6 &w) {
        rte_fib6_conf cfg{};
        cfg.type = RTE_FIB6_TRIE;
        cfg.default_nh = kNoRoute;
        cfg.max_routes = static_cast<int>(w.routes.size());
        cfg.trie.nh_sz = RTE_FIB6_TRIE_4B;
        cfg.trie.num_tbl8 = static_cast<uint32_t>(fib6_tbl8_reservation(w.routes) + 64);
        fib.reset(rte_fib6_create("bench_fib6", SOCKET_ID_ANY, &cfg));
        if (!fib) throw std::runtime_error(rte_error("rte_fib6_create"));
        add_s = timed_adds([&] {
            for (const Route6 &r : w.routes)
                if (int rc = rte_fib6_add(fib.get(), r.addr.data(), r.depth, r.nh); rc < 0)
                    throw std::runtime_error("rte_fib6_add: " + std::string(rte_strerror(-rc)));
        });
    }
    void bulk(const V6 *ips, uint64_t *hops) const {
        rte_fib6_lookup_bulk(fib.get(), reinterpret_cast<uint8_t(*)[16]>(const_cast<V6 *>(ips)),
                             hops, kBurst);
    }
};

template <class W> const W &workload(Mix mix, size_t n_routes);

template <> const Workload4 &workload<Workload4>(Mix mix, size_t n_routes) {
    static std::map<std::pair<Mix, size_t>, Workload4> cache;
    auto [it, fresh] = cache.try_emplace({mix, n_routes});
    if (fresh) it->second = make_workload4(mix, n_routes, kDsts, kMissFraction, kSeed);
    return it->second;
}

template <> const Workload6 &workload<Workload6>(Mix mix, size_t n_routes) {
    static std::map<std::pair<Mix, size_t>, Workload6> cache;
    auto [it, fresh] = cache.try_emplace({mix, n_routes});
    if (fresh) it->second = make_workload6(mix, n_routes, kDsts, kMissFraction, kSeed);
    return it->second;
}

// Before timing, every destination is looked up once: a hit that misses or a miss that
// hits means the table was built wrong and the figures would be meaningless.
template <class Dst, class Hop, class Lookup>
bool verify(benchmark::State &state, const std::vector<Dst> &dsts, size_t want_misses,
            Lookup lookup, Hop no_route) {
    Hop hops[kBurst];
    size_t misses = 0;
    for (size_t i = 0; i < dsts.size(); i += kBurst) {
        lookup(&dsts[i], hops);
        for (Hop h : hops) misses += h == no_route;
    }
    if (misses == want_misses) return true;
    state.SkipWithError(("lookup found " + std::to_string(misses) + " misses, expected " +
                         std::to_string(want_misses))
                            .c_str());
    return false;
}

template <class Dst, class Hop, class Lookup>
void run(benchmark::State &state, const std::vector<Dst> &dsts, size_t want_misses, Lookup lookup,
         Hop no_route) {
    if (!verify(state, dsts, want_misses, lookup, no_route)) return;
    const size_t mask = dsts.size() - 1;
    Hop hops[kBurst];
    size_t i = 0;
    // Cycles are read per chunk of bursts and the median chunk reported: the two cores are
    // shared, and a chunk in which the thread was preempted must not count.
    std::vector<uint64_t> chunks;
    chunks.reserve(static_cast<size_t>(state.max_iterations) / kChunkBursts + 1);
    uint64_t last = rte_rdtsc();
    size_t n = 0;
    for (auto _ : state) {
        lookup(&dsts[i], hops);
        benchmark::DoNotOptimize(hops);
        i = (i + kBurst) & mask;
        if (++n % kChunkBursts == 0) {
            const uint64_t now = rte_rdtsc();
            chunks.push_back(now - last);
            last = now;
        }
    }
    const auto pkts = static_cast<double>(state.iterations() * kBurst);
    state.SetItemsProcessed(static_cast<int64_t>(pkts));
    state.counters["ns/pkt"] =
        benchmark::Counter(pkts, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    if (chunks.empty()) return;
    std::nth_element(chunks.begin(), chunks.begin() + chunks.size() / 2, chunks.end());
    state.counters["cycles/pkt"] =
        static_cast<double>(chunks[chunks.size() / 2]) / (kChunkBursts * kBurst);
}

template <class Table, class W, class Lookup>
void register_one(const std::string &family, const std::string &lib, const std::string &key,
                  Mix mix, size_t n_routes, Lookup lookup) {
    const std::string name =
        family + "/" + lib + "/" + mix_name(mix) + "/" + std::to_string(n_routes);
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State &state) {
        const W &w = workload<W>(mix, n_routes);
        try {
            const Table &t = table<Table>(key + "/" + mix_name(mix) + std::to_string(n_routes),
                                          [&] { return new Table(w); });
            lookup(state, t, w);
            // A control plane loading a full table pays this too.
            state.counters["add_s"] = t.add_s;
        } catch (const std::exception &e) {
            state.SkipWithError(e.what());
        }
    });
}

void register_all() {
    const size_t sizes[] = {10'000, 1'000'000};
    for (Mix mix : {Mix::Internet, Mix::Pods}) {
        for (size_t n : sizes) {
            register_one<Lpm4, Workload4>(
                "ipv4", "lpm_bulk", "lpm4", mix, n,
                [](benchmark::State &s, const Lpm4 &t, const Workload4 &w) {
                    run(
                        s, w.dsts, w.misses, [&](auto *ip, auto *h) { t.bulk(ip, h); }, kNoRoute);
                });
            register_one<Lpm4, Workload4>(
                "ipv4", "lpm_x4", "lpm4", mix, n,
                [](benchmark::State &s, const Lpm4 &t, const Workload4 &w) {
                    run(
                        s, w.dsts, w.misses, [&](auto *ip, auto *h) { t.x4(ip, h); }, kNoRoute);
                });
            register_one<Fib4, Workload4>(
                "ipv4", "fib_dir24_8", "fib4", mix, n,
                [](benchmark::State &s, const Fib4 &t, const Workload4 &w) {
                    run(
                        s, w.dsts, w.misses, [&](auto *ip, auto *h) { t.bulk(ip, h); },
                        uint64_t{kNoRoute});
                });
            register_one<Dir4, Workload4>(
                "ipv4", "vleaf_dir24", "dir4", mix, n,
                [](benchmark::State &s, const Dir4 &t, const Workload4 &w) {
                    run(
                        s, w.dsts, w.misses, [&](auto *ip, auto *h) { t.bulk(ip, h); },
                        uint64_t{kNoRoute});
                });
        }
    }
    for (Mix mix : {Mix::Internet, Mix::Pods}) {
        for (size_t n : sizes) {
            register_one<Lpm6, Workload6>(
                "ipv6", "lpm6_bulk", "lpm6", mix, n,
                [](benchmark::State &s, const Lpm6 &t, const Workload6 &w) {
                    run(
                        s, w.dsts, w.misses, [&](auto *ip, auto *h) { t.bulk(ip, h); },
                        int32_t{-1});
                });
            register_one<Fib6, Workload6>(
                "ipv6", "fib6_trie", "fib6", mix, n,
                [](benchmark::State &s, const Fib6 &t, const Workload6 &w) {
                    run(
                        s, w.dsts, w.misses, [&](auto *ip, auto *h) { t.bulk(ip, h); },
                        uint64_t{kNoRoute});
                });
        }
    }
}

// EAL owns the memory the tables live in; it runs on the main lcore only, in its own
// file prefix so that the benchmark can run beside vleafd or the tests.
void init_eal(const char *prog) {
    // static: EAL may keep pointers into its arguments.
    static std::vector<std::string> args = {prog,
                                            "--no-huge",
                                            "-m",
                                            kEalMemoryMb,
                                            "--no-pci",
                                            "--file-prefix",
                                            "bench_lpm_" + std::to_string(getpid()),
                                            "--log-level=error",
                                            "-l",
                                            "0"};
    std::vector<char *> argv;
    argv.reserve(args.size());
    for (std::string &a : args) argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
        throw std::runtime_error(rte_error("rte_eal_init"));
}

} // namespace
} // namespace vleaf::bench

int main(int argc, char **argv) {
    try {
        vleaf::bench::init_eal(argv[0]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench_route_lookup: %s\n", e.what());
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    vleaf::bench::register_all();
    benchmark::AddCustomContext("tsc_hz", std::to_string(rte_get_tsc_hz()));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    vleaf::bench::g_table.reset();
    // EAL leaves its runtime directory behind, and every run has its own prefix.
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir, ec);
    return 0;
}
