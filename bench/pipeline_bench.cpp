// Cycles per packet of vleaf's worker pipeline on one core, PMD rx/tx excluded: the real
// stages over real mbufs and tables filled by the real FIB programmer. A macswap
// forwarder (what testpmd's macswap mode does per packet) runs in the same process as
// the floor any forwarder pays to touch a packet.
#include "bench/eal_main.hpp"
#include "bench/route_mix.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>

using namespace vleaf;
using namespace vleaf::test;

namespace {

// Packets cycled through: "cold" many more than fit in L1/L2 with the tables (the packet
// data comes from memory, as from a NIC without DDIO), "hot" two bursts that stay in L1
// (as in the system benchmark, where the PMD has just written them).
constexpr unsigned kCold = 8192, kHot = 64;
constexpr unsigned kBurst = 32;
constexpr unsigned kGateways = 8;

// Forgets what the pipeline queued for transmission (the packets stay the benchmark's);
// returns how many: the packets it processed.
unsigned forget_tx(dp::Worker &w) {
    unsigned queued = 0;
    for (unsigned d = 0; d < w.n_dirty; d++) {
        queued += w.tx[w.dirty[d]].n;
        w.tx[w.dirty[d]].n = 0;
    }
    w.n_dirty = 0;
    return queued;
}

struct Setup {
    Rig rig{kCold * 2, 1 << 21};
    std::vector<rte_mbuf *> pkts;
    // IPv4 header bytes 8-11 (TTL, protocol, checksum) as built, restored each burst with
    // one store of the width forward reads them with (byte stores there would stall that
    // load on store forwarding, which no NIC-written packet does)
    std::vector<uint32_t> ttl_word;
    bool v6 = false;
    unsigned n_pkts;

    // Routes over `gateways` of the kGateways next hops (1: every packet leaves by one port).
    Setup(bool ipv6, size_t n_routes, bench::Mix mix, unsigned packets,
          unsigned gateways = kGateways)
        : v6(ipv6), n_pkts(packets) {
        auto &f = *rig.prog;
        f.add_interface(
            0, "in", rig.port[0], 0,
            {*Prefix::parse("10.0.1.1/24", true), *Prefix::parse("fd00:1::1/64", true)});
        f.add_interface(
            1, "out1", rig.port[1], 0,
            {*Prefix::parse("172.16.1.1/24", true), *Prefix::parse("fd00:2::1/64", true)});
        f.add_interface(
            2, "out2", rig.port[2], 0,
            {*Prefix::parse("172.16.2.1/24", true), *Prefix::parse("fd00:3::1/64", true)});
        std::vector<IpAddr> gw;
        for (unsigned g = 0; g < kGateways; g++) {
            unsigned ifid = 1 + g % 2;
            auto ip = ipv6 ? *IpAddr::parse("fd00:" + std::to_string(ifid + 1) +
                                            "::" + std::to_string(g + 2))
                           : *IpAddr::parse("172.16." + std::to_string(ifid) + "." +
                                            std::to_string(g + 2));
            f.neighbor(uint16_t(ifid), ip, mac(uint8_t(0x40 + g)));
            gw.push_back(ip);
        }
        MacAddr dmac = mac(0x10), smac = mac(0x99);
        if (!ipv6) {
            auto w = bench::make_workload4(mix, n_routes, n_pkts, 0.0, 42);
            for (auto &r : w.routes)
                f.add_static(0, Prefix{IpAddr::v4(r.addr), r.depth}.masked(), {gw[r.nh % gateways]},
                             {}, false);
            for (uint32_t d : w.dsts) {
                V4 v;
                v.dst = IpAddr::v4(d).str();
                Frame fr = ipv4(dmac, smac, v);
                uint32_t word;
                std::memcpy(&word, &fr[14 + 8], 4);
                ttl_word.push_back(word);
                pkts.push_back(rig.mbuf(fr));
            }
        } else {
            auto w = bench::make_workload6(mix, n_routes, n_pkts, 0.0, 42);
            for (auto &r : w.routes)
                f.add_static(0, Prefix{IpAddr::v6(r.addr.data()), r.depth}.masked(),
                             {gw[r.nh % gateways]}, {}, false);
            for (auto &d : w.dsts) {
                V6 v;
                v.dst = IpAddr::v6(d.data()).str();
                pkts.push_back(rig.mbuf(test::ipv6(dmac, smac, v)));
            }
        }
        if (!rig.errors.empty()) throw std::runtime_error(rig.errors.front());
        for (rte_mbuf *m : pkts) m->port = rig.port[0];
    }

    ~Setup() {
        for (rte_mbuf *m : pkts) rte_pktmbuf_free(m);
    }

    // Puts back what forwarding changed, so every burst does the same work.
    void refill(dp::Burst &b, unsigned at) {
        b.n = kBurst;
        b.port = rig.port[0];
        for (unsigned k = 0; k < kBurst; k++) {
            rte_mbuf *m = pkts[at + k];
            auto *p = rte_pktmbuf_mtod(m, uint8_t *);
            if (v6)
                p[14 + 7] = 64;
            else
                std::memcpy(p + 14 + 8, &ttl_word[at + k], 4);
            b.m[k] = m;
        }
    }

    // The packets stay ours: forget them instead of transmitting. Returns how many were
    // queued for transmission.
    unsigned discard_tx() { return forget_tx(*rig.w); }
};

// Per-burst samples: on a shared machine a preempted burst counts another process's time,
// so the median burst is the figure that holds; the mean is reported beside it.
struct Samples {
    std::vector<uint32_t> v;
    Samples() { v.reserve(1 << 22); }
    void add(uint64_t c) {
        if (v.size() < v.capacity()) v.push_back(uint32_t(std::min<uint64_t>(c, UINT32_MAX)));
    }
    double median_per_pkt() {
        if (v.empty()) return 0;
        std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
        return double(v[v.size() / 2]) / kBurst;
    }
};

unsigned packets_arg(const benchmark::State &st, int index) {
    return st.range(index) ? kHot : kCold;
}

// `cycles` were counted over `timed` of the `pkts` packets; the rate is of all `pkts`, every
// burst the loop ran (timed whole or stage by stage), over the loop's CPU time.
void report(benchmark::State &st, uint64_t cycles, uint64_t timed, uint64_t pkts, Samples &s) {
    st.counters["cycles/pkt"] = s.median_per_pkt();
    st.counters["mean_cycles/pkt"] = double(cycles) / double(timed);
    st.counters["Mpps@1core"] = benchmark::Counter(double(pkts) / 1e6, benchmark::Counter::kIsRate);
    st.SetItemsProcessed(int64_t(pkts));
}

// Even bursts are timed whole (one rdtsc pair, as the macswap reference); of the odd ones,
// half go through the stages one by one timed whole ("staged": what a burst that is not
// all plain IPv4 costs, the reference for plain4's two loops), half stage by stage (each
// rdtsc costs ~50 cycles here, which the per-stage figures include).
void pipeline(benchmark::State &st, bool v6) {
    Setup s(v6, size_t(st.range(0)), bench::Mix(st.range(1)), packets_arg(st, 2));
    dp::Burst b;
    uint64_t cycles = 0, pkts = 0, whole = 0;
    Samples total, staged, per_stage[dp::StageCount];
    unsigned iter = 0;
    auto &w = *s.rig.w;
    for (auto _ : st) {
        // Every fourth burst is skipped, so that each kind of timing sees every burst.
        s.refill(b, (iter + iter / 4) * kBurst % s.n_pkts);
        unsigned phase = iter++ % 4;
        if (phase % 2 == 0) {
            uint64_t t0 = rte_rdtsc();
            dp::pipeline(b, w);
            uint64_t d = rte_rdtsc() - t0;
            total.add(d);
            cycles += d;
            whole += b.n;
        } else if (phase == 1) {
            uint64_t t0 = rte_rdtsc();
            dp::stages(b, w, [](dp::Stage, auto &&call) { call(); });
            staged.add(rte_rdtsc() - t0);
        } else { // the stages plain routed traffic goes through (the others return at once)
            uint64_t t0 = rte_rdtsc();
            dp::parse(b, w);
            uint64_t t1 = rte_rdtsc();
            dp::route(b, w);
            uint64_t t2 = rte_rdtsc();
            dp::forward(b, w);
            uint64_t t3 = rte_rdtsc();
            dp::dispatch(b, w);
            uint64_t t4 = rte_rdtsc();
            per_stage[dp::StageParse].add(t1 - t0);
            per_stage[dp::StageRoute].add(t2 - t1);
            per_stage[dp::StageForward].add(t3 - t2);
            per_stage[dp::StageDispatch].add(t4 - t3);
        }
        pkts += s.discard_tx();
    }
    if (s.rig.w->stats.drops[int(Drop::no_route)]) st.SkipWithError("packets missed their routes");
    report(st, cycles, whole, pkts, total);
    st.counters["staged/pkt"] = staged.median_per_pkt();
    for (int k : {dp::StageParse, dp::StageRoute, dp::StageForward, dp::StageDispatch})
        st.counters[std::string(dp::stage_names[k]) + "/pkt"] = per_stage[k].median_per_pkt();
}

void BM_Pipeline4(benchmark::State &st) {
    pipeline(st, false);
}
void BM_Pipeline6(benchmark::State &st) {
    pipeline(st, true);
}

// The floor: read each packet, swap its MACs, queue it for its port.
void BM_MacSwapReference(benchmark::State &st) {
    Setup s(false, 1, bench::Mix::Internet, packets_arg(st, 0));
    dp::Burst b;
    uint64_t cycles = 0, pkts = 0, whole = 0;
    Samples total;
    unsigned at = 0;
    for (auto _ : st) {
        s.refill(b, at);
        at = (at + kBurst) % s.n_pkts;
        uint64_t t0 = rte_rdtsc();
        for (unsigned i = 0; i < b.n; i++) {
            if (i + 4 < b.n) rte_prefetch0(rte_pktmbuf_mtod(b.m[i + 4], void *));
            auto *eth = rte_pktmbuf_mtod(b.m[i], rte_ether_hdr *);
            rte_ether_addr tmp = eth->dst_addr;
            eth->dst_addr = eth->src_addr;
            eth->src_addr = tmp;
            dp::tx_queue(*s.rig.w, s.rig.port[1], b.m[i]);
        }
        uint64_t d = rte_rdtsc() - t0;
        total.add(d);
        cycles += d;
        whole += b.n;
        pkts += s.discard_tx();
    }
    report(st, cycles, whole, pkts, total);
}

// VXLAN: the whole pipeline (every stage, as a worker runs it) over three kinds of traffic
// against one tenant VRF of `routes` prefixes, so the ratios compare like with like:
//   Plain:      IPv4 in on a tenant port, routed out of another tenant port;
//   DecapRoute: VXLAN (L3VNI 100) from a remote VTEP, decapsulated, routed the same way;
//   RouteEncap: IPv4 in on a tenant port, routed into the tunnel to the remote VTEP.
enum class VxCase { Plain, DecapRoute, RouteEncap };

struct VxSetup {
    Rig rig{kCold * 2, 1 << 18, {4096, 300}, 2};
    std::vector<Frame> frames;
    std::vector<rte_mbuf *> pkts;
    uint16_t in_port;

    VxSetup(VxCase c, size_t n_routes) {
        dp::VxlanParams vp;
        vp.has4 = true;
        vp.src4 = IpAddr::parse("10.255.0.1")->v4_net();
        vp.port_be = rte_cpu_to_be_16(4789);
        rig.fib->overlay().set_params(vp);
        auto &f = *rig.prog;
        f.add_interface(0, "fabric", rig.port[0], 0, {*Prefix::parse("10.99.0.1/24", true)});
        f.add_local(0, *IpAddr::parse("10.255.0.1"));
        f.neighbor(0, *IpAddr::parse("10.99.0.2"), mac(0x99));
        f.add_interface(1, "in", rig.port[1], 1, {*Prefix::parse("10.0.1.1/24", true)});
        rig.info[rig.port[1]].vrf = rig.info[rig.port[2]].vrf = 1; // what vleafd sets up
        f.add_interface(2, "out", rig.port[2], 1, {*Prefix::parse("172.16.2.1/24", true)});
        f.add_l3vni(100, 1, mac(0x64));
        std::vector<IpAddr> gw;
        for (unsigned g = 0; g < kGateways; g++) {
            auto ip = *IpAddr::parse("172.16.2." + std::to_string(g + 2));
            f.neighbor(2, ip, mac(uint8_t(0x40 + g)));
            gw.push_back(ip);
        }
        auto w = bench::make_workload4(bench::Mix::Pods, n_routes, kCold, 0.0, 42);
        auto vtep = *IpAddr::parse("10.99.0.2");
        for (auto &r : w.routes) {
            Prefix p = Prefix{IpAddr::v4(r.addr), r.depth}.masked();
            if (c == VxCase::RouteEncap)
                f.add_tunnel_route(1, p, vtep, 100, mac(0x65));
            else
                f.add_static(1, p, {gw[r.nh % kGateways]}, {}, false);
        }
        if (!rig.errors.empty()) throw std::runtime_error(rig.errors.front());
        in_port = rig.port[c == VxCase::DecapRoute ? 0 : 1];
        for (uint32_t d : w.dsts) {
            V4 v;
            v.dst = IpAddr::v4(d).str();
            Frame inner = ipv4(c == VxCase::DecapRoute ? mac(0x64) : mac(0x11), mac(0x65), v);
            Outer o{mac(0x10), mac(0x99), "10.99.0.2", "10.255.0.1", 50000, 4789, 100};
            frames.push_back(c == VxCase::DecapRoute ? vxlan(o, inner) : inner);
            pkts.push_back(rig.mbuf(frames.back()));
        }
    }

    ~VxSetup() {
        for (rte_mbuf *m : pkts) rte_pktmbuf_free(m);
    }

    // Decap, encap and forwarding change the packets: put them back as built.
    void refill(dp::Burst &b, unsigned at) {
        b.n = kBurst;
        b.port = in_port;
        b.entry = dp::Entry::Port;
        for (unsigned k = 0; k < kBurst; k++) {
            rte_mbuf *m = pkts[at + k];
            const Frame &fr = frames[at + k];
            m->data_off = RTE_PKTMBUF_HEADROOM;
            m->data_len = m->pkt_len = uint16_t(fr.size());
            m->port = in_port;
            std::memcpy(rte_pktmbuf_mtod(m, void *), fr.data(), fr.size());
            b.m[k] = m;
        }
    }
};

// Even bursts are timed whole, odd ones stage by stage (as in pipeline() above).
void vxlan_case(benchmark::State &st, VxCase c) {
    VxSetup s(c, size_t(st.range(0)));
    dp::Burst b;
    uint64_t cycles = 0, pkts = 0, whole = 0;
    Samples total, per_stage[dp::StageCount];
    unsigned at = 0, iter = 0;
    auto &w = *s.rig.w;
    for (auto _ : st) {
        s.refill(b, at);
        at = (at + kBurst) % kCold;
        unsigned phase = iter++ % 4;
        if (phase % 2 == 0) {
            uint64_t t0 = rte_rdtsc();
            dp::pipeline(b, w);
            uint64_t d = rte_rdtsc() - t0;
            total.add(d);
            cycles += d;
            whole += b.n;
        } else {
            dp::stages(b, w, [&](dp::Stage k, auto &&call) {
                uint64_t t0 = rte_rdtsc();
                call();
                per_stage[k].add(rte_rdtsc() - t0);
            });
        }
        pkts += forget_tx(w);
    }
    uint64_t dropped = 0;
    for (uint64_t n : w.stats.drops) dropped += n;
    if (dropped) st.SkipWithError("packets were dropped");
    if (c == VxCase::DecapRoute && w.stats.decapsulated != pkts)
        st.SkipWithError("not decapsulated");
    if (c == VxCase::RouteEncap && w.stats.encapsulated != pkts)
        st.SkipWithError("not encapsulated");
    report(st, cycles, whole, pkts, total);
    for (int k : {dp::StageParse, dp::StageDecap, dp::StageRoute, dp::StageForward, dp::StageEncap,
                  dp::StageDispatch})
        st.counters[std::string(dp::stage_names[k]) + "/pkt"] = per_stage[k].median_per_pkt();
}

void BM_VxlanPlainRoute(benchmark::State &st) {
    vxlan_case(st, VxCase::Plain);
}
void BM_VxlanDecapRoute(benchmark::State &st) {
    vxlan_case(st, VxCase::DecapRoute);
}
void BM_VxlanRouteEncap(benchmark::State &st) {
    vxlan_case(st, VxCase::RouteEncap);
}

// A burst of plain IPv4 with one ARP request in it (the system benchmark's traffic has one
// per 1024 frames) through the pipeline, where plain4 forwards the others and leaves the ARP
// to the stages ("arp/pkt"); the same burst through the stages alone, as when plain4 gave
// up on it ("staged/pkt"); and, the reference, the all-plain burst ("cycles/pkt"). The
// three kinds take turns over the same two hot bursts, which leave by one port (as in the
// system benchmark).
void BM_PlainBurstWithArp(benchmark::State &st) {
    Setup s(false, 10000, bench::Mix::Internet, kHot, 1);
    Frame arp = ether(MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, mac(0x99), 0x0806);
    arp.resize(60, 0);
    rte_mbuf *a = s.rig.mbuf(arp);
    a->port = s.rig.port[0];
    constexpr unsigned kAt = 13;
    dp::Burst b;
    auto &w = *s.rig.w;
    Samples plain, with_arp, staged;
    uint64_t cycles = 0, timed = 0, pkts = 0;
    unsigned iter = 0;
    dp::PuntMsg punted[kBurst];
    for (auto _ : st) {
        s.refill(b, iter / 3 % 2 * kBurst);
        unsigned kind = iter++ % 3;
        if (kind != 0) b.m[kAt] = a;
        uint64_t t0 = rte_rdtsc();
        if (kind == 2)
            dp::stages(b, w, [](dp::Stage, auto &&call) { call(); });
        else
            dp::pipeline(b, w);
        uint64_t d = rte_rdtsc() - t0;
        if (kind == 0) {
            cycles += d;
            timed += kBurst;
        }
        (kind == 0 ? plain : kind == 1 ? with_arp : staged).add(d);
        pkts += s.discard_tx();
        // The ARP reached the control thread's ring: taken back, it stays the benchmark's.
        pkts += rte_ring_dequeue_burst_elem(s.rig.punt, punted, sizeof punted[0], kBurst, nullptr);
    }
    if (pkts != uint64_t(iter) * kBurst) st.SkipWithError("packets lost");
    report(st, cycles, timed, pkts, plain);
    st.counters["arp/pkt"] = with_arp.median_per_pkt();
    st.counters["staged/pkt"] = staged.median_per_pkt();
    rte_pktmbuf_free(a);
}

void routes4(benchmark::internal::Benchmark *b) {
    for (int hot : {0, 1})
        for (int mix : {int(bench::Mix::Internet), int(bench::Mix::Pods)})
            for (int n : {10000, 1000000}) b->Args({n, mix, hot});
    b->ArgNames({"routes", "mix", "hot"});
}

// The IPv6 table is sized for 64k routes (config default max_routes_v6).
void routes6(benchmark::internal::Benchmark *b) {
    for (int hot : {0, 1})
        for (int mix : {int(bench::Mix::Internet), int(bench::Mix::Pods)})
            b->Args({10000, mix, hot});
    b->ArgNames({"routes", "mix", "hot"});
}

} // namespace

BENCHMARK(BM_MacSwapReference)->Arg(0)->Arg(1)->ArgName("hot");
BENCHMARK(BM_Pipeline4)->Apply(routes4);
BENCHMARK(BM_Pipeline6)->Apply(routes6);
BENCHMARK(BM_PlainBurstWithArp);
// One after another over the same table: plain routing is the reference for the other two.
BENCHMARK(BM_VxlanPlainRoute)->Arg(10000)->ArgName("routes");
BENCHMARK(BM_VxlanDecapRoute)->Arg(10000)->ArgName("routes");
BENCHMARK(BM_VxlanRouteEncap)->Arg(10000)->ArgName("routes");

int main(int argc, char **argv) {
    return bench_main(argc, argv, [&] { init_eal(argv[0], 2048); });
}
