// Cycles per packet of the whole worker pipeline with the LB stage at work: Maglev, a flow
// table holding 1M established flows (random flow per packet, so mostly cache misses),
// DNAT or DSR encapsulation, then route and forward, side by side in the same run with plain
// routing of the same packets (no services, and services that the packets do not hit).
// BM_LbHandoff: the handoff stage (lb_handoff.hpp) A/B, see run_handoff().
#include "bench/eal_main.hpp"
#include "control/services/maglev.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr unsigned kBurst = 32;
constexpr unsigned kBackends = 16;
constexpr uint32_t kVip = 0x0a60000a; // 10.96.0.10

enum Mode { Route, RouteBesideServices, Dnat, Dsr, DnatHandoff };

struct Setup {
    Rig rig;
    std::vector<rte_mbuf *> pkts;
    Frame tmpl;
    uint32_t flows;
    uint32_t rng = 12345;

    // Per worker. Flows are established a burst at a time; a DNAT flow takes two ways. Two
    // workers own about half the flows each: the same load per table as one worker, with
    // room for the hash's imbalance (~0.1% at 1M flows), and both fit in 768 MB at 1M.
    static LbLimits limits(Mode mode, uint32_t flows) {
        const uint32_t whole = (flows + kBurst - 1) / kBurst * kBurst;
        const uint32_t mine = mode == DnatHandoff ? whole / 2 + whole / 32 + kBurst : whole;
        return {std::max<uint32_t>(2 * mine, 1024), 3600};
    }

    Setup(Mode mode, uint32_t n_flows)
        : rig(4096, 1 << 16, limits(mode, n_flows)), flows(std::max<uint32_t>(n_flows, 1)) {
        auto &f = *rig.prog;
        f.add_interface(0, "in", rig.port[0], 0, {*Prefix::parse("10.0.1.1/24", true)});
        f.add_interface(1, "pods", rig.port[1], 0, {*Prefix::parse("10.0.2.1/24", true)});
        Service s;
        s.name = "web";
        s.vip = IpAddr::v4(kVip);
        s.port = 80;
        s.mode = mode == Dsr ? LbMode::DsrIpip : LbMode::Dnat;
        if (mode == DnatHandoff) rig.two_workers(dp::kHandoffRing, limits(mode, n_flows));
        s.encap_source = *IpAddr::parse("10.0.2.1");
        std::vector<svc::Backend> mb;
        for (unsigned b = 0; b < kBackends; b++) {
            IpAddr ip = IpAddr::v4(0x0a000202 + b); // 10.0.2.2..
            f.neighbor(1, ip, mac(uint8_t(0x40 + b)));
            // DSR: pods behind 16 nodes; DNAT: the pods themselves.
            IpAddr pod = mode == Dsr ? IpAddr::v4(0x0af40000 + b) : ip;
            s.backends.push_back({pod, 80, ip, 1, true, true});
            mb.push_back({pod, 80, 1});
        }
        if (!rig.errors.empty()) throw std::runtime_error(rig.errors.front());
        if (mode != Route) rig.lb->set(1, 0, s, svc::build(65537, mb));
        V4 v;
        v.proto = IPPROTO_TCP;
        v.dst = mode == Route || mode == RouteBesideServices ? "10.0.2.2" : "10.96.0.10";
        v.dport = 80;
        tmpl = ipv4(mac(0x10), mac(0x99), v);
        for (unsigned k = 0; k < kBurst * 64; k++) {
            pkts.push_back(rig.mbuf(tmpl));
            pkts.back()->port = rig.port[0];
        }
        // Establish every flow once (not timed).
        dp::Burst b;
        for (uint32_t at = 0; at < n_flows; at += kBurst) {
            fill(b, 0, [at](unsigned k) { return at + k; });
            dp::pipeline(b, *rig.w);
            drain();
            discard_tx();
        }
        if (lb_count(&LbCounters::flow_table_full))
            throw std::runtime_error("flow table too small");
    }

    // Share of the established ways outside their primary bucket: their hits take a second
    // cache line.
    double second_bucket() const {
        const dp::LbFlows &f = *rig.w->flows;
        uint64_t used = 0, second = 0;
        for (uint32_t b = 0; b <= f.mask; b++)
            for (const dp::FlowWay &w : f.bucket[b].way)
                if (w.key.k1) {
                    used++;
                    second += dp::flow_bucket1(f, dp::flow_sig(w.key)) != b;
                }
        return used ? double(second) / double(used) : 0.0;
    }

    ~Setup() {
        for (rte_mbuf *m : pkts) rte_pktmbuf_free(m);
    }

    // Flow f's client: source 10.128.0.0 + f / 256, port 10000 + f % 256 (network order).
    static uint32_t client_addr(uint32_t flow) { return rte_cpu_to_be_32(0x0a800000 + flow / 256); }
    static uint16_t client_port(uint32_t flow) {
        return rte_cpu_to_be_16(uint16_t(10000 + flow % 256));
    }

    // The worker of `n` that owns flow f.
    static unsigned owner(uint32_t flow, unsigned n) {
        const uint32_t src = client_addr(flow);
        return dp::lb_owner(reinterpret_cast<const uint8_t *>(&src), false, client_port(flow),
                            IPPROTO_TCP, 0, n);
    }

    // A burst whose k-th packet belongs to flow flow_of(k).
    void fill(dp::Burst &b, unsigned base, auto &&flow_of) {
        b.n = kBurst;
        b.port = rig.port[0];
        for (unsigned k = 0; k < kBurst; k++) {
            rte_mbuf *m = pkts[base + k];
            const uint32_t flow = flow_of(k);
            // DSR prepended a header: start again from the template.
            m->data_off = RTE_PKTMBUF_HEADROOM;
            m->data_len = m->pkt_len = uint32_t(tmpl.size());
            auto *p = rte_pktmbuf_mtod(m, uint8_t *);
            std::memcpy(p, tmpl.data(), 14 + 20 + 4);
            const uint32_t src = client_addr(flow);
            const uint16_t sport = client_port(flow);
            std::memcpy(p + 14 + 12, &src, 4);
            std::memcpy(p + 14 + 20, &sport, 2);
            b.m[k] = m;
        }
    }

    uint64_t all_drops() const {
        uint64_t n = 0;
        for (const dp::Worker *w : {rig.w.get(), rig.w2.get()})
            for (unsigned k = 0; w && k < std::size(w->stats.drops); k++) n += w->stats.drops[k];
        return n;
    }

    // Every flow was established in setup: more creations mean a flow lost its backend.
    bool flows_pinned() const {
        const uint64_t established = uint64_t(flows + kBurst - 1) / kBurst * kBurst;
        return lb_count(&LbCounters::flows_created) <= 2 * established;
    }

    uint32_t next() {
        rng = rng * 1664525u + 1013904223u;
        return rng >> 8;
    }

    void discard_tx() {
        for (dp::Worker *w : {rig.w.get(), rig.w2.get()}) {
            for (unsigned d = 0; w && d < w->n_dirty; d++) w->tx[w->dirty[d]].n = 0;
            if (w) w->n_dirty = 0;
        }
    }

    // Worker 1's handoff ring through its pipeline from the LB stage on (DnatHandoff).
    unsigned drain() {
        if (!rig.w2) return 0;
        dp::HandoffMsg msg[kBurst];
        dp::Burst hb;
        const unsigned n =
            rte_ring_sc_dequeue_burst_elem(rig.handoff[1], msg, sizeof msg[0], kBurst, nullptr);
        uint64_t left = (uint64_t(1) << n) - 1;
        while (left) {
            dp::handed_in(hb, msg, left);
            dp::pipeline_handed_in(hb, *rig.w2);
        }
        return n;
    }

    uint64_t lb_count(uint64_t LbCounters::*c) const {
        return rig.w->stats.lb.*c + (rig.w2 ? rig.w2->stats.lb.*c : 0);
    }
};

double median_per_packet(std::vector<uint32_t> &v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    return double(v[v.size() / 2]) / kBurst;
}

void run(benchmark::State &st, Mode mode) {
    Setup s(mode, uint32_t(st.range(0)));
    dp::Burst b;
    // Per burst: the whole pipeline, and in a -Dstage_cycles=true build the LB and route
    // stages (medians: on a shared machine preempted bursts make the means meaningless).
    std::vector<uint32_t> samples, lb_samples, route_samples;
    samples.reserve(1 << 22);
    if (dp::kStageCycles) {
        lb_samples.reserve(1 << 22);
        route_samples.reserve(1 << 22);
    }
    uint64_t cycles = 0, pkts = 0, base = 0;
    const uint64_t drops_before = s.all_drops();
    const uint64_t *stage = s.rig.w->stats.stage_cycles;
    for (auto _ : st) {
        s.fill(b, unsigned(base), [&s](unsigned) { return s.next() % s.flows; });
        base = (base + kBurst) % s.pkts.size();
        const uint64_t lb0 = stage[dp::StageLb], route0 = stage[dp::StageRoute];
        uint64_t t0 = rte_rdtsc();
        dp::pipeline(b, *s.rig.w);
        uint64_t d = rte_rdtsc() - t0;
        s.discard_tx();
        if (samples.size() < samples.capacity()) {
            samples.push_back(uint32_t(d));
            if (dp::kStageCycles) {
                lb_samples.push_back(uint32_t(stage[dp::StageLb] - lb0));
                route_samples.push_back(uint32_t(stage[dp::StageRoute] - route0));
            }
        }
        cycles += d;
        pkts += kBurst;
    }
    if (s.all_drops() != drops_before) st.SkipWithError("packets were dropped");
    if (mode != Route && mode != RouteBesideServices && !s.flows_pinned())
        st.SkipWithError("flows were not pinned");
    st.counters["cycles/pkt"] = median_per_packet(samples);
    if (mode == Dnat || mode == Dsr) st.counters["second_bucket"] = s.second_bucket();
    st.counters["mean_cycles/pkt"] = double(cycles) / double(pkts);
    st.counters["Mpps@1core"] = benchmark::Counter(double(pkts) / 1e6, benchmark::Counter::kIsRate);
    st.SetItemsProcessed(int64_t(pkts));
    if (dp::kStageCycles) {
        st.counters["lb_cycles/pkt"] = median_per_packet(lb_samples);
        st.counters["route_cycles/pkt"] = median_per_packet(route_samples);
    }
}

void BM_Route(benchmark::State &st) {
    run(st, Route);
}
void BM_RouteBesideServices(benchmark::State &st) {
    run(st, RouteBesideServices);
}
void BM_LbDnat(benchmark::State &st) {
    run(st, Dnat);
}
void BM_LbDsr(benchmark::State &st) {
    run(st, Dsr);
}
// The handoff stage's A/B in one loop, so that load and cache state are the same for all:
// bursts of three kinds in turn, each through dp::stages (what dp::pipeline runs for a
// burst plain4 does not take) and, with 2 workers, worker 1's drain of its handoff ring:
//   Mixed:  random flows of both workers: about half the packets handed over to worker 1
//           (2 workers only; both workers run on this thread, so the cache lines a ring
//           and its packets would move between cores are not in it);
//   Local:  random flows that worker 0 owns (all flows with 1 worker): the stage runs and
//           hands nothing over;
//   Bypass: as Local, with the handoff stage skipped.
// Local - Bypass is what the stage costs when nothing leaves (with 1 worker: one test per
// burst); (Mixed - Local) / handed_off_per_pkt the cost of a handed-off packet.
enum Variant { Mixed, Local, Bypass, kVariants };

void run_handoff(benchmark::State &st) {
    const auto workers = unsigned(st.range(0));
    Setup s(workers == 2 ? DnatHandoff : Dnat, uint32_t(st.range(1)));
    std::vector<uint32_t> local;
    for (uint32_t f = 0; f < s.flows; f++)
        if (Setup::owner(f, workers) == 0) local.push_back(f);
    auto any_flow = [&s](unsigned) { return s.next() % s.flows; };
    auto local_flow = [&s, &local](unsigned) { return local[s.next() % local.size()]; };
    auto all_stages = [](dp::Stage, auto &&call) { call(); };
    auto no_handoff = [](dp::Stage stage, auto &&call) {
        if (stage != dp::StageHandoff) call();
    };
    std::vector<uint32_t> samples[kVariants];
    for (auto &v : samples) v.reserve(1 << 21);
    uint64_t handed[kVariants] = {}, bursts[kVariants] = {};
    const uint64_t drops_before = s.all_drops();
    const unsigned first = workers == 2 ? Mixed : Local;
    unsigned base = 0, turn = first;
    dp::Burst b;
    for (auto _ : st) {
        const auto v = Variant(turn);
        turn = turn + 1 == kVariants ? first : turn + 1;
        if (v == Mixed)
            s.fill(b, base, any_flow);
        else
            s.fill(b, base, local_flow);
        base = (base + kBurst) % unsigned(s.pkts.size());
        const uint64_t t0 = rte_rdtsc();
        if (v == Bypass)
            dp::stages(b, *s.rig.w, no_handoff);
        else
            dp::stages(b, *s.rig.w, all_stages);
        handed[v] += s.drain();
        const uint64_t d = rte_rdtsc() - t0;
        s.discard_tx();
        bursts[v]++;
        if (samples[v].size() < samples[v].capacity()) samples[v].push_back(uint32_t(d));
    }
    if (s.all_drops() != drops_before) st.SkipWithError("packets were dropped");
    if (!s.flows_pinned()) st.SkipWithError("flows were not pinned");
    if (handed[Local] || handed[Bypass]) st.SkipWithError("worker 0's own flows were handed over");
    if (workers == 2 && !handed[Mixed]) st.SkipWithError("nothing was handed over");
    const double local_c = median_per_packet(samples[Local]);
    const double bypass_c = median_per_packet(samples[Bypass]);
    st.counters["local_cycles/pkt"] = local_c;
    st.counters["bypass_cycles/pkt"] = bypass_c;
    st.counters["stage_cycles/pkt"] = local_c - bypass_c;
    st.counters["local/bypass"] = local_c / bypass_c;
    if (workers == 2) {
        const double mixed_c = median_per_packet(samples[Mixed]);
        const double away = double(handed[Mixed]) / double(bursts[Mixed] * kBurst);
        st.counters["mixed_cycles/pkt"] = mixed_c;
        st.counters["handed_off/pkt"] = away;
        st.counters["cycles/handed_off"] = (mixed_c - local_c) / away;
    }
}

void BM_LbHandoff(benchmark::State &st) {
    run_handoff(st);
}

} // namespace

BENCHMARK(BM_Route)->Arg(0)->ArgName("flows");
BENCHMARK(BM_RouteBesideServices)->Arg(0)->ArgName("flows");
BENCHMARK(BM_LbDnat)->Arg(1000)->Arg(1 << 20)->ArgName("flows");
BENCHMARK(BM_LbDsr)->Arg(1 << 20)->ArgName("flows");
BENCHMARK(BM_LbHandoff)->ArgsProduct({{1, 2}, {1000, 1 << 20}})->ArgNames({"workers", "flows"});

int main(int argc, char **argv) {
    return bench_main(argc, argv, [&] {
        // Hugepages when 768 MB are free: 2M flow entries on 4 KB pages measure TLB misses.
        bool huge = hugepages_free(768);
        std::printf("memory: %s\n", huge ? "hugepages" : "4 KB pages (--no-huge)");
        init_eal(argv[0], huge ? 768 : 2048, huge);
    });
}
