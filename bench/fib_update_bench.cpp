// The RIB -> FIB path under load, in one process: a worker lcore runs the real pipeline
// at its maximum rate (mbufs from the pool, transmitted to ring ports and recycled) and
// records how long each loop iteration takes, while
//   1. a 1M-prefix feed goes RIB -> Feed -> route ring -> programmer -> rte_fib, timed from
//      the first RIB update to the worker seeing the last prefix's next hop;
//   2. 1M route updates (next-hop replaces, withdrawals, re-announcements of those 1M
//      prefixes) are applied: updates/s at the writer;
//   3. single-route UPDATEs (encoded, decoded, imported, sent, applied) are timed from the
//      decode to the worker's lookup returning the new next hop (p50/p99).
// References in the same run: the worker's loop with no updates (stalls, packets/s), and
// bare rte_fib_add/delete of the same 1M operations on a table nobody reads (the floor of
// what the writer does per update).
//
//   bench_fib_update [routes=1000000]
#include "control/bgp/rib.hpp"
#include "control/fib/feed.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <rte_cycles.h>
#include <rte_launch.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr unsigned kLcore = 1;
constexpr unsigned kBuckets = 8; // stall histogram, µs: <1 <2 <5 <10 <20 <50 <100 >=100
const double kBucketUs[kBuckets - 1] = {1, 2, 5, 10, 20, 50, 100};
const char *kBucketNames[kBuckets] = {"<1",    "1-2",   "2-5",    "5-10",
                                      "10-20", "20-50", "50-100", ">=100"};

struct Probe {
    std::atomic<uint32_t> ip{0}; // host order; 0: nothing to watch
    std::atomic<uint32_t> nh{0};
    std::atomic<uint64_t> seen_tsc{0};
};

struct Loop {
    Rig *rig;
    std::atomic<bool> stop{false};
    std::atomic<bool> measuring{false};
    uint64_t hist[kBuckets] = {}, max_cycles = 0, iterations = 0, packets = 0;
    Probe probe;
    Frame tmpl;
    std::vector<uint32_t> dsts; // destinations the forwarded packets cycle through

    void reset() {
        std::fill(std::begin(hist), std::end(hist), 0);
        max_cycles = iterations = packets = 0;
    }

    int run() {
        dp::Worker &w = *rig->w;
        rte_rcu_qsbr_thread_register(rig->rcu, 0);
        rte_rcu_qsbr_thread_online(rig->rcu, 0);
        const double us = double(rte_get_tsc_hz()) / 1e6;
        uint64_t last = rte_rdtsc();
        size_t next = 0;
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
                rte_fib_lookup_bulk(rig->fib->vrf(0)->v4, &ip, &nh, 1);
                if (nh == probe.nh.load(std::memory_order_relaxed)) {
                    probe.seen_tsc.store(rte_rdtsc(), std::memory_order_release);
                    probe.ip.store(0, std::memory_order_release);
                }
            }
            rte_rcu_qsbr_quiescent(rig->rcu, 0);
            uint64_t now = rte_rdtsc();
            if (measuring.load(std::memory_order_relaxed)) {
                uint64_t c = now - last;
                max_cycles = std::max(max_cycles, c);
                double u = double(c) / us;
                unsigned k = 0;
                while (k < kBuckets - 1 && u >= kBucketUs[k]) k++;
                hist[k]++;
                iterations++;
            }
            last = now;
        }
        rte_rcu_qsbr_thread_offline(rig->rcu, 0);
        return 0;
    }

    void print(const char *what, double secs) const {
        double us = double(max_cycles) * 1e6 / double(rte_get_tsc_hz());
        std::printf("  worker %-22s %6.2f Mpps, worst iteration %7.1f us; iterations by us:", what,
                    double(packets) / secs / 1e6, us);
        for (unsigned k = 0; k < kBuckets; k++)
            std::printf(" %s:%lu", kBucketNames[k], (unsigned long)hist[k]);
        std::printf("\n");
    }
};

int loop_main(void *arg) {
    return static_cast<Loop *>(arg)->run();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

uint32_t feed_addr(size_t k) { // /24s from 16.0.0.0 upward
    return uint32_t((16u << 24) + (k << 8));
}

} // namespace

int main(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    size_t n_routes = argc > 1 ? std::stoul(argv[1]) : 1000000;
    init_eal(argv[0], 2048, false, "0,1");
    {
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
        fib::Feed feed(rib, ring, 1 << 22, nullptr);
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

        Loop loop;
        loop.rig = &rig;
        loop.tmpl =
            ipv4(mac(0x10), mac(0x99), V4{"10.0.0.2", "16.0.0.1", 64, 17, 1000, 2000, 18, 0});
        std::mt19937 rng(3);
        for (int k = 0; k < 4096; k++) loop.dsts.push_back(feed_addr(rng() % n_routes) | 1);
        if (rte_eal_remote_launch(loop_main, &loop, kLcore) != 0) return 1;
        std::printf(
            "bench_fib_update: %zu routes, worker on lcore %u, writer and BGP side on lcore 0\n",
            n_routes, kLcore);

        // Reference: the worker with no table updates (its packets hit no route yet: the
        // same pipeline, dropped as no_route at the end).
        loop.measuring = true;
        auto t = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(std::chrono::seconds(1));
        loop.measuring = false;
        loop.print("idle tables", seconds_since(t));
        loop.reset();

        // 1. The 1M-prefix feed: from the first RIB update to the worker forwarding the last.
        std::atomic<bool> fed{false};
        loop.measuring = true;
        t = std::chrono::steady_clock::now();
        std::thread bgp_side([&] {
            for (size_t k = 0; k < n_routes; k++) {
                rib.update(pid, bgp::RouteFamily::Ipv4Unicast, Prefix{IpAddr::v4(feed_addr(k)), 24},
                           0, via[k % 2]);
                if ((k & 1023) == 0) feed.flush();
            }
            while (feed.pending()) {
                feed.flush();
                std::this_thread::yield();
            }
            fed = true;
        });
        // The writer: what vleafd's daemon thread does with the ring.
        auto write_until = [&](auto done) {
            while (!done()) {
                if (fib::drain(ring, prog, 4096, drained) == 0) std::this_thread::yield();
            }
            while (fib::drain(ring, prog, 4096, drained)) {
            }
        };
        write_until([&] { return fed.load(); });
        bgp_side.join();
        Probe &pr = loop.probe;
        uint32_t last = feed_addr(n_routes - 1) | 1;
        pr.nh = [&] {
            uint64_t nh;
            rte_fib_lookup_bulk(rig.fib->vrf(0)->v4, &last, &nh, 1);
            return uint32_t(nh);
        }();
        pr.ip = last;
        while (pr.ip.load()) std::this_thread::yield();
        double feed_secs = seconds_since(t);
        loop.measuring = false;
        std::printf(
            "1M feed: %zu prefixes usable in the dataplane %.2f s after the first RIB update "
            "(%.0f prefixes/s); %zu routes in the FIB, %lu errors\n",
            n_routes, feed_secs, double(n_routes) / feed_secs, prog.bgp_routes(),
            (unsigned long)rig.errors.size());
        loop.print("during the feed", feed_secs);
        loop.reset();

        // The adjacency of each gateway, as the worker sees it (for the latency probe).
        uint32_t adjacency[2];
        for (unsigned g = 0; g < 2; g++) {
            uint32_t ip = feed_addr(g) | 1; // prefix g of the feed goes via gateway g
            uint64_t nh;
            rte_fib_lookup_bulk(rig.fib->vrf(0)->v4, &ip, &nh, 1);
            adjacency[g] = uint32_t(nh);
        }

        // 2. 1M updates: replaces, withdrawals and re-announcements at random.
        std::vector<uint8_t> state(n_routes, 0); // 0: via gw0, 1: via gw1, 2: withdrawn
        for (size_t k = 0; k < n_routes; k++) state[k] = uint8_t(k % 2);
        fed = false;
        size_t n_updates = n_routes;
        uint64_t msgs_before = drained.messages;
        loop.measuring = true;
        t = std::chrono::steady_clock::now();
        bgp_side = std::thread([&] {
            std::mt19937 r(9);
            for (size_t k = 0; k < n_updates; k++) {
                size_t i = r() % n_routes;
                Prefix p{IpAddr::v4(feed_addr(i)), 24};
                unsigned next = state[i] == 2 ? r() % 2 : (r() % 4 == 0 ? 2 : 1 - state[i]);
                if (next == 2)
                    rib.withdraw(pid, bgp::RouteFamily::Ipv4Unicast, p, 0);
                else
                    rib.update(pid, bgp::RouteFamily::Ipv4Unicast, p, 0, via[next]);
                state[i] = uint8_t(next);
                if ((k & 1023) == 0) feed.flush();
            }
            while (feed.pending()) {
                feed.flush();
                std::this_thread::yield();
            }
            fed = true;
        });
        write_until([&] { return fed.load(); });
        bgp_side.join();
        double upd_secs = seconds_since(t);
        loop.measuring = false;
        uint64_t applied = drained.messages - msgs_before;
        std::printf("updates: %lu messages applied in %.2f s = %.0f updates/s (producer "
                    "coalesced %lu changes; %lu resyncs); %lu grace periods; %lu errors\n",
                    (unsigned long)applied, upd_secs, double(n_updates) / upd_secs,
                    (unsigned long)(n_updates - applied), (unsigned long)feed.counters().resyncs,
                    (unsigned long)rig.fib->counters().grace_periods,
                    (unsigned long)rig.errors.size());
        loop.print("during the updates", upd_secs);
        loop.reset();

        // 3. Single-route latency: UPDATE decoded, imported, sent, applied, forwarded.
        bgp::CodecContext ctx;
        ctx.families = {true, true, true};
        std::vector<double> lat;
        bgp::UpdateResult res;
        for (int s = 0; s < 2000; s++) {
            uint32_t a = (200u << 24) | (uint32_t(s) << 8);
            bgp::PathAttrs pa;
            pa.origin = bgp::Origin::Igp;
            pa.as_path = bgp::AsPath{{{bgp::SegmentType::AsSequence, {65002}}}};
            bgp::Bytes msg;
            bgp::PrefixNlri nlri{0, Prefix{IpAddr::v4(a), 24}};
            bgp::encode_announce(bgp::RouteFamily::Ipv4Unicast, pa, bgp::NextHop{gw[s % 2], {}},
                                 std::span<const bgp::PrefixNlri>(&nlri, 1), ctx, msg);
            std::atomic<bool> sent{false};
            uint64_t t0 = 0;
            std::thread b([&] {
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
                sent = true;
            });
            // The worker watches for the gateway's adjacency (which the feed's routes
            // through that gateway already use) as the lookup result.
            uint32_t ip = a | 1;
            pr.seen_tsc = 0;
            pr.nh = adjacency[s % 2];
            pr.ip = ip;
            write_until([&] { return sent.load(); });
            b.join();
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (pr.ip.load() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::yield();
            if (pr.ip.load()) {
                std::printf("sample %d: the worker never saw the route\n", s);
                pr.ip = 0;
                continue;
            }
            lat.push_back(double(pr.seen_tsc - t0) * 1e6 / double(rte_get_tsc_hz()));
        }
        std::sort(lat.begin(), lat.end());
        std::printf("single-route UPDATE to forwarding: p50 %.1f us, p99 %.1f us, max %.1f us (%zu "
                    "samples)\n",
                    lat[lat.size() / 2], lat[lat.size() * 99 / 100], lat.back(), lat.size());

        // Reference: bare rte_fib adds and deletes of the same shape, nobody reading.
        {
            rte_fib_conf c{};
            c.type = RTE_FIB_DIR24_8;
            c.default_nh = 0;
            c.max_routes = int(n_routes + 4096);
            c.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
            c.dir24_8.num_tbl8 = 1024;
            rte_fib *bare = rte_fib_create("bench_bare", 0, &c);
            t = std::chrono::steady_clock::now();
            for (size_t k = 0; k < n_routes; k++) rte_fib_add(bare, feed_addr(k), 24, 3 + k % 2);
            double add_secs = seconds_since(t);
            std::mt19937 r(9);
            t = std::chrono::steady_clock::now();
            for (size_t k = 0; k < n_updates; k++) {
                size_t i = r() % n_routes;
                if (r() % 4 == 0)
                    rte_fib_delete(bare, feed_addr(i), 24);
                else
                    rte_fib_add(bare, feed_addr(i), 24, 3 + r() % 2);
            }
            double churn_secs = seconds_since(t);
            std::printf("reference, bare rte_fib: %zu adds in %.2f s (%.0f/s); %zu updates in %.2f "
                        "s (%.0f/s)\n",
                        n_routes, add_secs, double(n_routes) / add_secs, n_updates, churn_secs,
                        double(n_updates) / churn_secs);
            rte_fib_free(bare);
        }
        loop.stop = true;
        rte_eal_wait_lcore(kLcore);
    }
    finish_eal();
    return 0;
}
