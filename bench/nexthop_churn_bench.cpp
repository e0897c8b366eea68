// What the table writer pays for RCU grace periods while a worker lcore forwards at its
// maximum rate (the real pipeline, mbufs from the pool, transmitted to ring ports):
//   nexthops: routes move between ECMP groups of a few gateways, so next-hop ids are freed
//     and reused all the time;
//   ipv6: /64s are added and deleted (rte_fib6 hands a tbl8 group a delete freed to the
//     next add: an add after a delete needs the grace period over; dp::Fib defers such
//     adds rather than waiting, whatever the programmer does; and DPDK 22.11 keeps the
//     reservation of deleted routes, so the table is rebuilt every ~11k adds).
// Each case runs with the FIB programmer holding freed ids until the dataplane has let go
// of them ("hold"), and as main did before, ids reusable as soon as their batch is out
// ("reuse": the writer waits when a reuse comes before the grace period is over),
// alternating in the same run. Reported: updates/s (accepted by the writer, and applied:
// until the IPv6 updates deferred at the end are in), grace periods, the writer's waits
// and the time it spent in them, IPv6 table rebuilds, the worker's packets/s.
//
//   bench_nexthop_churn [moves=200000] [batch=32] [rounds=3]
#include "bench/guarded_main.hpp"
#include "control/fib/ring.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <rte_launch.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <thread>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr unsigned kLcore = 1;
constexpr unsigned kGateways = 8, kRoutes = 16; // per output port

// fd00:<a>:<b>:<c>::<host>
IpAddr addr6(unsigned a, unsigned b, unsigned c, unsigned host) {
    uint8_t x[16] = {0xfd, 0, 0, uint8_t(a), 0, uint8_t(b), 0, uint8_t(c)};
    x[15] = uint8_t(host);
    return IpAddr::v6(x);
}

IpAddr gateway(unsigned out, unsigned k, bool ipv6) {
    return ipv6 ? addr6(out, 0, 0, 2 + k) : IpAddr::v4((10u << 24) | (out << 8) | (2 + k));
}

double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// The worker: one burst of 32 frames into the moving routes per loop, then a quiescent
// state, as dp::worker_main reports one per loop.
struct Forwarder {
    Rig *rig;
    std::atomic<bool> stop{false};
    uint64_t packets = 0;
    std::vector<Frame> frames; // ready to send, one per destination

    int run() {
        rte_rcu_qsbr_thread_online(rig->rcu, 0);
        dp::Burst b;
        size_t next = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            if (rte_pktmbuf_alloc_bulk(rig->pool, b.m, 32) == 0) {
                for (unsigned i = 0; i < 32; i++) {
                    rte_mbuf *m = b.m[i];
                    const Frame &f = frames[next++ % frames.size()];
                    std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
                    m->port = rig->port[0];
                }
                b.n = 32;
                b.port = rig->port[0];
                rig->w->process(b);
                packets += 32;
            }
            for (unsigned p = 1; p < Rig::kPorts; p++) {
                void *sent[64];
                unsigned k = rte_ring_dequeue_burst(rig->tx[p], sent, 64, nullptr);
                rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf **>(sent), k);
            }
            rte_rcu_qsbr_quiescent(rig->rcu, 0);
        }
        rte_rcu_qsbr_thread_offline(rig->rcu, 0);
        return 0;
    }
};

int forwarder_main(void *arg) {
    return static_cast<Forwarder *>(arg)->run();
}

void run_case(bool v6, bool hold, size_t n, size_t batch) {
    Rig rig(16384, 1 << 16);
    if (!hold) // the programmer as on main: freed ids reusable once their batch is out
        rig.prog = std::make_unique<fib::Programmer>([&rig](const Update &u) {
            auto e = rig.fib->apply(u);
            if (!e.empty()) rig.errors.push_back(e);
        });
    auto &prog = *rig.prog;
    for (unsigned p = 0; p < Rig::kPorts; p++) {
        std::vector<Prefix> addrs{Prefix{IpAddr::v4((10u << 24) | (p << 8) | 1), 24},
                                  Prefix{addr6(p, 0, 0, 1), 64}};
        const char *names[Rig::kPorts] = {"in", "a", "b"};
        prog.add_interface(uint16_t(p), names[p], rig.port[p], 0, addrs);
        for (unsigned k = 0; p && k < kGateways; k++)
            prog.neighbor(uint16_t(p), gateway(p, k, v6), mac(uint8_t(0x20 + p * 16 + k)));
    }
    fib::RouteRing ring(1 << 14);
    fib::DrainCounters drained;
    std::mt19937 rng(7);
    // Route r of port `out`: IPv4 10.<out>.<r>.0/24 through 1-3 gateways (moves), or a
    // /64 in fd00:<out>:<r>::/48, added or deleted.
    auto op = [&](unsigned out, unsigned r) {
        fib::RouteMsg m;
        if (v6) {
            m.prefix = Prefix{addr6(out, r, rng() % 64, 0), 64};
            m.op = rng() % 2 ? fib::RouteMsg::Op::Set : fib::RouteMsg::Op::Del;
            m.via[m.n_via++] = gateway(out, rng() % kGateways, true);
        } else {
            m.prefix = Prefix{IpAddr::v4((10u << 24) | (out << 16) | (r << 8)), 24};
            m.op = fib::RouteMsg::Op::Set;
            unsigned hops = 1 + rng() % 3;
            for (unsigned k = 0; k < hops; k++)
                m.via[m.n_via++] = gateway(out, rng() % kGateways, false);
        }
        ring.push(m);
    };
    for (unsigned out = 1; out < Rig::kPorts; out++)
        for (unsigned r = 0; r < kRoutes; r++) op(out, r);
    fib::drain(ring, prog, ring.read_available(), drained);

    Forwarder fw;
    fw.rig = &rig;
    for (unsigned k = 0; k < 256; k++) {
        unsigned out = 1 + k % 2;
        IpAddr dst = IpAddr::v4((10u << 24) | (out << 16) | (k / 2 % kRoutes) << 8 | (1 + k));
        fw.frames.push_back(
            ipv4(mac(0x10), mac(0x99), V4{"10.0.0.2", dst.str(), 64, 17, 1000, 2000, 18, 0}));
    }
    if (rte_eal_remote_launch(forwarder_main, &fw, kLcore) != 0) throw std::runtime_error("lcore");
    const auto c0 = rig.fib->counters();
    const uint64_t pk0 = fw.packets;
    double cpu0 = thread_cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    for (size_t done = 0; done < n; done += batch) {
        for (size_t k = 0; k < batch; k++) op(1 + rng() % 2, rng() % kRoutes);
        fib::drain(ring, prog, batch, drained);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // IPv6 updates dp::Fib deferred are still to go in: as their grace periods end.
    const size_t backlog = rig.fib->v6_backlog();
    while (rig.fib->v6_backlog()) {
        if (auto e = rig.fib->settle(); !e.empty()) rig.errors.push_back(e);
        std::this_thread::yield();
    }
    double all_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = thread_cpu_seconds() - cpu0;
    fw.stop = true;
    rte_eal_wait_lcore(kLcore);
    const auto &c = rig.fib->counters();
    std::printf(
        "%-9s %-5s %zu updates in %.2f s = %7.0f updates/s, %zu of them deferred at the end "
        "and in %.2f s later: %7.0f updates/s applied (writer CPU %.2f s); %lu grace periods, "
        "writer waited %lu times (%lu for a next-hop id) for %.1f ms in all (%.1f %% of its "
        "time); %lu ids reused; %lu IPv6 table rebuilds, %.1f ms in all; worker %.2f Mpps; "
        "%lu failed updates\n",
        v6 ? "ipv6" : "nexthops", hold ? "hold" : "reuse", n, secs, double(n) / secs, backlog,
        all_secs - secs, double(n) / all_secs, cpu,
        (unsigned long)(c.grace_periods - c0.grace_periods),
        (unsigned long)(c.grace_waits - c0.grace_waits),
        (unsigned long)(c.nh_reuse_waits - c0.nh_reuse_waits),
        double(c.grace_wait_ns - c0.grace_wait_ns) / 1e6,
        double(c.grace_wait_ns - c0.grace_wait_ns) / 1e7 / all_secs,
        (unsigned long)prog.counters().nh_reused, (unsigned long)(c.v6_rebuilds - c0.v6_rebuilds),
        double(c.v6_rebuild_ns - c0.v6_rebuild_ns) / 1e6, double(fw.packets - pk0) / all_secs / 1e6,
        (unsigned long)(c.failed - c0.failed));
    if (!rig.errors.empty()) std::printf("  first error: %s\n", rig.errors.front().c_str());
}

int run(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    size_t n = argc > 1 ? std::stoul(argv[1]) : 200000;
    size_t batch = argc > 2 ? std::stoul(argv[2]) : 32;
    unsigned rounds = argc > 3 ? unsigned(std::stoul(argv[3])) : 3;
    init_eal(argv[0], 1024, false, "0,1");
    std::printf("bench_nexthop_churn: %zu updates per case in batches of %zu, worker on lcore %u, "
                "writer on lcore 0\n",
                n, batch, kLcore);
    for (unsigned r = 0; r < rounds; r++)
        for (bool v6 : {false, true})
            for (bool hold : {true, false}) run_case(v6, hold, n, batch);
    finish_eal();
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    return guarded_main(argc, argv, run);
}
