// Live table updates under traffic: a real worker lcore forwards a continuous stream
// while the writer applies 1M route adds/deletes and next-hop changes through the route
// ring, the FIB programmer and the RCU-protected tables. Every test packet carries the
// port it must leave by; its destination is inside a covering route that is never
// removed, and every more-specific route churned under it leads out of the same port.
// So any drop, punt or packet on the wrong port is a table update seen half-done (e.g.
// a tbl8 group reused before a grace period).
#include "control/fib/ring.hpp"
#include "tests/packet/eal_main.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <rte_fib6.h>
#include <rte_launch.h>

#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_set>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr size_t kOps = 1000000; // route adds, deletes and next-hop changes
constexpr size_t kLive = 10000;  // more-specific routes alive at a time, at most
constexpr size_t kBatch = 1024;  // messages per writer batch
constexpr unsigned kWorkerLcore = 1;
const MacAddr kHost = mac(0x99);

IpAddr A(const std::string &s) {
    return *IpAddr::parse(s);
}

// Gateways: three on port 1 (10.0.1.x), three on port 2 (10.0.2.x).
IpAddr gateway(unsigned out, unsigned k) {
    return A("10.0." + std::to_string(out) + "." + std::to_string(2 + k));
}

struct Stream {
    Rig &rig;
    std::atomic<bool> stop{false}, draining{false};
    std::atomic<uint64_t> sent = 0, received[Rig::kPorts] = {}, misdirected = 0;
    uint32_t host_mask = 0xffff; // of the destination in 10.<port>/16

    bool done() const { return sent == received[1] + received[2] + misdirected; }

    // Sends to random addresses in 10.1/16 (out port 1) and 10.2/16 (out port 2), at
    // most `window` in flight so that no ring in between can overflow.
    void run() {
        std::mt19937 rng(11);
        Frame tmpl = ipv4(mac(0x10), kHost, V4{"10.0.0.2", "10.1.0.1", 64, 17, 1000, 2000, 18, 0});
        const size_t ip = 14;
        constexpr uint64_t window = 512;
        rte_mbuf *burst[32];
        while (!stop.load(std::memory_order_relaxed)) {
            uint64_t got = received[1] + received[2] + misdirected;
            if (!draining && sent - got < window) {
                unsigned n = 0;
                for (; n < 32; n++) {
                    rte_mbuf *m = rte_pktmbuf_alloc(rig.pool);
                    if (!m) break;
                    uint8_t *d =
                        reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, uint16_t(tmpl.size())));
                    std::memcpy(d, tmpl.data(), tmpl.size());
                    uint8_t out = uint8_t(1 + rng() % 2);
                    uint32_t dst = (10u << 24) | (uint32_t(out) << 16) | (rng() & host_mask);
                    d[ip + 16] = uint8_t(dst >> 24);
                    d[ip + 17] = uint8_t(dst >> 16);
                    d[ip + 18] = uint8_t(dst >> 8);
                    d[ip + 19] = uint8_t(dst);
                    d[ip + 10] = d[ip + 11] = 0;
                    uint16_t c = checksum(d + ip, 20);
                    d[ip + 10] = uint8_t(c >> 8);
                    d[ip + 11] = uint8_t(c);
                    d[ip + 28] = out; // the expected egress, in the UDP payload
                    burst[n] = m;
                }
                unsigned q =
                    rte_ring_enqueue_burst(rig.rx[0], reinterpret_cast<void **>(burst), n, nullptr);
                rte_pktmbuf_free_bulk(burst + q, n - q);
                sent += q;
            }
            unsigned idle = 0;
            for (unsigned p = 1; p < Rig::kPorts; p++) {
                void *out[64];
                unsigned k = rte_ring_dequeue_burst(rig.tx[p], out, 64, nullptr);
                idle += k == 0;
                for (unsigned i = 0; i < k; i++) {
                    auto *m = static_cast<rte_mbuf *>(out[i]);
                    if (rte_pktmbuf_mtod(m, const uint8_t *)[ip + 28] == p)
                        received[p]++;
                    else
                        misdirected++;
                    rte_pktmbuf_free(m);
                }
            }
            // Shares a core with the writer on a small machine: give it way when idle.
            if (idle == Rig::kPorts - 1) std::this_thread::yield();
        }
    }
};

// The input port, and the two output ports with `gateways` resolved neighbors each.
void add_ports(Rig &rig, unsigned gateways) {
    auto &prog = *rig.prog;
    prog.add_interface(0, "in", rig.port[0], 0, {*Prefix::parse("10.0.0.1/24", true)});
    for (unsigned out = 1; out <= 2; out++) {
        prog.add_interface(uint16_t(out), "out" + std::to_string(out), rig.port[out], 0,
                           {*Prefix::parse("10.0." + std::to_string(out) + ".1/24", true)});
        for (unsigned k = 0; k < gateways; k++)
            prog.neighbor(uint16_t(out), gateway(out, k), mac(uint8_t(0x20 + out * 16 + k)));
    }
}

// The worker on port 0's queue, and the stream feeding it.
std::thread start(Rig &rig, Stream &stream) {
    rig.w->rxq[0] = {rig.port[0], 0};
    rig.w->n_rxq = 1;
    if (rte_eal_remote_launch(dp::worker_main, rig.w.get(), kWorkerLcore) != 0)
        throw std::runtime_error("worker lcore busy");
    return std::thread([&stream] { stream.run(); });
}

// Lets the last packets through, stops the stream and the worker, and checks that every
// packet left by the port it names: nothing dropped, punted, lost or misdirected.
void finish(Rig &rig, Stream &stream, std::thread &traffic) {
    stream.draining = true;
    for (int k = 0; k < 400 && !stream.done(); k++)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    stream.stop = true;
    traffic.join();
    rig.stop = true;
    rte_eal_wait_lcore(kWorkerLcore);
    const dp::WorkerStats &st = rig.w->stats;
    uint64_t drops = 0, punts = 0;
    for (auto d : st.drops) drops += d;
    for (auto p : st.punts) punts += p;
    EXPECT_TRUE(rig.errors.empty())
        << rig.errors.size() << " errors, first: " << rig.errors.front();
    EXPECT_EQ(stream.misdirected, 0u);
    EXPECT_EQ(drops, 0u);
    EXPECT_EQ(punts, 0u);
    EXPECT_EQ(stream.sent, stream.received[1] + stream.received[2]) << "packets lost";
    EXPECT_GT(stream.received[1], 1000u);
    EXPECT_GT(stream.received[2], 1000u);
}

TEST(FibUpdates, MillionUpdatesUnderTrafficNoDropNoMisdirection) {
    Rig rig(16384, 1 << 16);
    auto &prog = *rig.prog;
    add_ports(rig, 3);
    fib::RouteRing ring(4 * kBatch);
    fib::DrainCounters drained;
    auto msg = [](unsigned out, uint32_t addr, uint8_t len, unsigned hops) {
        fib::RouteMsg m;
        m.op = fib::RouteMsg::Op::Set;
        m.prefix = Prefix{IpAddr::v4(addr), len}.masked();
        for (unsigned k = 0; k < hops; k++) m.via[m.n_via++] = gateway(out, k);
        return m;
    };
    // The covering routes: present from before the stream starts until after it ends.
    for (unsigned out = 1; out <= 2; out++) ring.push(msg(out, (10u << 24) | (out << 16), 16, 1));
    fib::drain(ring, prog, kBatch, drained);
    ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();

    Stream stream{rig};
    std::thread traffic = start(rig, stream);

    std::mt19937 rng(5);
    std::vector<std::pair<uint32_t, uint8_t>> live; // more-specific routes now in the FIB
    std::unordered_set<uint64_t> present;
    size_t ops = 0, adds = 0, dels = 0, replaces = 0, nh_changes = 0, mac_changes = 0;
    auto start = std::chrono::steady_clock::now();
    while (ops < kOps) {
        for (size_t b = 0; b < kBatch; b++, ops++) {
            unsigned r = rng() % 100;
            unsigned out = 1 + rng() % 2;
            if (r < 2) { // the covering route moves between next-hop objects of its port
                ring.push(msg(out, (10u << 24) | (out << 16), 16, 1 + rng() % 3));
                nh_changes++;
            } else if (r < 4) { // a gateway's MAC changes (one next-hop update)
                prog.neighbor(uint16_t(out), gateway(out, rng() % 3), mac(uint8_t(rng())));
                mac_changes++;
            } else if (live.size() < kLive && (r < 60 || live.empty())) {
                // Mostly longer than /24: those need tbl8 groups, the risky part.
                uint8_t len = uint8_t(rng() % 4 ? 24 + rng() % 9 : 17 + rng() % 7);
                uint32_t addr = (10u << 24) | (out << 16) | (rng() & 0xffff);
                Prefix p = Prefix{IpAddr::v4(addr), len}.masked();
                uint64_t key = uint64_t(p.addr.v4_host()) << 8 | len;
                if (!present.insert(key).second) { // taken: replace its next hops instead
                    ring.push(msg(out, p.addr.v4_host(), len, 1 + rng() % 3));
                    replaces++;
                    continue;
                }
                live.emplace_back(p.addr.v4_host(), len);
                ring.push(msg(out, p.addr.v4_host(), len, 1 + rng() % 3));
                adds++;
            } else {
                size_t i = rng() % live.size();
                auto [addr, len] = live[i];
                live[i] = live.back();
                live.pop_back();
                present.erase(uint64_t(addr) << 8 | len);
                fib::RouteMsg m;
                m.op = fib::RouteMsg::Op::Del;
                m.prefix = Prefix{IpAddr::v4(addr), len};
                ring.push(m);
                dels++;
            }
        }
        fib::drain(ring, prog, kBatch * 4, drained);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    finish(rig, stream, traffic);
    std::printf("%zu route ops (%zu adds, %zu deletes, %zu replaces, %zu covering next-hop "
                "changes, %zu MAC "
                "changes) in %.2f s (%.0f ops/s) with %zu grace periods (%zu waited for); %lu "
                "packets forwarded "
                "meanwhile; %zu more-specific routes left\n",
                ops, adds, dels, replaces, nh_changes, mac_changes, secs, double(ops) / secs,
                size_t(rig.fib->counters().grace_periods), size_t(rig.fib->counters().grace_waits),
                uint64_t(stream.received[1] + stream.received[2]), live.size());
    EXPECT_EQ(drained.messages, adds + dels + replaces + nh_changes + 2);
}

// Next-hop ids freed and reused while a worker forwards: routes of both ports move between
// ECMP groups of their port's gateways, so group ids die and are born all the time and an
// id freed on one port is soon a group of the other. A worker that looked a packet up
// just before its route moved may still read the old id: reused for the other port's
// group before the grace period is over, it would send the packet out of the wrong port.
// The programmer holds freed ids until the dataplane has let go of them, so the writer
// never has to wait for a reuse either.
TEST(FibUpdates, NexthopIdsAreReusedOnlyAfterTheirGracePeriod) {
    constexpr size_t kMoves = 200000;
    constexpr unsigned kGateways = 8, kRoutes = 16; // per port
    constexpr size_t kMoveBatch = 32;
    Rig rig(16384, 1 << 16);
    auto &prog = *rig.prog;
    add_ports(rig, kGateways);
    fib::RouteRing ring(4 * kBatch);
    fib::DrainCounters drained;
    std::mt19937 rng(7);
    // Route `r` of port `out`, 10.<out>.<r>.0/24, through 1 to 3 of its port's gateways.
    auto move = [&](unsigned out, unsigned r) {
        fib::RouteMsg m;
        m.op = fib::RouteMsg::Op::Set;
        m.prefix = Prefix{IpAddr::v4((10u << 24) | (out << 16) | (r << 8)), 24};
        unsigned hops = 1 + rng() % 3;
        for (unsigned k = 0; k < hops; k++) m.via[m.n_via++] = gateway(out, rng() % kGateways);
        ring.push(m);
    };
    for (unsigned out = 1; out <= 2; out++)
        for (unsigned r = 0; r < kRoutes; r++) move(out, r);
    fib::drain(ring, prog, kBatch, drained);
    ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();

    Stream stream{rig};
    stream.host_mask = (kRoutes << 8) - 1; // only into the moving routes
    std::thread traffic = start(rig, stream);
    uint64_t reused0 = prog.counters().nh_reused;
    for (size_t done = 0; done < kMoves; done += kMoveBatch) {
        for (size_t k = 0; k < kMoveBatch; k++) move(1 + rng() % 2, rng() % kRoutes);
        fib::drain(ring, prog, kBatch, drained);
    }
    finish(rig, stream, traffic);
    const auto &fc = rig.fib->counters();
    uint64_t reused = prog.counters().nh_reused - reused0;
    std::printf("%zu route moves: %lu next-hop ids reused, %lu grace periods, writer waited %lu "
                "times (%lu for a next hop, %lu us in all); %lu packets forwarded meanwhile\n",
                kMoves, (unsigned long)reused, (unsigned long)fc.grace_periods,
                (unsigned long)fc.grace_waits, (unsigned long)fc.nh_reuse_waits,
                (unsigned long)(fc.grace_wait_ns / 1000),
                (unsigned long)(stream.received[1] + stream.received[2]));
    EXPECT_GT(reused, kMoves / 10) << "ids were not reused: nothing was tested";
    EXPECT_EQ(fc.nh_reuse_waits, 0u) << "a freed id was reused before its grace period";
}

// IPv6 adds after a delete wait for its grace period without the writer waiting: with a
// reader that does not report (this thread, online), they and every IPv6 update after
// them are deferred, in order, and so is the release of a next hop they name; one report
// later they are in the table.
TEST(FibUpdates, Ipv6AddsAfterADeleteAreDeferredInOrderNotWaitedFor) {
    Rig rig;
    auto &prog = *rig.prog;
    prog.add_interface(1, "out", rig.port[1], 0, {*Prefix::parse("fd00:1::1/64", true)});
    const IpAddr gw1 = A("fd00:1::2"), gw2 = A("fd00:1::3");
    prog.neighbor(1, gw1, mac(0x31));
    prog.neighbor(1, gw2, mac(0x32));
    auto P6 = [](const char *s) { return *Prefix::parse(s); };
    auto lookup = [&](const char *addr) {
        uint8_t ip[16];
        std::memcpy(ip, A(addr).bytes.data(), 16);
        uint64_t nh = 0;
        rte_fib6_lookup_bulk(rig.fib->vrf(0)->v6, &ip, &nh, 1);
        return nh;
    };
    prog.set_bgp(0, P6("2001:db8:1::/48"), &gw1, 1);
    ASSERT_NE(lookup("2001:db8:1::1"), kNhNoRoute);
    const uint64_t via2 = lookup("fd00:1::3"); // gw2's adjacency, through its host route

    rte_rcu_qsbr_thread_online(rig.rcu, 0);
    prog.del_bgp(0, P6("2001:db8:1::/48")); // deletes go at once
    EXPECT_EQ(lookup("2001:db8:1::1"), kNhNoRoute);
    prog.set_bgp(0, P6("2001:db8:2::/48"), &gw2, 1); // after a delete: deferred
    prog.set_bgp(0, P6("2001:db8:3::/48"), &gw1, 1);
    prog.del_bgp(0, P6("2001:db8:2::/48")); // after its add, not before
    // gw2's host route goes (deferred too), and with it its adjacency, which the deferred
    // add of 2001:db8:2::/48 names.
    prog.neighbor(1, gw2, std::nullopt);
    const auto &fc = rig.fib->counters();
    EXPECT_EQ(fc.v6_deferred, 4u);
    EXPECT_EQ(lookup("2001:db8:3::1"), kNhNoRoute) << "added before the grace period";

    rte_rcu_qsbr_quiescent(rig.rcu, 0); // the first delete's grace period is over
    EXPECT_FALSE(rig.fib->released(NhId(via2))) << "released before the add naming it is in";
    EXPECT_EQ(rig.fib->settle(), "");
    EXPECT_NE(lookup("2001:db8:3::1"), kNhNoRoute);
    EXPECT_EQ(lookup("2001:db8:2::1"), kNhNoRoute);
    EXPECT_NE(lookup("fd00:1::3"), via2);
    EXPECT_FALSE(rig.fib->released(NhId(via2))) << "released with no grace period after";
    rte_rcu_qsbr_quiescent(rig.rcu, 0);
    EXPECT_TRUE(rig.fib->released(NhId(via2)));
    prog.neighbor(1, A("fd00:1::5"), mac(0x35)); // the programmer reuses it now
    EXPECT_EQ(lookup("fd00:1::5"), via2);
    // fd00:1::1/128, fd00:1::/64, the hosts ::2 and ::5, and 2001:db8:3::/48
    EXPECT_EQ(fc.routes_v6, 5u);
    EXPECT_EQ(fc.grace_waits, 0u) << "the writer waited";
    rte_rcu_qsbr_thread_offline(rig.rcu, 0);
    EXPECT_TRUE(rig.errors.empty()) << rig.errors.front();
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog, 1024, false, "0,1"); });
}
