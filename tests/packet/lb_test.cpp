// Service load balancing through the real pipeline: services go in through the real
// registry (control/services) into the LB tables, packets through the worker. Expected
// frames are built here from scratch with full (not incremental) checksums.
#include "control/services/maglev.hpp"
#include "control/services/services.hpp"
#include "tests/packet/eal_main.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

using namespace vleaf;
using namespace vleaf::test;

namespace {

const MacAddr kHost1 = mac(0x12), kHost2 = mac(0x22), kHost3 = mac(0x32);

Prefix P(const char *s) {
    return *Prefix::parse(s, true);
}
IpAddr A(const std::string &s) {
    return *IpAddr::parse(s);
}

struct L4 {
    std::string src, dst;
    uint8_t proto = IPPROTO_TCP;
    uint16_t sport = 40000, dport = 80;
    uint8_t ttl = 64;
    uint16_t payload = 24;
};

// Sum of the pseudo-header, for the L4 checksum.
uint32_t pseudo(const IpAddr &s, const IpAddr &d, uint8_t proto, size_t len) {
    uint32_t sum = 0;
    unsigned n = s.is_v4() ? 4 : 16;
    for (unsigned k = 0; k < n; k += 2) sum += uint32_t(s.bytes[k] << 8 | s.bytes[k + 1]);
    for (unsigned k = 0; k < n; k += 2) sum += uint32_t(d.bytes[k] << 8 | d.bytes[k + 1]);
    return sum + proto + uint32_t(len);
}

// An IP packet (no Ethernet) with a TCP or UDP header and a correct checksum.
Frame ip_packet(const L4 &p) {
    IpAddr s = A(p.src), d = A(p.dst);
    size_t l4len = (p.proto == IPPROTO_TCP ? 20 : 8) + p.payload;
    Frame l4(l4len, 0);
    put16(l4, 0, p.sport);
    put16(l4, 2, p.dport);
    if (p.proto == IPPROTO_TCP) {
        put16(l4, 4, 0x1234);
        l4[12] = 0x50; // data offset 5
        l4[13] = 0x18; // PSH ACK
        put16(l4, 14, 512);
    } else {
        put16(l4, 4, uint16_t(l4len));
    }
    for (size_t k = l4len - p.payload; k < l4len; k++) l4[k] = uint8_t(k * 7);
    size_t csum_at = p.proto == IPPROTO_TCP ? 16 : 6;
    put16(l4, csum_at, checksum(l4.data(), l4.size(), pseudo(s, d, p.proto, l4len)));
    Frame ip;
    if (s.is_v4()) {
        ip.assign(20, 0);
        ip[0] = 0x45;
        put16(ip, 2, uint16_t(20 + l4len));
        put16(ip, 4, 0x4242);
        put16(ip, 6, 0x4000); // DF
        ip[8] = p.ttl;
        ip[9] = p.proto;
        std::copy(s.bytes.begin(), s.bytes.begin() + 4, ip.begin() + 12);
        std::copy(d.bytes.begin(), d.bytes.begin() + 4, ip.begin() + 16);
        put16(ip, 10, checksum(ip.data(), 20));
    } else {
        ip.assign(40, 0);
        ip[0] = 0x60;
        put16(ip, 4, uint16_t(l4len));
        ip[6] = p.proto;
        ip[7] = p.ttl;
        std::copy(s.bytes.begin(), s.bytes.end(), ip.begin() + 8);
        std::copy(d.bytes.begin(), d.bytes.end(), ip.begin() + 24);
    }
    ip.insert(ip.end(), l4.begin(), l4.end());
    return ip;
}

IpAddr dst4(const Frame &f) {
    return IpAddr::v4(uint32_t(f[30] << 24 | f[31] << 16 | f[32] << 8 | f[33]));
}

Frame framed(const MacAddr &dst, const MacAddr &src, const Frame &ip) {
    Frame f = ether(dst, src, ip[0] >> 4 == 4 ? 0x0800 : 0x86dd);
    f.insert(f.end(), ip.begin(), ip.end());
    return f;
}

// The outer header of IP-in-IP (IPv4, protocol 4) or IPv6-in-IPv6 (next header 41).
Frame tunneled(const std::string &src, const std::string &dst, const Frame &inner, uint8_t ttl) {
    IpAddr s = A(src), d = A(dst);
    Frame o;
    if (s.is_v4()) {
        o.assign(20, 0);
        o[0] = 0x45;
        put16(o, 2, uint16_t(20 + inner.size()));
        put16(o, 6, 0x4000); // the inner DF
        o[8] = ttl;
        o[9] = 4;
        std::copy(s.bytes.begin(), s.bytes.begin() + 4, o.begin() + 12);
        std::copy(d.bytes.begin(), d.bytes.begin() + 4, o.begin() + 16);
        put16(o, 10, checksum(o.data(), 20));
    } else {
        o.assign(40, 0);
        o[0] = 0x60;
        put16(o, 4, uint16_t(inner.size()));
        o[6] = 41;
        o[7] = ttl;
        std::copy(s.bytes.begin(), s.bytes.end(), o.begin() + 8);
        std::copy(d.bytes.begin(), d.bytes.end(), o.begin() + 24);
    }
    o.insert(o.end(), inner.begin(), inner.end());
    return o;
}

class Lb : public ::testing::Test {
  protected:
    Rig rig;
    MacAddr port_mac[Rig::kPorts];
    std::unique_ptr<svc::Registry> reg;

    void SetUp() override {
        for (unsigned p = 0; p < Rig::kPorts; p++) port_mac[p] = mac(uint8_t(0x10 + p));
        auto &f = *rig.prog;
        f.add_interface(0, "if0", rig.port[0], 0, {P("10.0.1.1/24"), P("fd00:1::1/64")});
        f.add_interface(1, "if1", rig.port[1], 0, {P("10.0.2.1/24"), P("fd00:2::1/64")});
        f.add_interface(2, "if2", rig.port[2], 0, {P("10.0.3.1/24"), P("fd00:3::1/64")});
        f.neighbor(0, A("10.0.1.2"), kHost1);
        f.neighbor(0, A("fd00:1::2"), kHost1);
        for (int h = 2; h <= 9; h++) {
            f.neighbor(1, A("10.0.2." + std::to_string(h)), kHost2);
            f.neighbor(1, A("fd00:2::" + std::to_string(h)), kHost2);
        }
        f.neighbor(2, A("10.0.3.2"), kHost3);
        f.neighbor(2, A("fd00:3::2"), kHost3);
        ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();
        svc::Callbacks cb;
        cb.program = [this](uint32_t id, const Service &s, const std::vector<uint32_t> &t) {
            rig.lb->set(id, 0, s, t);
        };
        cb.remove = [this](uint32_t id) { rig.lb->del(id); };
        reg = std::make_unique<svc::Registry>(cb);
    }

    Service service(const std::string &name, const std::string &vip, uint16_t port,
                    const std::vector<std::pair<std::string, uint16_t>> &backends,
                    uint8_t proto = IPPROTO_TCP) {
        Service s;
        s.name = name;
        s.vip = A(vip);
        s.port = port;
        s.proto = proto;
        for (auto &[ip, p] : backends) s.backends.push_back({A(ip), p, {}, 1, true, true});
        return s;
    }

    std::vector<Frame> sent(unsigned port) {
        std::vector<Frame> out;
        for (rte_mbuf *m : rig.take_tx(port)) {
            out.push_back(bytes_of(m));
            rte_pktmbuf_free(m);
        }
        return out;
    }

    uint64_t lb(uint64_t LbCounters::*c) const { return rig.w->stats.lb.*c; }
};

TEST_F(Lb, DnatIpv4BothWays) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    L4 req{"10.0.1.2", "10.96.0.10"};
    rig.run(0, {framed(port_mac[0], kHost1, ip_packet(req))});
    L4 want = req;
    want.dst = "10.0.2.2";
    want.dport = 8080;
    want.ttl = 63;
    auto out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost2, port_mac[1], ip_packet(want)));

    // The backend answers its own address; vleaf puts the VIP back on the way out.
    L4 reply{"10.0.2.2", "10.0.1.2", IPPROTO_TCP, 8080, 40000};
    rig.run(1, {framed(port_mac[1], kHost2, ip_packet(reply))});
    L4 back{"10.96.0.10", "10.0.1.2", IPPROTO_TCP, 80, 40000, 63};
    out = sent(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost1, port_mac[0], ip_packet(back)));
    EXPECT_EQ(lb(&LbCounters::dnat), 1u);
    EXPECT_EQ(lb(&LbCounters::reverse_nat), 1u);
    EXPECT_EQ(lb(&LbCounters::flows_created), 2u); // the request's entry and the reply's
    // One worker: nothing handed over.
    EXPECT_EQ(rig.w->handoff, nullptr);
    EXPECT_EQ(lb(&LbCounters::handoff_out) + lb(&LbCounters::handoff_in), 0u);
}

TEST_F(Lb, DnatIpv6UdpBothWays) {
    reg->add(service("dns", "fd00:96::53", 53, {{"fd00:2::2", 5353}}, IPPROTO_UDP));
    L4 req{"fd00:1::2", "fd00:96::53", IPPROTO_UDP, 33333, 53};
    rig.run(0, {framed(port_mac[0], kHost1, ip_packet(req))});
    L4 want{"fd00:1::2", "fd00:2::2", IPPROTO_UDP, 33333, 5353, 63};
    auto out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost2, port_mac[1], ip_packet(want)));

    L4 reply{"fd00:2::2", "fd00:1::2", IPPROTO_UDP, 5353, 33333};
    rig.run(1, {framed(port_mac[1], kHost2, ip_packet(reply))});
    L4 back{"fd00:96::53", "fd00:1::2", IPPROTO_UDP, 53, 33333, 63};
    out = sent(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost1, port_mac[0], ip_packet(back)));
}

TEST_F(Lb, DsrEncapsulatesIpv4InIpv4ToTheBackendsNode) {
    Service s = service("dsr", "10.96.0.20", 443, {{"10.244.7.9", 443}});
    s.mode = LbMode::DsrIpip;
    s.encap_source = A("10.0.3.1");
    s.backends[0].node = A("10.0.3.2");
    reg->add(s);
    L4 req{"10.0.1.2", "10.96.0.20", IPPROTO_TCP, 40001, 443};
    Frame inner = ip_packet(req);
    rig.run(0, {framed(port_mac[0], kHost1, inner)});
    auto out = sent(2);
    ASSERT_EQ(out.size(), 1u);
    // The inner packet is untouched (the backend's node hands it to the pod as sent); the
    // outer header is routed, so its TTL is one less.
    EXPECT_EQ(out[0], framed(kHost3, port_mac[2], tunneled("10.0.3.1", "10.0.3.2", inner, 63)));
    EXPECT_EQ(lb(&LbCounters::dsr_encap), 1u);
}

TEST_F(Lb, DsrEncapsulatesIpv6InIpv6) {
    Service s = service("dsr6", "fd00:96::20", 443, {{"fd00:244::9", 443}});
    s.mode = LbMode::DsrIpip;
    s.encap_source = A("fd00:3::1");
    s.backends[0].node = A("fd00:3::2");
    reg->add(s);
    Frame inner = ip_packet({"fd00:1::2", "fd00:96::20", IPPROTO_TCP, 40001, 443});
    rig.run(0, {framed(port_mac[0], kHost1, inner)});
    auto out = sent(2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost3, port_mac[2], tunneled("fd00:3::1", "fd00:3::2", inner, 63)));
}

// Two vleaf instances given the same backends (in another order) send every flow to the
// same backend, and both agree with the control plane's Maglev table and flow hash. The
// instances are two LB table sets (services and flow tables) in front of one FIB.
TEST_F(Lb, TwoInstancesChooseTheSameBackendForEveryFlow) {
    std::vector<std::string> pods;
    for (int h = 2; h <= 9; h++) pods.push_back("10.0.2." + std::to_string(h));
    auto make = [&](bool reversed) {
        Service s = service("web", "10.96.0.10", 80, {});
        for (size_t k = 0; k < pods.size(); k++)
            s.backends.push_back(
                {A(pods[reversed ? pods.size() - 1 - k : k]), 8080, {}, 1, true, true});
        return s;
    };
    Service sa = make(false), sb = make(true);
    std::vector<svc::Backend> ma, mb;
    for (auto &x : sa.backends) ma.push_back({x.addr, x.port, 1});
    for (auto &x : sb.backends) mb.push_back({x.addr, x.port, 1});
    std::vector<uint32_t> table_a = svc::build(65537, ma);
    dp::Lb a(rig.rcu, 1, {4096, 300}, 0), b(rig.rcu, 1, {4096, 300}, 0);
    a.set(1, 0, sa, table_a);
    b.set(7, 0, sb, svc::build(65537, mb));
    auto through = [&](dp::Lb &lb, const std::vector<Frame> &frames) {
        rig.w->lb = &lb;
        rig.w->flows = lb.flows(0);
        rig.run(0, frames);
        return sent(1);
    };
    std::mt19937 rng(7);
    std::map<std::string, unsigned> spread;
    for (int round = 0; round < 64; round++) {
        std::vector<Frame> frames;
        std::vector<L4> flows;
        for (int k = 0; k < 32; k++) {
            L4 p{"10." + std::to_string(rng() % 200) + "." + std::to_string(rng() % 250) + "." +
                     std::to_string(1 + rng() % 250),
                 "10.96.0.10", IPPROTO_TCP, uint16_t(1024 + rng() % 60000), 80};
            flows.push_back(p);
            frames.push_back(framed(port_mac[0], kHost1, ip_packet(p)));
        }
        auto oa = through(a, frames), ob = through(b, frames);
        ASSERT_EQ(oa.size(), frames.size());
        ASSERT_EQ(ob, oa);
        for (size_t k = 0; k < oa.size(); k++) {
            IpAddr chosen = dst4(oa[k]);
            uint32_t h = svc::flow_hash4(A(flows[k].src).v4_host(), A("10.96.0.10").v4_host(),
                                         IPPROTO_TCP, flows[k].sport, 80);
            EXPECT_EQ(chosen, sa.backends[table_a[svc::slot_of(h, 65537)]].addr);
            spread[chosen.str()]++;
        }
    }
    EXPECT_EQ(spread.size(), pods.size()); // 2048 flows reach every one of 8 backends
}

TEST_F(Lb, EstablishedFlowsKeepTheirBackendWhenItIsRemoved) {
    std::vector<std::pair<std::string, uint16_t>> bs;
    for (int h = 2; h <= 5; h++) bs.emplace_back("10.0.2." + std::to_string(h), 8080);
    reg->add(service("web", "10.96.0.10", 80, bs));
    auto backend_of = [&](uint16_t sport) {
        rig.run(0, {framed(port_mac[0], kHost1,
                           ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, sport, 80}))});
        auto out = sent(1);
        EXPECT_EQ(out.size(), 1u);
        return out.empty() ? std::string() : dst4(out[0]).str();
    };
    std::map<uint16_t, std::string> first;
    for (uint16_t sp = 1000; sp < 1200; sp++) first[sp] = backend_of(sp);
    std::string gone = first[1000];
    reg->del_backend("web", A(gone), 8080);
    unsigned moved = 0;
    for (auto &[sp, be] : first) moved += backend_of(sp) != be;
    EXPECT_EQ(moved, 0u) << "established flows changed backend";
    for (uint16_t sp = 5000; sp < 5200; sp++) EXPECT_NE(backend_of(sp), gone) << "new flow " << sp;
    // The removed backend's replies still get the VIP back.
    rig.run(1,
            {framed(port_mac[1], kHost2, ip_packet({gone, "10.0.1.2", IPPROTO_TCP, 8080, 1000}))});
    auto out = sent(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost1, port_mac[0],
                             ip_packet({"10.96.0.10", "10.0.1.2", IPPROTO_TCP, 80, 1000, 63})));
    EXPECT_EQ(lb(&LbCounters::flows_created), 800u); // 400 DNAT flows, two entries each
}

// The stage looks a VIP up once per run of packets to the same VIP, port, protocol and VRF:
// services interleaved in runs and singly, and packets that pass the bit filters but match
// no service between them, each get their own service's backend, first as new flows, then
// as established ones.
TEST_F(Lb, ServicesInterleavedInABurstEachGetTheirOwnBackend) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    reg->add(service("web81", "10.96.0.10", 81, {{"10.0.2.3", 8081}}));
    reg->add(service("api", "10.96.0.11", 80, {{"10.0.2.4", 9090}}));
    reg->add(service("dns", "10.96.0.11", 80, {{"10.0.2.5", 5353}}, IPPROTO_UDP));
    struct To {
        const char *vip;
        uint16_t port;
        uint8_t proto;
        const char *backend; // null: no service (10.96.0.11:81, UDP 10.96.0.10:80)
        uint16_t bport;
    };
    const To pattern[] = {{"10.96.0.10", 80, IPPROTO_TCP, "10.0.2.2", 8080},
                          {"10.96.0.10", 80, IPPROTO_TCP, "10.0.2.2", 8080},
                          {"10.96.0.10", 81, IPPROTO_TCP, "10.0.2.3", 8081},
                          {"10.96.0.11", 80, IPPROTO_TCP, "10.0.2.4", 9090},
                          {"10.96.0.11", 80, IPPROTO_UDP, "10.0.2.5", 5353},
                          {"10.96.0.11", 81, IPPROTO_TCP, nullptr, 0},
                          {"10.96.0.10", 80, IPPROTO_UDP, nullptr, 0},
                          {"10.96.0.11", 80, IPPROTO_TCP, "10.0.2.4", 9090}};
    std::vector<Frame> in, want;
    unsigned requests = 0;
    for (unsigned k = 0; k < 32; k++) {
        const To &t = pattern[(k + k / 8) % 8]; // rotated by one every 8 packets
        const auto sport = uint16_t(3000 + k);
        in.push_back(
            framed(port_mac[0], kHost1, ip_packet({"10.0.1.2", t.vip, t.proto, sport, t.port})));
        if (!t.backend) continue;
        requests++;
        want.push_back(framed(kHost2, port_mac[1],
                              ip_packet({"10.0.1.2", t.backend, t.proto, sport, t.bport, 63})));
    }
    for (int round = 0; round < 2; round++) {
        const uint64_t unrouted = rig.drops(Drop::no_route);
        rig.run(0, in);
        EXPECT_EQ(sent(1), want) << "round " << round;
        EXPECT_EQ(rig.drops(Drop::no_route), unrouted + 32 - requests) << "round " << round;
    }
    EXPECT_EQ(lb(&LbCounters::flows_created), 2 * requests); // in the first round only
    EXPECT_EQ(lb(&LbCounters::flow_hits), requests);
}

// Flows are keyed by their 5-tuple: a VIP given to a new service does not inherit the old
// service's flows.
TEST_F(Lb, VipGivenToANewServiceStartsItsFlowsAfresh) {
    const Frame req =
        framed(port_mac[0], kHost1, ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 1000, 80}));
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    rig.run(0, {req});
    auto out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(dst4(out[0]).str(), "10.0.2.2");
    reg->del("web");
    reg->add(service("web2", "10.96.0.10", 80, {{"10.0.2.3", 8080}}));
    rig.run(0, {req});
    out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(dst4(out[0]).str(), "10.0.2.3");
}

TEST_F(Lb, AdministrativelyDownBackendGetsNoNewFlows) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}, {"10.0.2.3", 8080}}));
    reg->set_up("web", A("10.0.2.2"), 8080, false);
    for (uint16_t sp = 1000; sp < 1100; sp++)
        rig.run(0, {framed(port_mac[0], kHost1,
                           ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, sp, 80}))});
    for (auto &f : sent(1)) EXPECT_EQ(dst4(f).str(), "10.0.2.3");
    reg->set_up("web", A("10.0.2.3"), 8080, false);
    uint64_t before = rig.drops(Drop::lb_no_backend);
    rig.run(0, {framed(port_mac[0], kHost1,
                       ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 9999, 80}))});
    EXPECT_EQ(rig.drops(Drop::lb_no_backend), before + 1);
    EXPECT_TRUE(sent(1).empty());
}

TEST_F(Lb, FullFlowTableIsCountedAndStillBalances) {
    dp::Lb small(rig.rcu, 1, {1024, 300}, 0);
    rig.w->lb = &small;
    rig.w->flows = small.flows(0);
    small.set(1, 0, service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}),
              svc::build(65537, {{A("10.0.2.2"), 8080, 1}}));
    for (unsigned k = 0; k < 2000; k += 20) {
        std::vector<Frame> fr;
        for (unsigned j = 0; j < 20; j++)
            fr.push_back(framed(
                port_mac[0], kHost1,
                ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, uint16_t(2000 + k + j), 80})));
        rig.run(0, fr);
        EXPECT_EQ(sent(1).size(), 20u);
    }
    // A DNAT flow takes two entries (request and reply): 512 flows fill the table.
    EXPECT_EQ(lb(&LbCounters::flows_created), 1024u);
    EXPECT_EQ(lb(&LbCounters::flow_table_full), 2000u - 512u);
    EXPECT_EQ(lb(&LbCounters::dnat), 2000u);
    EXPECT_EQ(small.flows(0)->used, 1024u);
}

// The cuckoo table against a map: filled to its capacity (half its ways) every key goes in,
// and after the moves that took every key is still found with what it was given.
TEST_F(Lb, FlowTableHoldsItsCapacityThroughCuckooMoves) {
    dp::Lb lb(rig.rcu, 1, {1 << 14, 300}, 0);
    dp::LbFlows &f = *lb.flows(0);
    std::mt19937_64 rnd(7);
    std::map<std::pair<uint64_t, uint64_t>, uint32_t> ref;
    auto key = [&](uint64_t r) {
        return dp::FlowKey{r, (r >> 40) | dp::flow_kind(dp::kFlowRequest4)};
    };
    while (ref.size() < f.capacity) {
        dp::FlowKey k = key(rnd());
        uint32_t sig = dp::flow_sig(k);
        if (dp::flow_find(f, k, sig)) continue;
        dp::FlowWay *w = dp::flow_insert(f, k, sig);
        ASSERT_NE(w, nullptr) << "insert failed with " << ref.size() << " keys";
        w->to = uint32_t(ref.size());
        ref[{k.k0, k.k1}] = w->to;
    }
    EXPECT_EQ(f.used, f.capacity);
    EXPECT_EQ(dp::flow_insert(f, key(rnd()), 1), nullptr); // full
    unsigned k = 0;
    for (const auto &[kk, to] : ref) {
        dp::FlowKey fk{kk.first, kk.second};
        dp::FlowWay *w = dp::flow_find(f, fk, dp::flow_sig(fk));
        ASSERT_NE(w, nullptr);
        EXPECT_EQ(w->to, to);
        if (k++ % 2) dp::flow_free(f, *w);
    }
    EXPECT_EQ(f.used, f.capacity / 2);
    k = 0;
    for (const auto &[kk, to] : ref) {
        dp::FlowKey fk{kk.first, kk.second};
        EXPECT_EQ(dp::flow_find(f, fk, dp::flow_sig(fk)) != nullptr, k++ % 2 == 0);
    }
}

// A key's two buckets share a 4 KB page, so that its second line costs no second TLB miss:
// the other bucket is an involution, never the first, anywhere else in the page.
TEST_F(Lb, KeysTwoBucketsShareAPage) {
    dp::Lb lb(rig.rcu, 1, {1 << 14, 300}, 0);
    const dp::LbFlows &f = *lb.flows(0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.bucket) % 4096, 0u);
    std::mt19937 rnd(3);
    std::set<uint32_t> offsets;
    for (unsigned k = 0; k < 100000; k++) {
        const uint32_t sig = uint32_t(rnd()), b1 = dp::flow_bucket1(f, sig);
        const uint32_t b2 = dp::flow_bucket2(f, b1, sig);
        ASSERT_NE(b1, b2);
        ASSERT_EQ(b1 / dp::kFlowPageBuckets, b2 / dp::kFlowPageBuckets);
        ASSERT_EQ(dp::flow_bucket2(f, b2, sig), b1);
        offsets.insert(b1 ^ b2);
    }
    EXPECT_EQ(offsets.size(), dp::kFlowPageBuckets / 2); // every odd offset in the page
}

// Keys whose buckets all lie in one page (as crafted 5-tuples could) fill that page through
// cuckoo moves, then are refused while the rest of the table is empty; every key stays
// findable, and a freed way takes a new key again.
TEST_F(Lb, FullPageRefusesKeysAndKeepsItsOwn) {
    dp::Lb lb(rig.rcu, 1, {1 << 14, 300}, 0);
    dp::LbFlows &f = *lb.flows(0);
    std::mt19937_64 rnd(11);
    auto in_page0 = [&] {
        for (;;) {
            const uint64_t r = rnd();
            dp::FlowKey k{r, (r >> 40) | dp::flow_kind(dp::kFlowRequest4)};
            if (dp::flow_bucket1(f, dp::flow_sig(k)) < dp::kFlowPageBuckets) return k;
        }
    };
    std::vector<dp::FlowKey> held;
    dp::FlowKey refused{};
    for (;;) {
        const dp::FlowKey k = in_page0();
        dp::FlowWay *w = dp::flow_insert(f, k, dp::flow_sig(k));
        if (!w) {
            refused = k;
            break;
        }
        w->to = uint32_t(held.size());
        held.push_back(k);
    }
    const unsigned ways = dp::kFlowPageBuckets * dp::kFlowWays;
    EXPECT_GE(held.size(), ways * 9 / 10); // a cuckoo table of 2-way buckets fills to ~90%+
    EXPECT_LE(held.size(), ways);
    EXPECT_EQ(f.used, held.size());
    for (uint32_t k = 0; k < held.size(); k++) {
        dp::FlowWay *w = dp::flow_find(f, held[k], dp::flow_sig(held[k]));
        ASSERT_NE(w, nullptr) << k;
        EXPECT_EQ(w->to, k);
        EXPECT_LT(uint32_t(reinterpret_cast<dp::FlowBucket *>(reinterpret_cast<uintptr_t>(w) &
                                                              ~uintptr_t(63)) -
                           f.bucket),
                  dp::kFlowPageBuckets);
    }
    EXPECT_EQ(dp::flow_find(f, refused, dp::flow_sig(refused)), nullptr);
    // Freeing one of the refused key's buckets' ways makes room for it.
    const uint32_t sig = dp::flow_sig(refused), b1 = dp::flow_bucket1(f, sig);
    dp::flow_free(f, f.bucket[b1].way[0]);
    ASSERT_NE(dp::flow_insert(f, refused, sig), nullptr);
    EXPECT_NE(dp::flow_find(f, refused, sig), nullptr);
}

TEST_F(Lb, IdleFlowsAge) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    for (uint16_t sp = 1000; sp < 1010; sp++)
        rig.run(0, {framed(port_mac[0], kHost1,
                           ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, sp, 80}))});
    sent(1);
    EXPECT_EQ(rig.lb->flows(0)->used, 20u); // requests and replies
    rig.lb->flows(0)->timeout = 0;          // everything is idle now
    // The ager visits kLbAgeScan buckets per burst; enough bursts sweep the whole table.
    for (unsigned k = 0; k < (rig.lb->flows(0)->mask + 1) / dp::kLbAgeScan + 1; k++)
        rig.run(0, {framed(port_mac[0], kHost1,
                           ip_packet({"10.0.1.2", "10.0.2.2", IPPROTO_TCP, 7, 7}))});
    sent(1);
    EXPECT_EQ(rig.lb->flows(0)->used, 0u);
    EXPECT_EQ(lb(&LbCounters::flows_aged), 20u);
}

// Last-seen times are coarse units: the timeout in units is rounded up so that no flow is
// forgotten before it has been idle for the configured time, and by no more than a unit.
TEST_F(Lb, IdleTimeoutIsNotShortenedByTheTimeUnit) {
    for (uint32_t secs : {1u, 7u, 300u, 86400u}) {
        dp::Lb lb(rig.rcu, 1, {1024, secs}, 0);
        const uint64_t units = lb.flows(0)->timeout, want = uint64_t(secs) * rte_get_tsc_hz();
        // Last seen late in unit u, forgotten from unit u + units on.
        EXPECT_GE((units - 1) << dp::kFlowTimeShift, want) << secs;
        EXPECT_LT((units - 2) << dp::kFlowTimeShift, want) << secs;
    }
}

TEST_F(Lb, TruncatedPacketToAVipIsDropped) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    Frame ip = ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 1000, 80, 64, 0});
    ip.resize(20 + 12); // ports, but no checksum field
    put16(ip, 2, uint16_t(ip.size()));
    put16(ip, 10, 0);
    put16(ip, 10, checksum(ip.data(), 20));
    uint64_t before = rig.drops(Drop::lb_truncated);
    rig.run(0, {framed(port_mac[0], kHost1, ip)});
    EXPECT_EQ(rig.drops(Drop::lb_truncated), before + 1);
    EXPECT_TRUE(sent(1).empty());
    EXPECT_TRUE(rig.take_punts().empty());
}

// A backend's traffic that vleaf did not translate keeps its source: health checks and
// clients that reach the pod directly.
TEST_F(Lb, OnlyRepliesOfTranslatedFlowsGetTheVip) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    Frame direct =
        framed(port_mac[1], kHost2, ip_packet({"10.0.2.2", "10.0.1.2", IPPROTO_TCP, 8080, 5555}));
    rig.run(1, {direct});
    auto out = sent(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], routed(direct, kHost1, port_mac[0]));
    EXPECT_EQ(lb(&LbCounters::reverse_nat), 0u);
}

// A reply whose destination (the client) is another service's VIP and port, of another
// protocol, passes the VIP filters and finds no service: it is still a DNAT flow's reply.
TEST_F(Lb, ReplyToAnAddressAndPortLikeAVipGetsTheVip) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    reg->add(service("dns", "10.0.1.2", 40000, {{"10.0.2.3", 53}}, IPPROTO_UDP));
    rig.run(0, {framed(port_mac[0], kHost1,
                       ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 40000, 80}))});
    ASSERT_EQ(sent(1).size(), 1u);
    L4 reply{"10.0.2.2", "10.0.1.2", IPPROTO_TCP, 8080, 40000};
    rig.run(1, {framed(port_mac[1], kHost2, ip_packet(reply))});
    L4 back{"10.96.0.10", "10.0.1.2", IPPROTO_TCP, 80, 40000, 63};
    auto out = sent(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], framed(kHost1, port_mac[0], ip_packet(back)));
    EXPECT_EQ(lb(&LbCounters::reverse_nat), 1u);
}

TEST_F(Lb, OtherTrafficIsRoutedUntouched) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    Frame in =
        framed(port_mac[0], kHost1, ip_packet({"10.0.1.2", "10.0.2.3", IPPROTO_TCP, 80, 80}));
    rig.run(0, {in});
    auto out = sent(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], routed(in, kHost2, port_mac[1]));
}

// With services on a single worker, plain4 runs the LB stage between its two loops. A burst
// of DNAT and DSR requests, replies and routed packets ends as the stages alone leave it,
// with an odd packet anywhere: dropped by the LB stage (truncated, no backend: route and
// forward take over), or dropped by forward after DNAT (TTL 1: plain4 hands over there);
// and with an ARP request in it too, which plain4 leaves to the stages on its own.
TEST_F(Lb, PlainBurstEndsAsInTheStages) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}, {"10.0.2.3", 8080}}));
    Service dsr = service("dsr", "10.96.0.20", 443, {{"10.244.7.9", 443}});
    dsr.mode = LbMode::DsrIpip;
    dsr.encap_source = A("10.0.3.1");
    dsr.backends[0].node = A("10.0.3.2");
    reg->add(dsr);
    reg->add(service("down", "10.96.0.30", 80, {{"10.0.2.4", 80}}));
    reg->set_up("down", A("10.0.2.4"), 80, false);
    Frame truncated = ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 1000, 80, 64, 0});
    truncated.resize(20 + 12);
    put16(truncated, 2, uint16_t(truncated.size()));
    put16(truncated, 10, 0);
    put16(truncated, 10, checksum(truncated.data(), 20));
    const std::vector<std::pair<std::string, Frame>> odd = {
        {"none", ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 999, 80})},
        {"truncated", truncated},
        {"no backend", ip_packet({"10.0.1.2", "10.96.0.30", IPPROTO_TCP, 998, 80})},
        {"ttl 1", ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, 997, 80, 1})},
    };
    auto packet = [](unsigned k) {
        const uint16_t sp = uint16_t(2000 + k);
        switch (k % 4) {
        case 0:
            return ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, sp, 80});
        case 1:
            return ip_packet({"10.0.1.2", "10.96.0.20", IPPROTO_TCP, sp, 443});
        case 2:
            return ip_packet({"10.0.1.2", "10.0.2.5", IPPROTO_UDP, sp, 53});
        default: // the VIP and port, but UDP: no service (passes the bit filters)
            return ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_UDP, sp, 80});
        }
    };
    struct Outcome {
        std::vector<Frame> sent[Rig::kPorts];
        std::vector<uint64_t> drops;
        std::vector<Frame> punted;
    };
    auto outcome = [&](auto &&run) {
        std::vector<uint64_t> before(std::begin(rig.w->stats.drops), std::end(rig.w->stats.drops));
        run();
        Outcome o;
        for (unsigned p = 0; p < Rig::kPorts; p++) o.sent[p] = sent(p);
        for (size_t d = 0; d < before.size(); d++)
            o.drops.push_back(rig.w->stats.drops[d] - before[d]);
        for (auto &pm : rig.take_punts()) {
            o.punted.push_back(bytes_of(pm.m));
            rte_pktmbuf_free(pm.m);
        }
        return o;
    };
    Frame arp = ether(MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, kHost1, 0x0806);
    arp.resize(42, 0);
    for (auto &[name, frame] : odd)
        for (unsigned at : {0u, 13u, 31u, 32u + 0, 32u + 13, 32u + 31}) {
            std::vector<Frame> in;
            const bool with_arp = at >= 32; // at packet 6, a routed one
            for (unsigned k = 0; k < 32; k++)
                in.push_back(with_arp && k == 6
                                 ? arp
                                 : framed(port_mac[0], kHost1, k == at % 32 ? frame : packet(k)));
            const uint64_t staged_before = lb(&LbCounters::dnat) + lb(&LbCounters::dsr_encap);
            Outcome fast = outcome([&] { rig.run(0, in); });
            const uint64_t balanced =
                lb(&LbCounters::dnat) + lb(&LbCounters::dsr_encap) - staged_before;
            Outcome staged = outcome([&] { rig.run_stages(0, in); });
            const std::string what =
                name + " at " + std::to_string(at % 32) + (with_arp ? ", arp at 6" : "");
            EXPECT_GE(balanced, 15u) << what; // 16 requests, one of them perhaps the odd one
            for (unsigned p = 0; p < Rig::kPorts; p++)
                EXPECT_EQ(fast.sent[p], staged.sent[p]) << what << ", port " << p;
            EXPECT_EQ(fast.drops, staged.drops) << what;
            EXPECT_EQ(fast.punted, staged.punted) << what;
            EXPECT_EQ(fast.punted.size(), with_arp ? 1u : 0u) << what;
        }
}

// With an ingress ACL too, plain4 classifies the burst before the LB stage, as acl_in runs
// before it: a denied request makes no flow and takes no backend, in both runs.
TEST_F(Lb, PlainBurstWithAnIngressAclEndsAsInTheStages) {
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}, {"10.0.2.3", 8080}}));
    AclPolicy pol;
    AclRule deny; // requests from odd source ports to the VIP
    deny.src = *Prefix::parse("10.0.1.0/24", true), deny.dst = *Prefix::parse("10.96.0.10/32");
    deny.proto = IPPROTO_TCP, deny.sport_lo = deny.sport_hi = 2001;
    deny.action = AclAction::Deny;
    AclRule count = deny;
    count.sport_lo = 2000, count.sport_hi = 2003, count.action = AclAction::Count;
    pol.rules = {deny, count};
    rig.acl->set(1, AclAttach{AclDirection::In, true, rig.port[0]}, pol);
    struct Outcome {
        std::vector<Frame> sent[Rig::kPorts];
        std::vector<uint64_t> drops, hits;
        uint64_t dnat;
    };
    auto outcome = [&](auto &&run) {
        std::vector<uint64_t> before(std::begin(rig.w->stats.drops), std::end(rig.w->stats.drops));
        std::vector<uint64_t> hits = rig.acl->hits(1);
        const uint64_t dnat = lb(&LbCounters::dnat);
        run();
        Outcome o;
        for (unsigned p = 0; p < Rig::kPorts; p++) o.sent[p] = sent(p);
        for (size_t d = 0; d < before.size(); d++)
            o.drops.push_back(rig.w->stats.drops[d] - before[d]);
        o.hits = rig.acl->hits(1);
        for (size_t r = 0; r < hits.size(); r++) o.hits[r] -= hits[r];
        o.dnat = lb(&LbCounters::dnat) - dnat;
        return o;
    };
    for (unsigned denied : {0u, 1u, 4u}) { // every denied-th request, or none
        std::vector<Frame> in;
        for (unsigned k = 0; k < 32; k++) {
            const uint16_t sp = denied && k % denied == 0 ? 2001 : uint16_t(3000 + k);
            in.push_back(framed(port_mac[0], kHost1,
                                ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, sp, 80})));
        }
        Outcome fast = outcome([&] { rig.run(0, in); });
        Outcome staged = outcome([&] { rig.run_stages(0, in); });
        const std::string what = "every " + std::to_string(denied) + " denied";
        for (unsigned p = 0; p < Rig::kPorts; p++)
            EXPECT_EQ(fast.sent[p], staged.sent[p]) << what << ", port " << p;
        EXPECT_EQ(fast.drops, staged.drops) << what;
        EXPECT_EQ(fast.hits, staged.hits) << what;
        EXPECT_EQ(fast.dnat, staged.dnat) << what;
        const uint64_t n_denied = denied ? (31 / denied + 1) : 0;
        EXPECT_EQ(fast.drops[size_t(Drop::acl_deny)], n_denied) << what;
        EXPECT_EQ(fast.dnat, 32 - n_denied) << what;
    }
}

// Two workers, A (the rig's, index 0) and B (index 1), with one flow table each and handoff
// rings of `ring` entries, run in turn by the test thread.
class LbHandoff : public Lb {
  protected:
    dp::Worker *w[2] = {};

    void workers(unsigned ring) {
        rig.two_workers(ring, {4096, 300});
        w[0] = rig.w.get();
        w[1] = rig.w2.get();
    }

    // A burst into worker `k` as received on port index `in`, then each worker's handoff
    // ring drained (A first, then B).
    void run(unsigned k, unsigned in, const std::vector<Frame> &frames) {
        dp::Burst b;
        b.port = rig.port[in];
        for (auto &f : frames) {
            b.m[b.n] = rig.mbuf(f);
            b.m[b.n++]->port = rig.port[in];
        }
        w[k]->process(b);
        for (dp::Worker *x : w) x->drain_handoff(b);
    }

    uint64_t sum(uint64_t LbCounters::*c) const { return w[0]->stats.lb.*c + w[1]->stats.lb.*c; }

    // Requests enter A, replies enter B; every reply must leave with VIP:port as its source.
    void both_ways(const std::string &client, const std::string &vip, const std::string &pod,
                   uint8_t proto) {
        workers(1024);
        reg->add(service("web", vip, 80, {{pod, 8080}}, proto));
        constexpr unsigned kFlows = 32;
        for (uint16_t sp = 40000; sp < 40000 + kFlows; sp++) {
            run(0, 0, {framed(port_mac[0], kHost1, ip_packet({client, vip, proto, sp, 80}))});
            auto out = sent(1);
            ASSERT_EQ(out.size(), 1u) << "request from port " << sp;
            EXPECT_EQ(out[0],
                      framed(kHost2, port_mac[1], ip_packet({client, pod, proto, sp, 8080, 63})));
            run(1, 1, {framed(port_mac[1], kHost2, ip_packet({pod, client, proto, 8080, sp}))});
            out = sent(0);
            ASSERT_EQ(out.size(), 1u) << "reply to port " << sp;
            EXPECT_EQ(out[0],
                      framed(kHost1, port_mac[0], ip_packet({vip, client, proto, 80, sp, 63})));
        }
        EXPECT_EQ(sum(&LbCounters::dnat), kFlows);
        EXPECT_EQ(sum(&LbCounters::reverse_nat), kFlows);
        // Each flow has one owner; the worker that does not own it hands over its packets:
        // requests A -> B for B's flows, replies B -> A for A's.
        const uint64_t of_b = w[0]->stats.lb.handoff_out, of_a = w[1]->stats.lb.handoff_out;
        EXPECT_EQ(of_a + of_b, kFlows);
        EXPECT_GT(of_a, 0u);
        EXPECT_GT(of_b, 0u);
        EXPECT_EQ(w[1]->stats.lb.handoff_in, of_b);
        EXPECT_EQ(w[0]->stats.lb.handoff_in, of_a);
        EXPECT_EQ(rig.lb->flows(0)->used, 2 * of_a); // request and reply entries, at the owner
        EXPECT_EQ(rig.lb->flows(1)->used, 2 * of_b);
    }
};

TEST_F(LbHandoff, ReplyOnAnotherWorkerGetsTheVipIpv4Tcp) {
    both_ways("10.0.1.2", "10.96.0.10", "10.0.2.2", IPPROTO_TCP);
}
TEST_F(LbHandoff, ReplyOnAnotherWorkerGetsTheVipIpv4Udp) {
    both_ways("10.0.1.2", "10.96.0.10", "10.0.2.2", IPPROTO_UDP);
}
TEST_F(LbHandoff, ReplyOnAnotherWorkerGetsTheVipIpv6Tcp) {
    both_ways("fd00:1::2", "fd00:96::10", "fd00:2::2", IPPROTO_TCP);
}
TEST_F(LbHandoff, ReplyOnAnotherWorkerGetsTheVipIpv6Udp) {
    both_ways("fd00:1::2", "fd00:96::10", "fd00:2::2", IPPROTO_UDP);
}

// Traffic that is no LB packet stays on the worker that received it.
TEST_F(LbHandoff, OtherTrafficIsNotHandedOver) {
    workers(1024);
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    std::vector<Frame> in;
    for (uint16_t sp = 1000; sp < 1032; sp++)
        in.push_back(
            framed(port_mac[0], kHost1, ip_packet({"10.0.1.2", "10.0.2.3", IPPROTO_TCP, sp, 80})));
    run(0, 0, in);
    auto out = sent(1);
    ASSERT_EQ(out.size(), in.size());
    for (size_t k = 0; k < in.size(); k++) EXPECT_EQ(out[k], routed(in[k], kHost2, port_mac[1]));
    EXPECT_EQ(sum(&LbCounters::handoff_out), 0u);
}

// A ring of 8 holds 7: of one burst of requests, B's flows beyond 7 are dropped as
// lb_handoff_full; the 7 come out once B drains its ring, A's own flows at once.
TEST_F(LbHandoff, FullRingIsCountedDrop) {
    workers(8);
    reg->add(service("web", "10.96.0.10", 80, {{"10.0.2.2", 8080}}));
    std::vector<Frame> in;
    unsigned of_b = 0;
    const IpAddr client = A("10.0.1.2");
    for (uint16_t sp = 2000; sp < 2032; sp++) {
        in.push_back(framed(port_mac[0], kHost1,
                            ip_packet({"10.0.1.2", "10.96.0.10", IPPROTO_TCP, sp, 80})));
        of_b += dp::lb_owner(client.bytes.data(), false, rte_cpu_to_be_16(sp), IPPROTO_TCP, 0, 2);
    }
    ASSERT_GT(of_b, 7u);
    dp::Burst b;
    b.port = rig.port[0];
    for (auto &f : in) {
        b.m[b.n] = rig.mbuf(f);
        b.m[b.n++]->port = rig.port[0];
    }
    w[0]->process(b);
    EXPECT_EQ(sent(1).size(), in.size() - of_b);
    EXPECT_EQ(w[0]->stats.lb.handoff_out, 7u);
    EXPECT_EQ(w[0]->stats.drops[int(Drop::lb_handoff_full)], of_b - 7);
    w[1]->drain_handoff(b);
    EXPECT_EQ(sent(1).size(), 7u);
    EXPECT_EQ(w[1]->stats.lb.handoff_in, 7u);
    EXPECT_EQ(w[1]->stats.lb.dnat, 7u);
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog); });
}
