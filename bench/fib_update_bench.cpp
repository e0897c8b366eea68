// The RIB -> FIB path under load, in one process: a worker lcore runs the real pipeline
// at its maximum rate (mbufs from the pool, transmitted to ring ports and recycled) and
// records how long each loop iteration takes, while
//   1. an N-prefix feed goes RIB -> Feed -> route ring -> programmer -> dp::Fib, timed from
//      the first RIB update to the worker seeing the last prefix's next hop;
//   2. N route updates (next-hop replaces, withdrawals, re-announcements of those
//      prefixes) are applied: updates/s at the writer;
//   2b. the worst case of DIR-24-8: the same kind of updates on the table's shortest
//      prefixes only (/16-/18: each rewrites up to 256 tbl24 entries around its
//      more-specifics);
//   3. single-route UPDATEs (encoded, decoded, imported, sent, applied) are timed from the
//      decode to the worker's lookup returning the new next hop (p50/p99). The writer
//      waits for them as vleafd's does: asleep on the feed's eventfd (1 ms poll timeout).
// Where the time goes when the machine is shared: each thread's run-queue wait from
// /proc/self/task/TID/schedstat (per sample and per phase), the worker's long iterations
// split into switched out / during a writer batch / neither, and the interrupts and
// steal of the worker's CPU per phase.
// The prefixes: `internet` (default) has the prefix lengths of a full table (bench/
// route_mix.cpp: 59 % /24, a /16-/23 tail, 10 % /25-/32 more-specifics); `24` is N /24s
// in a row, the shape of the earlier figures.
// References in the same run: the worker's loop with no updates (stalls, packets/s), with
// empty tables first and after each throughput phase for as long as it took (the stalls
// of a phase next to those of the same length without the writer, in a summary), and
// bare adds/deletes of the same operations on a table nobody reads, rte_fib's and ours
// (the floor of what the writer does per update). Wall-clock rates depend on what else runs on the
// machine; the CPU time of the writer thread per update does much less.
//
//   bench_fib_update [routes=1000000] [internet|24]
#include "bench/guarded_main.hpp"
#include "bench/route_mix.hpp"
#include "control/bgp/rib.hpp"
#include "control/common/sched_stat.hpp"
#include "control/fib/feed.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <rte_cycles.h>
#include <rte_fib.h>
#include <rte_launch.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr unsigned kLcore = 1;
constexpr unsigned kBuckets = 8; // stall histogram, µs: <1 <2 <5 <10 <20 <50 <100 >=100
const double kBucketUs[kBuckets - 1] = {1, 2, 5, 10, 20, 50, 100};
const char *kBucketNames[kBuckets] = {"<1",    "1-2",   "2-5",    "5-10",
                                      "10-20", "20-50", "50-100", ">=100"};
constexpr double kStallUs = 10; // the target: no worker iteration longer than this

// Context switches of the calling thread: an iteration during which the worker was
// switched out measures the machine's other load, not the table writer.
long switches() {
    rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_nvcsw + u.ru_nivcsw;
}

double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Interrupts taken by `cpu` so far (/proc/interrupts): all of them, and the TLB
// shootdowns among them (another thread of this process unmapping memory interrupts the
// worker's CPU: a stall the writer can cause without a context switch).
struct Irqs {
    uint64_t all = 0, tlb = 0;
};
Irqs cpu_interrupts(unsigned cpu) {
    std::ifstream in("/proc/interrupts");
    std::string line;
    std::getline(in, line); // CPU0 CPU1 ...
    Irqs n;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string label;
        ls >> label;
        uint64_t v = 0;
        for (unsigned c = 0; c <= cpu && ls >> v; c++) {
        }
        if (!ls) continue;
        n.all += v;
        if (label == "TLB:") n.tlb += v;
    }
    return n;
}

// Time the hypervisor gave `cpu`'s vCPU to someone else (/proc/stat), in ms.
double cpu_steal_ms(unsigned cpu) {
    std::ifstream in("/proc/stat");
    std::string key = "cpu" + std::to_string(cpu), line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string k;
        ls >> k;
        if (k != key) continue;
        uint64_t f[8] = {};
        for (auto &x : f) ls >> x;
        return double(f[7]) * 1000.0 / double(sysconf(_SC_CLK_TCK));
    }
    return 0;
}

// Which CPUs each thread of this process may run on: the worker's CPU should be no other
// thread's.
void print_placement() {
    std::printf("threads (CPUs allowed):");
    for (const auto &e : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream st(e.path() / "status");
        std::string line, name, cpus;
        while (std::getline(st, line)) {
            if (line.rfind("Name:", 0) == 0) name = line.substr(line.find_first_not_of(" \t", 5));
            if (line.rfind("Cpus_allowed_list:", 0) == 0)
                cpus = line.substr(line.find_first_not_of(" \t", 18));
        }
        std::printf(" %s %s (%s);", name.c_str(), e.path().filename().c_str(), cpus.c_str());
    }
    std::printf("\n");
}

struct Probe {
    std::atomic<uint32_t> ip{0}; // host order; 0: nothing to watch
    std::atomic<uint32_t> nh{0};
    std::atomic<uint64_t> seen_tsc{0};
};

// What happened around the worker during a phase: how long it waited for its CPU (run
// queue), and its CPU's interrupts and steal.
struct Around {
    unsigned cpu = 0;
    const ThreadSched *worker = nullptr;
    SchedStat s0;
    Irqs irq0;
    double steal0 = 0;

    void begin() {
        s0 = worker->read().value_or(SchedStat{});
        irq0 = cpu_interrupts(cpu);
        steal0 = cpu_steal_ms(cpu);
    }
    void print() const {
        SchedStat s1 = worker->read().value_or(SchedStat{});
        Irqs irq = cpu_interrupts(cpu);
        std::printf("  worker %-22s waited for its CPU %.1f ms in %lu slices; CPU %u: %lu "
                    "interrupts (%lu TLB shootdowns), steal %.0f ms\n",
                    "", double(s1.wait_ns - s0.wait_ns) * 1e-6,
                    (unsigned long)(s1.slices - s0.slices), cpu,
                    (unsigned long)(irq.all - irq0.all), (unsigned long)(irq.tlb - irq0.tlb),
                    cpu_steal_ms(cpu) - steal0);
    }
};

struct Loop {
    Rig *rig;
    std::atomic<bool> stop{false};
    std::atomic<bool> measuring{false};
    // The writer's batch counter: odd while it applies a batch (bumped before and after).
    alignas(64) std::atomic<uint64_t> writer_gen{0};
    alignas(64) uint64_t hist[kBuckets] = {};
    uint64_t max_cycles = 0, iterations = 0, packets = 0;
    // Iterations over kStallUs: with the worker switched out during them, or not. Those
    // not switched out are split by whether a writer batch was under way during them,
    // and so is the worker's time, for the rates with and without the writer.
    uint64_t long_switched = 0, max_own_cycles = 0;
    uint64_t long_own[2] = {}, own_cycles[2] = {}, max_long[2] = {}; // [in a writer batch]
    std::atomic<pid_t> tid{0};
    Probe probe;
    Frame tmpl;
    std::vector<uint32_t> dsts; // destinations the forwarded packets cycle through

    void reset() {
        std::fill(std::begin(hist), std::end(hist), 0);
        max_cycles = iterations = packets = long_switched = max_own_cycles = 0;
        for (unsigned k = 0; k < 2; k++) long_own[k] = own_cycles[k] = max_long[k] = 0;
    }

    // The writer's side: `apply` between the two bumps of the batch counter.
    template <typename F> auto writer_batch(F apply) {
        writer_gen.fetch_add(1, std::memory_order_release);
        auto r = apply();
        writer_gen.fetch_add(1, std::memory_order_release);
        return r;
    }

    int run() {
        dp::Worker &w = *rig->w;
        rte_rcu_qsbr_thread_register(rig->rcu, 0);
        rte_rcu_qsbr_thread_online(rig->rcu, 0);
        tid = gettid();
        const double us = double(rte_get_tsc_hz()) / 1e6;
        const uint64_t stall = uint64_t(kStallUs * us);
        long csw = switches();
        uint64_t last = rte_rdtsc(), gen = writer_gen.load(std::memory_order_acquire);
        size_t next = 0, loops = 0;
        dp::Burst b;
        while (!stop.load(std::memory_order_relaxed)) {
            if (rte_pktmbuf_alloc_bulk(rig->pool, b.m, 32) == 0) {
                for (unsigned i = 0; i < 32; i++) {
                    uint8_t *d = reinterpret_cast<uint8_t *>(
                        rte_pktmbuf_append(b.m[i], uint16_t(tmpl.size())));
                    std::memcpy(d, tmpl.data(), tmpl.size());
                    uint32_t dst = dsts[next++ % dsts.size()];
                    d[30] = uint8_t(dst >> 24), d[31] = uint8_t(dst >> 16),
                    d[32] = uint8_t(dst >> 8), d[33] = uint8_t(dst);
                    d[24] = d[25] = 0;
                    uint16_t c = checksum(d + 14, 20);
                    d[24] = uint8_t(c >> 8), d[25] = uint8_t(c);
                    b.m[i]->port = rig->port[0];
                }
                b.n = 32;
                b.port = rig->port[0];
                w.process(b);
                packets += 32;
            }
            for (unsigned p = 1; p < Rig::kPorts; p++) { // the NIC completing transmissions
                void *sent[64];
                unsigned k = rte_ring_dequeue_burst(rig->tx[p], sent, 64, nullptr);
                rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf **>(sent), k);
            }
            if (uint32_t ip = probe.ip.load(std::memory_order_acquire)) {
                uint64_t nh;
                rig->fib->vrf(0)->v4->lookup_bulk(&ip, &nh, 1);
                if (nh == probe.nh.load(std::memory_order_relaxed)) {
                    probe.seen_tsc.store(rte_rdtsc(), std::memory_order_release);
                    probe.ip.store(0, std::memory_order_release);
                }
            }
            rte_rcu_qsbr_quiescent(rig->rcu, 0);
            uint64_t now = rte_rdtsc();
            uint64_t g = writer_gen.load(std::memory_order_acquire);
            bool in_batch = (gen & 1) || g != gen;
            gen = g;
            bool checked = false;
            if (measuring.load(std::memory_order_relaxed)) {
                uint64_t c = now - last;
                max_cycles = std::max(max_cycles, c);
                double u = double(c) / us;
                unsigned k = 0;
                while (k < kBuckets - 1 && u >= kBucketUs[k]) k++;
                hist[k]++;
                iterations++;
                bool switched = false;
                if (c >= stall) {
                    long s = switches();
                    switched = s != csw;
                    if (switched) {
                        long_switched++;
                    } else {
                        long_own[in_batch]++;
                        max_long[in_batch] = std::max(max_long[in_batch], c);
                    }
                    csw = s;
                    checked = true;
                }
                if (!switched) {
                    own_cycles[in_batch] += c;
                    max_own_cycles = std::max(max_own_cycles, c);
                }
            }
            // A switch during a short iteration must not be charged to a later long one.
            if (!checked && (++loops & 1023) == 0) {
                csw = switches();
                checked = true;
            }
            last = checked ? rte_rdtsc() : now; // the getrusage call is not the loop's
        }
        rte_rcu_qsbr_thread_offline(rig->rcu, 0);
        return 0;
    }

    // The phase's line of the stall summary.
    struct Stalls {
        const char *phase;
        double secs = 0, own_secs = 0;   // wall; the worker's own (not switched out) time
        uint64_t over = 0, over_own = 0; // iterations over kStallUs: all, not switched out
        double worst_us = 0, worst_own_us = 0;
    };
    Stalls stalls(const char *phase, double secs) const {
        double hz = double(rte_get_tsc_hz());
        return {phase,
                secs,
                double(own_cycles[0] + own_cycles[1]) / hz,
                long_switched + long_own[0] + long_own[1],
                long_own[0] + long_own[1],
                double(max_cycles) * 1e6 / hz,
                double(max_own_cycles) * 1e6 / hz};
    }

    void print(const char *what, double secs, const Around &around) const {
        double hz = double(rte_get_tsc_hz());
        std::printf("  worker %-22s %6.2f Mpps, worst iteration %7.1f us; iterations by us:", what,
                    double(packets) / secs / 1e6, double(max_cycles) * 1e6 / hz);
        for (unsigned k = 0; k < kBuckets; k++)
            std::printf(" %s:%lu", kBucketNames[k], (unsigned long)hist[k]);
        std::printf("\n  worker %-22s over %.0f us: %lu switched out, %lu not (worst %.1f us)\n",
                    "", kStallUs, (unsigned long)long_switched,
                    (unsigned long)(long_own[0] + long_own[1]), double(max_own_cycles) * 1e6 / hz);
        // Per second of the worker's own (not switched out) time, with a writer batch under
        // way and without: the writer's share is the difference of the two rates.
        const char *when[2] = {"outside writer batches", "during writer batches"};
        for (unsigned k = 0; k < 2; k++) {
            double s = double(own_cycles[k]) / hz;
            std::printf("  worker %-22s   %s: %lu in %.3f s of its time (%.0f/s), worst %.1f us\n",
                        "", when[k], (unsigned long)long_own[k], s,
                        s > 0 ? double(long_own[k]) / s : 0.0, double(max_long[k]) * 1e6 / hz);
        }
        around.print();
    }
};

// Writer phases next to the writer-free phase of the same length that follows each: the
// stalls the VM imposes (kernel tick, other processes, host preemption) are in both, the
// writer's only in the first. A maximum grows with the length of a phase, hence the same
// length.
void print_stalls(const std::vector<Loop::Stalls> &rows) {
    std::printf("worker iterations over %.0f us, per second and the worst (own: not switched "
                "out, per second of the worker's own time):\n",
                kStallUs);
    std::printf("  %-36s %7s %10s %10s %10s %10s\n", "phase", "wall s", "all /s", "worst us",
                "own /s", "worst us");
    for (const Loop::Stalls &r : rows)
        std::printf("  %-36s %7.2f %10.0f %10.1f %10.0f %10.1f\n", r.phase, r.secs,
                    r.secs > 0 ? double(r.over) / r.secs : 0.0, r.worst_us,
                    r.own_secs > 0 ? double(r.over_own) / r.own_secs : 0.0, r.worst_own_us);
}

int loop_main(void *arg) {
    return static_cast<Loop *>(arg)->run();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// One route update of the churn: route `idx` goes via gateway `next` (0, 1) or is
// withdrawn (2). Generated once, replayed through our path and on the bare table.
struct Op {
    uint32_t idx;
    uint8_t next;
};
// What the BGP side gets from decoded UPDATEs: a prefix and its gateway (0, 1), or 2 for
// a withdrawal.
struct Nlri {
    Prefix prefix;
    uint8_t next;
};

// Replaces 3/4, withdraws 1/4 of the routes it picks; re-announces withdrawn ones.
std::vector<Op> make_ops(std::vector<uint8_t> &state, const std::vector<uint32_t> &pool, size_t n,
                         uint32_t seed) {
    std::mt19937 r(seed);
    std::vector<Op> ops;
    ops.reserve(n);
    for (size_t k = 0; k < n; k++) {
        uint32_t i = pool[r() % pool.size()];
        unsigned next = state[i] == 2 ? r() % 2 : (r() % 4 == 0 ? 2 : 1 - state[i]);
        state[i] = uint8_t(next);
        ops.push_back({i, uint8_t(next)});
    }
    return ops;
}

struct Percentiles {
    double p50, p99, max;
};
Percentiles percentiles(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v[v.size() * 99 / 100], v.back()};
}

int run(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    size_t n_routes = argc > 1 ? std::stoul(argv[1]) : 1000000;
    std::string mix = argc > 2 ? argv[2] : "internet";
    if (mix != "internet" && mix != "24") {
        std::fprintf(stderr, "usage: bench_fib_update [routes] [internet|24]\n");
        return 2;
    }
    std::vector<bench::Route4> routes;
    std::vector<uint32_t> dsts;
    if (mix == "internet") {
        auto w = bench::make_workload4(bench::Mix::Internet, n_routes, 4096, 0.0, 5);
        routes = std::move(w.routes);
        dsts = std::move(w.dsts);
    } else {
        for (size_t k = 0; k < n_routes; k++)
            routes.push_back({uint32_t((16u << 24) + (k << 8)), 24, 0});
        std::mt19937 rng(3);
        for (int k = 0; k < 4096; k++) dsts.push_back(routes[rng() % n_routes].addr | 1);
    }
    size_t depth_count[33] = {};
    std::vector<uint32_t> all(n_routes), shortest; // route indices
    for (size_t k = 0; k < n_routes; k++) {
        depth_count[routes[k].depth]++;
        all[k] = uint32_t(k);
        if (routes[k].depth <= 18) shortest.push_back(uint32_t(k));
    }

    init_eal(argv[0], 2048, false, "0,1");
    {
        // The internet mix needs a tbl8 group per /24 holding longer prefixes (~10 %).
        Rig rig(32768, uint32_t(n_routes + 4096));
        rig.w->burst = 32;
        auto &prog = *rig.prog;
        prog.add_interface(0, "in", rig.port[0], 0, {*Prefix::parse("10.0.0.1/24", true)});
        prog.add_interface(1, "a", rig.port[1], 0, {*Prefix::parse("10.0.1.1/24", true)});
        prog.add_interface(2, "b", rig.port[2], 0, {*Prefix::parse("10.0.2.1/24", true)});
        const IpAddr gw[2] = {*IpAddr::parse("10.0.1.2"), *IpAddr::parse("10.0.2.2")};
        prog.neighbor(1, gw[0], mac(0x21));
        prog.neighbor(2, gw[1], mac(0x22));

        bgp::Rib rib(bgp::RibOptions{65001, 1, 0, 1, false, false});
        bgp::RibPeer peer;
        peer.address = gw[0];
        peer.asn = 65002;
        peer.router_id = 2;
        bgp::PeerId pid = rib.add_peer(peer);
        fib::RouteRing ring(1 << 16);
        // The feed wakes the writer as vleafd's BGP thread does (an eventfd); the throughput
        // phases poll the ring instead, the single-route phase sleeps on it.
        int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        fib::Feed feed(rib, ring, 1 << 22, [wake] {
            uint64_t one = 1;
            (void)!write(wake, &one, sizeof one);
        });
        fib::DrainCounters drained;
        auto attrs_via = [&](unsigned g) {
            bgp::PathAttrs a;
            a.origin = bgp::Origin::Igp;
            a.as_path = bgp::AsPath{{{bgp::SegmentType::AsSequence, {65002}}}};
            return rib.intern(std::move(a), bgp::NextHop{gw[g], {}});
        };
        const bgp::AttrData *via[2] = {attrs_via(0), attrs_via(1)};
        bgp::Rib::ref(via[0]); // kept alive across withdrawals
        bgp::Rib::ref(via[1]);
        auto prefix = [&](size_t k) { return Prefix{IpAddr::v4(routes[k].addr), routes[k].depth}; };

        Loop loop;
        loop.rig = &rig;
        loop.tmpl =
            ipv4(mac(0x10), mac(0x99), V4{"10.0.0.2", "16.0.0.1", 64, 17, 1000, 2000, 18, 0});
        loop.dsts = dsts;
        if (rte_eal_remote_launch(loop_main, &loop, kLcore) != 0) return 1;
        while (!loop.tid.load()) std::this_thread::yield();
        ThreadSched worker_sched(loop.tid);
        Around around;
        around.cpu = rte_lcore_to_cpu_id(int(kLcore));
        around.worker = &worker_sched;
        std::printf("bench_fib_update: %zu routes (%s mix:", n_routes, mix.c_str());
        for (unsigned d = 0; d <= 32; d++)
            if (depth_count[d])
                std::printf(" /%u %.1f%%", d, 100.0 * double(depth_count[d]) / double(n_routes));
        std::printf("), worker on lcore %u, writer and BGP side on lcore 0\n", kLcore);
        print_placement();

        // Reference: the worker with no table updates, here with empty tables (its packets
        // hit no route yet: the same pipeline, dropped as no_route at the end) and after
        // each writer phase for as long as that phase (the tables then full).
        std::vector<Loop::Stalls> stall_rows;
        auto idle = [&](const char *what, double secs) {
            around.begin();
            loop.measuring = true;
            auto t0 = std::chrono::steady_clock::now();
            std::this_thread::sleep_for(std::chrono::duration<double>(secs));
            loop.measuring = false;
            double s = seconds_since(t0);
            loop.print(what, s, around);
            stall_rows.push_back(loop.stalls(what, s));
            loop.reset();
        };
        idle("idle tables", 1);
        std::chrono::steady_clock::time_point t;

        // The writer: what vleafd's daemon thread does with the ring. writer_cpu: its CPU
        // time in drains that applied something (not its polling of an empty ring).
        double writer_cpu = 0;
        auto drain = [&] {
            if (!ring.read_available()) return size_t(0);
            double c0 = thread_cpu_seconds();
            size_t n = loop.writer_batch([&] { return fib::drain(ring, prog, 4096, drained); });
            writer_cpu += thread_cpu_seconds() - c0;
            return n;
        };
        auto write_until = [&](auto done) {
            while (!done()) {
                if (drain() == 0) std::this_thread::yield();
            }
            while (drain()) {
            }
        };
        double bgp_cpu = 0;
        // The BGP side as the speaker imports an UPDATE's prefixes (Speaker::import_prefixes):
        // from the decoded NLRI in order, the RIB entry prefetched kAhead prefixes early;
        // vleafd's BGP loop flushes the feed after each read, here every 1024 prefixes.
        auto import = [&](const std::vector<Nlri> &list) {
            constexpr size_t kAhead = 8;
            for (size_t k = 0; k < list.size(); k++) {
                if (k + kAhead < list.size())
                    rib.prefetch(bgp::RouteFamily::Ipv4Unicast, list[k + kAhead].prefix);
                const Nlri &n = list[k];
                if (n.next == 2)
                    rib.withdraw(pid, bgp::RouteFamily::Ipv4Unicast, n.prefix, 0);
                else
                    rib.update(pid, bgp::RouteFamily::Ipv4Unicast, n.prefix, 0, via[n.next]);
                if ((k & 1023) == 0) feed.flush();
            }
            while (feed.pending()) {
                feed.flush();
                std::this_thread::yield();
            }
        };
        std::vector<Nlri> feed_nlri;
        feed_nlri.reserve(n_routes);
        for (size_t k = 0; k < n_routes; k++) feed_nlri.push_back({prefix(k), uint8_t(k % 2)});

        // 1. The feed: from the first RIB update to the worker forwarding the last prefix.
        std::atomic<bool> fed{false};
        around.begin();
        loop.measuring = true;
        t = std::chrono::steady_clock::now();
        std::thread bgp_side([&] {
            import(feed_nlri);
            bgp_cpu = thread_cpu_seconds();
            fed = true;
        });
        write_until([&] { return fed.load(); });
        bgp_side.join();
        Probe &pr = loop.probe;
        uint32_t last = routes.back().addr;
        pr.nh = [&] {
            uint64_t nh;
            rig.fib->vrf(0)->v4->lookup_bulk(&last, &nh, 1);
            return uint32_t(nh);
        }();
        pr.ip = last;
        while (pr.ip.load()) std::this_thread::yield();
        double feed_secs = seconds_since(t);
        loop.measuring = false;
        std::printf("feed: %zu prefixes usable in the dataplane %.2f s after the first RIB update "
                    "(%.0f prefixes/s); %zu routes in the FIB, %lu errors; CPU: writer %.2f s "
                    "(%.2f us/prefix), BGP side %.2f s\n",
                    n_routes, feed_secs, double(n_routes) / feed_secs, prog.bgp_routes(),
                    (unsigned long)rig.errors.size(), writer_cpu,
                    writer_cpu * 1e6 / double(n_routes), bgp_cpu);
        loop.print("during the feed", feed_secs, around);
        stall_rows.push_back(loop.stalls("during the feed", feed_secs));
        loop.reset();
        idle("no writer, same length", feed_secs);

        // The adjacency of each gateway, as the worker sees it (for the latency probe):
        // what the gateway's own neighbor route leads to.
        uint32_t adjacency[2];
        for (unsigned g = 0; g < 2; g++) {
            uint32_t ip = gw[g].v4_host();
            uint64_t nh;
            rig.fib->vrf(0)->v4->lookup_bulk(&ip, &nh, 1);
            adjacency[g] = uint32_t(nh);
        }

        // 2. Updates: replaces, withdrawals and re-announcements at random; 2b. the same
        // on the shortest prefixes only.
        std::vector<uint8_t> state(n_routes, 0); // 0: via gw0, 1: via gw1, 2: withdrawn
        for (size_t k = 0; k < n_routes; k++) state[k] = uint8_t(k % 2);
        std::vector<Op> ops = make_ops(state, all, n_routes, 9);
        std::vector<Op> short_ops =
            shortest.empty() ? std::vector<Op>{} : make_ops(state, shortest, n_routes / 10, 11);
        auto churn = [&](const char *what, const char *phase, const std::vector<Op> &list) {
            std::vector<Nlri> nlri;
            nlri.reserve(list.size());
            for (const Op &op : list) nlri.push_back({prefix(op.idx), op.next});
            fed = false;
            uint64_t msgs_before = drained.messages, gp_before = rig.fib->counters().grace_periods;
            around.begin();
            loop.measuring = true;
            writer_cpu = 0;
            t = std::chrono::steady_clock::now();
            bgp_side = std::thread([&] {
                double c0 = thread_cpu_seconds();
                import(nlri);
                bgp_cpu = thread_cpu_seconds() - c0;
                fed = true;
            });
            write_until([&] { return fed.load(); });
            bgp_side.join();
            double secs = seconds_since(t);
            loop.measuring = false;
            uint64_t applied = drained.messages - msgs_before;
            std::printf(
                "%s: %zu updates, %lu messages applied in %.2f s = %.0f updates/s "
                "(producer coalesced %lu; %lu resyncs); %lu grace periods; %lu errors; "
                "CPU: writer %.2f s = %.0f updates per writer CPU-second (%.2f "
                "us/update), BGP side %.2f s\n",
                what, list.size(), (unsigned long)applied, secs, double(list.size()) / secs,
                (unsigned long)(list.size() - applied), (unsigned long)feed.counters().resyncs,
                (unsigned long)(rig.fib->counters().grace_periods - gp_before),
                (unsigned long)rig.errors.size(), writer_cpu, double(list.size()) / writer_cpu,
                writer_cpu * 1e6 / double(list.size()), bgp_cpu);
            loop.print("during the updates", secs, around);
            stall_rows.push_back(loop.stalls(phase, secs));
            loop.reset();
            idle("no writer, same length", secs);
        };
        churn("updates", "during the updates", ops);
        if (!short_ops.empty())
            churn("updates of /16-/18 only", "during the /16-/18 updates", short_ops);
        print_stalls(stall_rows);

        // 3. Single-route latency: UPDATE decoded, imported, sent, applied, forwarded.
        // Prefixes from 240.0.0.0/4, which no route of either mix covers.
        bgp::CodecContext ctx;
        ctx.families = {true, true, true};
        std::vector<double> lat, to_ring, to_fib, to_worker, lat_clean, lat_waited;
        std::vector<double> worker_wait, writer_wait, bgp_wait; // run-queue waits, µs
        bgp::UpdateResult res;
        const double tsc_us = double(rte_get_tsc_hz()) / 1e6;
        ThreadSched writer_sched(gettid());
        uint64_t stale;
        (void)!read(wake, &stale, sizeof stale); // the throughput phases' wake-ups
        for (int s = 0; s < 2000; s++) {
            uint32_t a = (240u << 24) | (uint32_t(s) << 8);
            bgp::PathAttrs pa;
            pa.origin = bgp::Origin::Igp;
            pa.as_path = bgp::AsPath{{{bgp::SegmentType::AsSequence, {65002}}}};
            bgp::Bytes msg;
            bgp::PrefixNlri nlri{0, Prefix{IpAddr::v4(a), 24}};
            bgp::encode_announce(bgp::RouteFamily::Ipv4Unicast, pa, bgp::NextHop{gw[s % 2], {}},
                                 std::span<const bgp::PrefixNlri>(&nlri, 1), ctx, msg);
            // The worker watches for the gateway's adjacency (which the feed's routes
            // through that gateway already use) as the lookup result.
            uint32_t ip = a | 1;
            pr.seen_tsc = 0;
            pr.nh = adjacency[s % 2];
            pr.ip = ip;
            SchedStat w0 = worker_sched.read().value_or(SchedStat{});
            SchedStat m0 = writer_sched.read().value_or(SchedStat{});
            std::atomic<bool> sent{false};
            uint64_t t0 = 0, t_sent = 0, b_wait = 0;
            std::thread b([&] {
                ThreadSched me(gettid());
                SchedStat b0 = me.read().value_or(SchedStat{});
                t0 = rte_rdtsc();
                bgp::decode_update(bgp::ByteView(msg.data() + 19, msg.size() - 19), ctx, res);
                bgp::PathAttrs got = res.update.attrs;
                bgp::NextHop nh{IpAddr::v4(*got.next_hop), {}};
                got.next_hop.reset();
                auto *at = rib.intern(std::move(got), nh);
                for (auto &n : res.update.nlri)
                    rib.update(pid, bgp::RouteFamily::Ipv4Unicast, n.prefix, 0, at);
                rib.discard_unused(at);
                feed.flush();
                t_sent = rte_rdtsc();
                b_wait = me.read().value_or(SchedStat{}).wait_ns - b0.wait_ns;
                sent = true;
            });
            // The writer as in vleafd's loop: asleep until the eventfd (or the loop's 1 ms
            // timeout), then a drain of whatever waits.
            uint64_t t_applied = 0;
            while (!t_applied || !sent.load()) {
                pollfd pf{wake, POLLIN, 0};
                poll(&pf, 1, 1);
                uint64_t v;
                (void)!read(wake, &v, sizeof v);
                if (drain()) t_applied = rte_rdtsc();
            }
            b.join();
            SchedStat m1 = writer_sched.read().value_or(SchedStat{}); // its part ends here
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (pr.ip.load() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::yield();
            if (pr.ip.load()) {
                std::printf("sample %d: the worker never saw the route\n", s);
                pr.ip = 0;
                continue;
            }
            SchedStat w1 = worker_sched.read().value_or(SchedStat{});
            uint64_t seen = pr.seen_tsc;
            double us = double(seen - t0) / tsc_us;
            lat.push_back(us);
            to_ring.push_back(double(t_sent - t0) / tsc_us);
            to_fib.push_back(double(std::max(t_applied, t_sent) - t_sent) / tsc_us);
            to_worker.push_back(double(seen - std::min(seen, t_applied)) / tsc_us);
            worker_wait.push_back(double(w1.wait_ns - w0.wait_ns) / 1e3);
            writer_wait.push_back(double(m1.wait_ns - m0.wait_ns) / 1e3);
            bgp_wait.push_back(double(b_wait) / 1e3);
            // Nothing of ours shares the worker's CPU: a wait there is another process.
            (w1.wait_ns == w0.wait_ns ? lat_clean : lat_waited).push_back(us);
        }
        auto l = percentiles(lat), r = percentiles(to_ring), f = percentiles(to_fib),
             wk = percentiles(to_worker);
        std::printf("single-route UPDATE to forwarding: p50 %.1f us, p99 %.1f us, max %.1f us (%zu "
                    "samples); of which decode+RIB+ring p50/p99 %.1f/%.1f us, ring to applied "
                    "(eventfd wake-up included) %.1f/%.1f us, applied to the worker's lookup "
                    "%.1f/%.1f us\n",
                    l.p50, l.p99, l.max, lat.size(), r.p50, r.p99, f.p50, f.p99, wk.p50, wk.p99);
        auto ww = percentiles(worker_wait), mw = percentiles(writer_wait),
             bw = percentiles(bgp_wait);
        std::printf("  run-queue waits during a sample p50/p99/max: worker %.0f/%.0f/%.0f us, "
                    "writer %.0f/%.0f/%.0f us, BGP side %.0f/%.0f/%.0f us\n",
                    ww.p50, ww.p99, ww.max, mw.p50, mw.p99, mw.max, bw.p50, bw.p99, bw.max);
        if (!lat_clean.empty()) {
            auto c = percentiles(lat_clean);
            std::printf("  samples in which the worker never waited for its CPU: %zu, p50 %.1f us, "
                        "p99 %.1f us, max %.1f us\n",
                        lat_clean.size(), c.p50, c.p99, c.max);
        }
        if (!lat_waited.empty()) {
            auto c = percentiles(lat_waited);
            std::printf("  samples in which it waited (another process on its CPU): %zu, p50 %.1f "
                        "us, p99 %.1f us, max %.1f us\n",
                        lat_waited.size(), c.p50, c.p99, c.max);
        }
        size_t slow = 0, slow_waited = 0;
        for (size_t k = 0; k < lat.size(); k++)
            if (lat[k] > 1000) {
                slow++;
                if (worker_wait[k] + writer_wait[k] + bgp_wait[k] > 0) slow_waited++;
            }
        std::printf("  samples over 1 ms: %zu, of which %zu with a run-queue wait of the worker, "
                    "the writer or the BGP side\n",
                    slow, slow_waited);

        // References: bare adds and deletes of the same operations on a table nobody
        // reads, rte_fib's DIR-24-8 and ours (dp::Dir24, what dp::Fib uses).
        auto bare = [&](const char *name, auto add, auto del) {
            double cpu0 = thread_cpu_seconds();
            for (size_t k = 0; k < n_routes; k++)
                add(routes[k].addr, routes[k].depth, uint32_t(3 + k % 2));
            double add_cpu = thread_cpu_seconds() - cpu0;
            std::printf("reference, bare %s: %zu adds in %.2f CPU-s (%.0f/s)\n", name, n_routes,
                        add_cpu, double(n_routes) / add_cpu);
            auto replay = [&](const char *what, const std::vector<Op> &list) {
                double c0 = thread_cpu_seconds();
                for (const Op &op : list) {
                    const bench::Route4 &rt = routes[op.idx];
                    if (op.next == 2)
                        del(rt.addr, rt.depth);
                    else
                        add(rt.addr, rt.depth, uint32_t(3 + op.next));
                }
                double cpu = thread_cpu_seconds() - c0;
                std::printf("reference, bare %s, %s: %zu in %.2f CPU-s (%.0f/s, %.2f "
                            "us/update)\n",
                            name, what, list.size(), cpu, double(list.size()) / cpu,
                            cpu * 1e6 / double(list.size()));
            };
            replay("updates", ops);
            if (!short_ops.empty()) replay("updates of /16-/18 only", short_ops);
        };
        {
            rte_fib_conf c{};
            c.type = RTE_FIB_DIR24_8;
            c.default_nh = 0;
            c.max_routes = int(n_routes + 4096);
            c.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
            c.dir24_8.num_tbl8 = std::max<uint32_t>(1024, uint32_t(n_routes + 4096) / 8);
            rte_fib *f = rte_fib_create("bench_bare", 0, &c);
            bare(
                "rte_fib",
                [&](uint32_t ip, uint8_t len, uint32_t nh) { rte_fib_add(f, ip, len, nh); },
                [&](uint32_t ip, uint8_t len) { rte_fib_delete(f, ip, len); });
            rte_fib_free(f);
        }
        {
            uint32_t max = uint32_t(n_routes + 4096);
            dp::Dir24 d(max, std::max<uint32_t>(1024, max / 8), rig.rcu, 0);
            bare(
                "dp::Dir24", [&](uint32_t ip, uint8_t len, uint32_t nh) { d.add(ip, len, nh); },
                [&](uint32_t ip, uint8_t len) { d.del(ip, len); });
        }
        loop.stop = true;
        rte_eal_wait_lcore(kLcore);
        close(wake);
    }
    finish_eal();
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    return guarded_main(argc, argv, run);
}
