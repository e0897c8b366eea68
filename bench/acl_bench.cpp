// ACL cost on one core, two ways:
// - BM_AclClassify4: AclSet::classify4 alone (exact-match part, rte_acl_classify on the
//   packets in place, per-rule counters), bursts of 32; 90 % of packets match some rule;
//   `exact`: the rules in the exact-match part.
// - BM_AclPipeline vs BM_Route: the whole worker pipeline (parse, acl_in, route, forward,
//   dispatch without the PMD) over the same packets in the same run, without any ACL
//   (BM_Route: the packets of the 10k-rule case, no policy installed, so the ACL stages
//   find none) and with an ingress policy of N rules on the
//   receiving port (BM_AclPipeline/dir:0) or an egress one on the sending port (dir:1).
//   Every packet matches an allow rule (default deny), so both forward every packet.
// Two rule mixes (`mix`):
// - 0, NetworkPolicy: what Kubernetes policies compile to. Each rule protects one pod
//   (destination /32; five rules per pod), and admits a peer: another pod (/32, 60 %), a
//   namespace's Calico /26 block (30 %) or an ipBlock outside the cluster (/16-/24, 10 %),
//   on one service port from a short list (TCP 85 %, else UDP), 5 % on a port range.
//   All of them go to the exact-match part (dataplane/acl_exact.hpp): rte_acl is not used.
// - 1, wide (worst case): random source prefixes /16-/32 and destinations /24-/32, random
//   ports 1-30000, a quarter of them ranges up to 1000 wide: many overlapping wildcards,
//   which make rte_acl's trie three times larger. Too few rules pin a host: rte_acl only.
// - 2 and 3, NetworkPolicy with namespace-wide rules: as 0, but every 50th rule protects a
//   whole /26 block (a namespace) instead of one pod, so those 2 % stay in rte_acl. In 2
//   they rank after every pod rule, so only the packets that no pod rule decides go
//   through rte_acl; in 3 they are interleaved, so every packet goes through both parts.
#include "bench/eal_main.hpp"
#include "dataplane/acl_set.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <benchmark/benchmark.h>

#include <rte_cycles.h>

#include <algorithm>
#include <random>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr unsigned kPackets = 8192, kBurst = 32, kHdr = 64;

struct Traffic {
    dp::AclPolicy pol;
    struct Pkt {
        uint32_t src, dst;
        uint8_t proto;
        uint16_t dport;
    };
    std::vector<Pkt> pkts;
    std::mt19937_64 rng{7};

    uint32_t below(uint32_t n) { return uint32_t(rng() % n); }

    dp::AclRule wide_rule() {
        dp::AclRule r;
        uint8_t slen = uint8_t(16 + below(17)), dlen = uint8_t(24 + below(9));
        r.src = Prefix{IpAddr::v4(0x0a000000 | below(1 << 24)), slen}.masked();
        r.dst = Prefix{IpAddr::v4(0x0a600000 | below(1 << 16)), dlen}.masked();
        r.proto = below(4) ? IPPROTO_TCP : IPPROTO_UDP;
        r.dport_lo = uint16_t(1 + below(30000));
        r.dport_hi = below(4) ? r.dport_lo : uint16_t(r.dport_lo + below(1000));
        return r;
    }

    // Pods in 10.0.0.0/14 (4096 Calico /26 blocks), the protected ones in 10.0.0.0/16.
    dp::AclRule policy_rule(unsigned i, bool namespaces) {
        static constexpr uint16_t tcp[] = {80,   443,  8080, 8443, 3306,
                                           5432, 6379, 9090, 9093, 27017};
        static constexpr uint16_t udp[] = {53, 123, 514, 8125};
        dp::AclRule r;
        uint32_t pod = 0x0a000000 | ((i / 5 * 2654435761u) & 0xffff);
        r.dst = Prefix{IpAddr::v4(pod), 32};
        unsigned peer = below(100);
        if (peer < 60)
            r.src = Prefix{IpAddr::v4(0x0a000000 | below(1 << 18)), 32};
        else if (peer < 90)
            r.src = Prefix{IpAddr::v4(0x0a000000 | below(1 << 12) << 6), 26};
        else
            r.src =
                Prefix{IpAddr::v4(0xac100000 | below(1 << 20)), uint8_t(16 + below(9))}.masked();
        r.proto = below(100) < 85 ? IPPROTO_TCP : IPPROTO_UDP;
        r.dport_lo = r.dport_hi = *r.proto == IPPROTO_TCP ? tcp[below(10)] : udp[below(4)];
        if (below(100) < 5) r.dport_lo = 8000, r.dport_hi = 8999;
        if (namespaces && i % 50 == 49) r.dst = Prefix{r.dst.addr, 26}.masked();
        return r;
    }

    // `allow_only`: every rule allows and every packet matches one (the pipeline bench).
    Traffic(unsigned n_rules, bool allow_only, unsigned mix) {
        pol.default_action = dp::AclAction::Deny;
        for (unsigned i = 0; i < n_rules; i++) {
            dp::AclRule r = mix == 1 ? wide_rule() : policy_rule(i, mix >= 2);
            r.priority = int32_t(i);
            if (mix == 2 && r.dst.len < 32) r.priority += int32_t(n_rules);
            r.action = allow_only || below(2) ? dp::AclAction::Allow : dp::AclAction::Deny;
            pol.rules.push_back(r);
        }
        for (unsigned i = 0; i < kPackets; i++) {
            Pkt p{0x0b000001, 0x0a600001, IPPROTO_TCP, 80};
            if (n_rules && (allow_only || below(10) < 9)) { // inside a random rule
                const auto &r = pol.rules[below(n_rules)];
                auto host = [&](uint8_t plen) {
                    return plen == 32 ? 0u : below(UINT32_MAX) >> plen;
                };
                p.src = r.src.addr.v4_host() | host(r.src.len);
                p.dst = r.dst.addr.v4_host() | host(r.dst.len);
                p.proto = *r.proto;
                p.dport = uint16_t(r.dport_lo + below(r.dport_hi - r.dport_lo + 1u));
            }
            pkts.push_back(p);
        }
    }
};

struct ClassifySetup {
    Traffic t;
    std::unique_ptr<const dp::AclSet> set;
    std::vector<uint8_t> buf = std::vector<uint8_t>(size_t(kPackets) * kHdr);
    std::vector<const uint8_t *> l3;
    std::vector<uint16_t> len;
    double build_s = 0; // control-thread time to compile the rules

    ClassifySetup(unsigned n_rules, unsigned mix) : t(n_rules, false, mix) {
        uint64_t t0 = rte_rdtsc();
        set = dp::AclSet::build(t.pol, 1, 0);
        build_s = double(rte_rdtsc() - t0) / double(rte_get_tsc_hz());
        for (unsigned i = 0; i < kPackets; i++) {
            V4 v;
            v.src = IpAddr::v4(t.pkts[i].src).str();
            v.dst = IpAddr::v4(t.pkts[i].dst).str();
            v.proto = t.pkts[i].proto;
            v.sport = 40000;
            v.dport = t.pkts[i].dport;
            Frame f = ipv4(mac(1), mac(2), v);
            uint8_t *ip = &buf[size_t(i) * kHdr];
            std::copy(f.begin() + 14, f.begin() + 14 + 40, ip);
            l3.push_back(ip);
            len.push_back(40);
        }
    }
};

double median_per_packet(std::vector<uint32_t> &samples) {
    if (samples.empty()) return 0;
    std::nth_element(samples.begin(), samples.begin() + long(samples.size() / 2), samples.end());
    return double(samples[samples.size() / 2]) / kBurst;
}

void BM_AclClassify4(benchmark::State &st) {
    ClassifySetup s(unsigned(st.range(0)), unsigned(st.range(1)));
    dp::AclVerdict out[kBurst];
    std::vector<uint32_t> samples;
    samples.reserve(1 << 22);
    uint64_t pkts = 0, by_rule = 0;
    unsigned at = 0;
    for (auto _ : st) {
        uint64_t t0 = rte_rdtsc();
        s.set->classify4(&s.l3[at], &s.len[at], kBurst, out, 0);
        uint64_t d = rte_rdtsc() - t0;
        if (samples.size() < samples.capacity()) samples.push_back(uint32_t(d));
        for (auto &v : out) by_rule += v.rule != dp::kAclDefault;
        pkts += kBurst;
        at = (at + kBurst) % kPackets;
    }
    // Preempted bursts count another process's time on a shared machine: report the median.
    st.counters["cycles/pkt"] = median_per_packet(samples);
    st.counters["build_s"] = s.build_s;
    st.counters["matched"] = double(by_rule) / double(pkts);
    st.counters["exact"] = double(s.set->exact_rules());
    st.counters["Mpps@1core"] = benchmark::Counter(double(pkts) / 1e6, benchmark::Counter::kIsRate);
    st.SetItemsProcessed(int64_t(pkts));
}

struct PipelineSetup {
    Traffic t;
    Rig rig{4096};
    std::vector<Frame> frames;
    std::vector<rte_mbuf *> mbufs;
    double build_s = 0;

    PipelineSetup(unsigned n_rules, bool install, AclDirection dir, unsigned mix)
        : t(n_rules, true, mix) {
        auto &f = *rig.prog;
        f.add_interface(0, "in", rig.port[0], 0, {*Prefix::parse("10.254.1.1/24", true)});
        f.add_interface(1, "pods", rig.port[1], 0, {*Prefix::parse("172.16.1.1/24", true)});
        f.neighbor(1, *IpAddr::parse("172.16.1.2"), mac(0x40));
        for (const char *to : {"10.0.0.0/16", "10.96.0.0/16"}) // both mixes' destinations
            f.add_static(0, *Prefix::parse(to), {*IpAddr::parse("172.16.1.2")}, {}, false);
        if (!rig.errors.empty()) throw std::runtime_error(rig.errors.front());
        if (install) {
            uint64_t t0 = rte_rdtsc();
            uint16_t port = dir == AclDirection::In ? rig.port[0] : rig.port[1];
            rig.acl->set(1, AclAttach{dir, true, port}, t.pol);
            build_s = double(rte_rdtsc() - t0) / double(rte_get_tsc_hz());
        }
        for (const auto &p : t.pkts) {
            V4 v;
            v.src = IpAddr::v4(p.src).str();
            v.dst = IpAddr::v4(p.dst).str();
            v.proto = p.proto;
            v.sport = 40000;
            v.dport = p.dport;
            frames.push_back(ipv4(mac(0x10), mac(0x99), v));
        }
        for (unsigned k = 0; k < kBurst * 64; k++) {
            mbufs.push_back(rig.mbuf(frames[k]));
            mbufs.back()->port = rig.port[0];
        }
    }

    ~PipelineSetup() { rte_pktmbuf_free_bulk(mbufs.data(), unsigned(mbufs.size())); }

    // The next burst: packet headers restored (forward rewrote MACs, TTL and checksum).
    void fill(dp::Burst &b, unsigned base, unsigned first) {
        b.n = kBurst;
        b.port = rig.port[0];
        for (unsigned k = 0; k < kBurst; k++) {
            rte_mbuf *m = mbufs[base + k];
            std::memcpy(rte_pktmbuf_mtod(m, uint8_t *), frames[(first + k) % kPackets].data(),
                        14 + 20 + 4);
            b.m[k] = m;
        }
    }
};

void run_pipeline(benchmark::State &st, unsigned n_rules, bool install, AclDirection dir,
                  unsigned mix) {
    PipelineSetup s(n_rules, install, dir, mix);
    dp::Burst b;
    std::vector<uint32_t> samples;
    samples.reserve(1 << 22);
    uint64_t cycles = 0, pkts = 0, base = 0, first = 0;
    for (auto _ : st) {
        s.fill(b, unsigned(base), unsigned(first));
        base = (base + kBurst) % s.mbufs.size();
        first = (first + kBurst) % kPackets;
        uint64_t t0 = rte_rdtsc();
        dp::pipeline(b, *s.rig.w);
        uint64_t d = rte_rdtsc() - t0;
        s.rig.discard_tx();
        if (samples.size() < samples.capacity()) samples.push_back(uint32_t(d));
        cycles += d;
        pkts += kBurst;
    }
    uint64_t drops = 0;
    for (uint64_t d : s.rig.w->stats.drops) drops += d;
    if (drops) st.SkipWithError("packets were dropped");
    if (install && s.rig.acl->hits(1).back() != 0) st.SkipWithError("the default decided");
    st.counters["cycles/pkt"] = median_per_packet(samples);
    st.counters["mean_cycles/pkt"] = double(cycles) / double(pkts);
    st.counters["build_s"] = s.build_s;
    st.counters["Mpps@1core"] = benchmark::Counter(double(pkts) / 1e6, benchmark::Counter::kIsRate);
    st.SetItemsProcessed(int64_t(pkts));
}

void BM_Route(benchmark::State &st) {
    run_pipeline(st, 10000, false, AclDirection::In, 0);
}
void BM_AclPipeline(benchmark::State &st) {
    run_pipeline(st, unsigned(st.range(0)), true, AclDirection(st.range(1)), unsigned(st.range(2)));
}

} // namespace

BENCHMARK(BM_AclClassify4)
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({1000, 0})
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Args({10000, 2})
    ->Args({10000, 3})
    ->ArgNames({"rules", "mix"});
BENCHMARK(BM_Route);
BENCHMARK(BM_AclPipeline)
    ->Args({1, 0, 0})
    ->Args({1000, 0, 0})
    ->Args({10000, 0, 0})
    ->Args({10000, 1, 0})
    ->Args({10000, 0, 1})
    ->Args({10000, 0, 2})
    ->Args({10000, 0, 3})
    ->ArgNames({"rules", "dir", "mix"});

int main(int argc, char **argv) {
    return bench_main(argc, argv, [&] {
        // vleafd runs on hugepages: the 6-17 MB tries on 4 KB pages would measure TLB misses.
        bool huge = hugepages_free(512);
        std::printf("memory: %s\n", huge ? "hugepages" : "4 KB pages (--no-huge)");
        init_eal(argv[0], huge ? 512 : 2048, huge);
    });
}
