// The ACL classifier (exact-match part and rte_acl) against a plain reference on random rule
// sets and packets: rte_acl alone, the exact-match part alone, and both with interleaved
// priorities; plus hand-written cases for every field, priorities, Count rules and header
// parsing; then the ACL stages in the real pipeline (ingress by port, egress by VRF)
// against the same reference.
#include "dataplane/acl_set.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <random>

using namespace vleaf;
using namespace vleaf::dp;

namespace {

Prefix P(const char *s) {
    return *Prefix::parse(s, true);
}
IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}

// What a packet carries, independent of how its bytes are laid out.
struct Pkt {
    IpAddr src, dst;
    uint8_t proto = IPPROTO_TCP;
    uint16_t sport = 0, dport = 0; // TCP/UDP/SCTP
    uint8_t icmp_type = 0, icmp_code = 0;
    unsigned extra = 0; // IPv4 option bytes (multiple of 4) or IPv6 extension headers
};

std::vector<uint8_t> bytes(const Pkt &p) {
    std::vector<uint8_t> b;
    auto put16 = [&b](uint16_t v) { b.push_back(uint8_t(v >> 8)), b.push_back(uint8_t(v)); };
    if (p.src.is_v4()) {
        b = {uint8_t(0x45 + p.extra / 4), 0, 0, 0, 0, 0, 0x40, 0, 64, p.proto, 0, 0};
        b.insert(b.end(), p.src.bytes.begin(), p.src.bytes.begin() + 4);
        b.insert(b.end(), p.dst.bytes.begin(), p.dst.bytes.begin() + 4);
        b.insert(b.end(), p.extra, 1); // NOP options
    } else {
        uint8_t first = p.extra ? uint8_t(IPPROTO_DSTOPTS) : p.proto;
        b = {0x60, 0, 0, 0, 0, 0, first, 64};
        b.insert(b.end(), p.src.bytes.begin(), p.src.bytes.end());
        b.insert(b.end(), p.dst.bytes.begin(), p.dst.bytes.end());
        for (unsigned e = 0; e < p.extra; e++) { // destination options then hop-by-hop chains
            uint8_t next = e + 1 < p.extra ? uint8_t(IPPROTO_DSTOPTS) : p.proto;
            b.insert(b.end(), {next, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
        }
    }
    if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6) {
        b.insert(b.end(), {p.icmp_type, p.icmp_code, 0xab, 0xcd});
    } else {
        put16(p.sport);
        put16(p.dport);
    }
    b.insert(b.end(), 16, 0x5a); // rest of an L4 header
    return b;
}

bool in(const Prefix &pf, const IpAddr &a) {
    if (pf.addr.family != a.family) return false;
    for (int bit = 0; bit < pf.len; bit++) {
        int mask = 0x80 >> (bit % 8);
        if ((pf.addr.bytes[bit / 8] & mask) != (a.bytes[bit / 8] & mask)) return false;
    }
    return true;
}

bool matches(const AclRule &r, const Pkt &p) {
    if (r.proto && *r.proto != p.proto) return false;
    if (!in(r.src, p.src) || !in(r.dst, p.dst)) return false;
    if (r.icmp_type && *r.icmp_type != p.icmp_type) return false;
    if (r.proto && (*r.proto == IPPROTO_TCP || *r.proto == IPPROTO_UDP || *r.proto == IPPROTO_SCTP))
        return r.sport_lo <= p.sport && p.sport <= r.sport_hi && r.dport_lo <= p.dport &&
               p.dport <= r.dport_hi;
    return true;
}

// The reference: rules by priority, earlier first on ties; first Allow/Deny match decides.
AclVerdict reference(const AclPolicy &pol, const std::vector<uint32_t> &by_prio, const Pkt &p) {
    AclVerdict v{pol.default_action, kAclDefault, kAclDefault};
    bool decided = false;
    for (uint32_t i : by_prio) {
        const AclRule &r = pol.rules[i];
        if (!matches(r, p)) continue;
        if (r.action == AclAction::Count) {
            if (v.counted == kAclDefault) v.counted = i;
        } else if (!decided) {
            v.action = r.action, v.rule = i, decided = true;
        }
    }
    return v;
}

std::vector<uint32_t> priority_order(const AclPolicy &pol) {
    std::vector<uint32_t> o(pol.rules.size());
    for (uint32_t i = 0; i < o.size(); i++) o[i] = i;
    std::stable_sort(o.begin(), o.end(), [&](uint32_t a, uint32_t b) {
        return pol.rules[a].priority < pol.rules[b].priority;
    });
    return o;
}

std::vector<AclVerdict> run(const AclSet &s, const std::vector<Pkt> &pkts, unsigned worker = 0) {
    std::vector<std::vector<uint8_t>> frames;
    std::vector<const uint8_t *> l3;
    std::vector<uint16_t> len;
    frames.reserve(pkts.size());
    l3.reserve(pkts.size());
    len.reserve(pkts.size());
    for (auto &p : pkts) frames.push_back(bytes(p));
    for (auto &f : frames) l3.push_back(f.data()), len.push_back(uint16_t(f.size()));
    std::vector<AclVerdict> out(pkts.size());
    // Bursts of 32 as the worker sends them, one family at a time.
    for (size_t i = 0; i < pkts.size(); i += 32) {
        unsigned n = unsigned(std::min<size_t>(32, pkts.size() - i));
        for (unsigned k = 0; k < n; k++) EXPECT_EQ(pkts[i + k].src.family, pkts[i].src.family);
        if (pkts[i].src.is_v4())
            s.classify4(&l3[i], &len[i], n, &out[i], worker);
        else
            s.classify6(&l3[i], &len[i], n, &out[i], worker);
    }
    return out;
}

AclVerdict one(const AclSet &s, const Pkt &p) {
    return run(s, {p})[0];
}

// Random rules over a few overlapping address blocks, so that rules nest and intersect.
struct Gen {
    std::mt19937_64 rng;
    bool v6;
    std::vector<IpAddr> bases;

    std::vector<IpAddr> pods; // hosts that pinned rules protect

    Gen(uint64_t seed, bool v6_, unsigned n_pods = 64) : rng(seed), v6(v6_) {
        for (const char *s : v6 ? std::vector<const char *>{"fd00::", "fd00:0:0:1::", "fd00:1::",
                                                            "2001:db8::", "fd00::ff00:0"}
                                : std::vector<const char *>{"10.0.0.0", "10.1.0.0", "10.1.2.0",
                                                            "192.168.0.0", "172.16.5.0"})
            bases.push_back(A(s));
        for (unsigned i = 0; i < n_pods; i++) pods.push_back(inside(prefix()));
    }
    unsigned below(unsigned n) { return unsigned(rng() % n); }
    bool chance(unsigned pct) { return below(100) < pct; }

    // An address in `p` with random host bits.
    IpAddr inside(const Prefix &p) {
        IpAddr a = p.addr;
        for (int bit = p.len; bit < a.max_len(); bit++)
            if (chance(50)) a.bytes[bit / 8] ^= uint8_t(0x80 >> (bit % 8));
        return a;
    }
    Prefix prefix() {
        static const int v4len[] = {0, 8, 12, 16, 20, 24, 26, 31, 32};
        static const int v6len[] = {0, 16, 48, 64, 72, 96, 100, 120, 128};
        int len = v6 ? v6len[below(9)] : v4len[below(9)];
        Prefix wide{bases[below(unsigned(bases.size()))], uint8_t(v6 ? 64 : 16)};
        return Prefix{inside(wide), uint8_t(len)}.masked();
    }
    uint8_t icmp() const { return v6 ? uint8_t(IPPROTO_ICMPV6) : uint8_t(IPPROTO_ICMP); }
    uint16_t port() {
        static const uint16_t common[] = {22, 53, 80, 443, 8080, 0, 65535};
        return chance(50) ? common[below(7)] : uint16_t(below(65536));
    }
    void range(uint16_t &lo, uint16_t &hi) {
        if (chance(40)) return;
        lo = port();
        hi = chance(50) ? lo : uint16_t(std::min(65535u, lo + below(3000)));
    }
    AclRule rule() {
        AclRule r;
        r.src = prefix(), r.dst = prefix();
        unsigned p = below(100);
        if (p < 30)
            r.proto = IPPROTO_TCP;
        else if (p < 55)
            r.proto = IPPROTO_UDP;
        else if (p < 65)
            r.proto = icmp();
        else if (p < 70)
            r.proto = uint8_t(chance(50) ? IPPROTO_SCTP : 47);
        if (r.proto &&
            (*r.proto == IPPROTO_TCP || *r.proto == IPPROTO_UDP || *r.proto == IPPROTO_SCTP)) {
            range(r.sport_lo, r.sport_hi);
            range(r.dport_lo, r.dport_hi);
        }
        if (r.proto == icmp() && chance(60))
            r.icmp_type = uint8_t(chance(70) ? below(4) * 3 : below(256));
        r.priority = int32_t(below(40)); // many ties
        unsigned a = below(100);
        r.action = a < 45 ? AclAction::Allow : a < 90 ? AclAction::Deny : AclAction::Count;
        return r;
    }
    // A rule for one pod, as NetworkPolicy makes them: the source (`src`, egress) or the
    // destination is a host, the rest random, so that keys share pods, protocols and ports.
    AclRule pinned(bool src) {
        AclRule r = rule();
        (src ? r.src : r.dst) = Prefix{pods[below(unsigned(pods.size()))], uint8_t(v6 ? 128 : 32)};
        return r;
    }
    // Most packets are made to hit a chosen rule (they may hit better ones too).
    Pkt packet(const std::vector<AclRule> &rules) {
        Pkt p;
        const AclRule *r = chance(85) ? &rules[below(unsigned(rules.size()))] : nullptr;
        p.src = r ? inside(r->src) : inside(prefix());
        p.dst = r ? inside(r->dst) : inside(prefix());
        static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 47, 0};
        p.proto = r && r->proto ? *r->proto : protos[below(5)];
        if (p.proto == 0 || chance(5)) p.proto = icmp();
        auto pick = [&](uint16_t lo, uint16_t hi) {
            return chance(80) ? uint16_t(lo + below(hi - lo + 1u)) : port();
        };
        p.sport = r ? pick(r->sport_lo, r->sport_hi) : port();
        p.dport = r ? pick(r->dport_lo, r->dport_hi) : port();
        p.icmp_type = r && r->icmp_type && chance(80) ? *r->icmp_type : uint8_t(below(12));
        p.icmp_code = uint8_t(below(16));
        p.extra = chance(10) ? (v6 ? 1 + below(2) : 4 * (1 + below(3))) : 0;
        return p;
    }
};

struct Eal : ::testing::Environment {
    void SetUp() override { vleaf::test::init_eal("acl_test"); }
    void TearDown() override { vleaf::test::finish_eal(); }
};

// How random_check draws rules: `pinned` percent with a host on one side (the source if
// `src`), the others as rule() makes them (some pinned by chance); with `after`, the
// pinned rules take priorities 0-19 and the others 19-38, so that most of the rte_acl
// part ranks after the exact part and ties cross the border.
struct Mix {
    unsigned pinned = 0;
    bool src = false, after = false;
    unsigned pods = 64; // hosts the pinned rules share: many pods make small groups
};

bool pinned_side(const AclRule &r, const Mix &mix) {
    const Prefix &p = mix.src ? r.src : r.dst;
    return p.len == p.addr.max_len();
}

void random_check(unsigned n_rules, bool v6, uint64_t seed, Mix mix = {}) {
    Gen g(seed, v6, mix.pods);
    AclPolicy pol;
    for (unsigned i = 0; i < n_rules; i++) {
        bool pin = g.chance(mix.pinned);
        pol.rules.push_back(pin ? g.pinned(mix.src) : g.rule());
        if (mix.after) pol.rules.back().priority = int32_t(pin ? g.below(20) : 19 + g.below(20));
    }
    pol.default_action = g.chance(50) ? AclAction::Allow : AclAction::Deny;
    auto set = AclSet::build(pol, 1, 0);
    if (mix.pinned) {
        // The split this mix is meant to exercise was made: every rule pinned on the key
        // side is in the exact part.
        size_t pinned = 0;
        for (const AclRule &r : pol.rules) pinned += pinned_side(r, mix);
        EXPECT_EQ(set->exact_rules(), pinned);
    }
    auto order = priority_order(pol);
    std::vector<Pkt> pkts;
    pkts.reserve(100000);
    for (int i = 0; i < 100000; i++) pkts.push_back(g.packet(pol.rules));
    auto got = run(*set, pkts);
    unsigned mismatches = 0, decided_by_rule = 0, counted = 0, by_exact = 0;
    std::vector<uint64_t> want_hits(n_rules + 1);
    for (size_t i = 0; i < pkts.size(); i++) {
        AclVerdict want = reference(pol, order, pkts[i]);
        decided_by_rule += want.rule != kAclDefault;
        by_exact += want.rule != kAclDefault && pinned_side(pol.rules[want.rule], mix);
        counted += want.counted != kAclDefault;
        want_hits[want.rule == kAclDefault ? n_rules : want.rule]++;
        if (want.counted != kAclDefault) want_hits[want.counted]++;
        if (got[i].action != want.action || got[i].rule != want.rule ||
            got[i].counted != want.counted) {
            if (++mismatches <= 5)
                ADD_FAILURE() << "packet " << i << " " << pkts[i].src.str() << " -> "
                              << pkts[i].dst.str() << " proto " << int(pkts[i].proto) << " ports "
                              << pkts[i].sport << "/" << pkts[i].dport << " icmp "
                              << int(pkts[i].icmp_type) << ": rule " << got[i].rule << " counted "
                              << got[i].counted << ", reference rule " << want.rule << " counted "
                              << want.counted;
        }
    }
    EXPECT_EQ(mismatches, 0u);
    // The packets must exercise the rules, not just the default.
    EXPECT_GT(decided_by_rule, 50000u);
    EXPECT_GT(counted, 1000u);
    // Both parts decide packets when both hold rules.
    if (set->exact_rules()) {
        EXPECT_GT(by_exact, 5000u);
    }
    if (set->exact_rules() < n_rules) {
        EXPECT_GT(decided_by_rule - by_exact, 5000u);
    }
    for (uint32_t r = 0; r <= n_rules; r++)
        ASSERT_EQ(set->hits(r == n_rules ? kAclDefault : r), want_hits[r]) << "rule " << r;
}

} // namespace

TEST(AclRandom, V4_100) {
    random_check(100, false, 1);
}
TEST(AclRandom, V4_1000) {
    random_check(1000, false, 2);
}
TEST(AclRandom, V6_100) {
    random_check(100, true, 3);
}
TEST(AclRandom, V6_1000) {
    random_check(1000, true, 4);
}
// Sets of more than 1000 rules are classified with AVX2 instead of SSE (acl_set.cpp).
TEST(AclRandom, V4_2000) {
    random_check(2000, false, 5);
}
TEST(AclRandom, V6_2000) {
    random_check(2000, true, 6);
}

// Every rule in the exact-match part: rte_acl holds none of the family.
TEST(AclRandom, ExactOnlyV4) {
    random_check(1000, false, 21, {100});
}
TEST(AclRandom, ExactOnlyV6) {
    random_check(1000, true, 22, {100});
}
// Pinned on the source (egress policies).
TEST(AclRandom, ExactOnlyBySourceV4) {
    random_check(500, false, 23, {100, true});
}
TEST(AclRandom, ExactOnlyBySourceV6) {
    random_check(500, true, 24, {100, true});
}
// Rules spread over many pods: most groups hold one to three rules, so both groups kept in
// the bucket (up to its in-line limit) and groups in the pool are looked up.
TEST(AclRandom, ExactSmallGroupsV4) {
    random_check(3000, false, 29, {100, false, false, 1500});
}
TEST(AclRandom, ExactSmallGroupsV6) {
    random_check(3000, true, 30, {100, false, false, 1500});
}
TEST(AclRandom, ExactSmallGroupsBySourceV4) {
    random_check(2000, false, 31, {100, true, false, 1000});
}
// Both parts with priorities drawn alike (ties across them): split because the exact part
// is large, every packet that the rte_acl part could still decide goes through it.
TEST(AclRandom, BothInterleavedV4) {
    random_check(1500, false, 25, {70});
}
TEST(AclRandom, BothInterleavedV6) {
    random_check(1500, true, 26, {70});
}
// Both parts, the rte_acl rules mostly after the exact ones (split for a small policy).
TEST(AclRandom, BothExactFirstV4) {
    random_check(200, false, 27, {60, false, true});
}
TEST(AclRandom, BothExactFirstV6) {
    random_check(200, true, 28, {60, true, true});
}

namespace {

Pkt tcp4(const char *s, const char *d, uint16_t sp, uint16_t dp) {
    return Pkt{A(s), A(d), IPPROTO_TCP, sp, dp};
}

AclRule rule(const char *s, const char *d, AclAction a = AclAction::Deny) {
    AclRule r;
    r.src = P(s), r.dst = P(d), r.action = a;
    return r;
}

} // namespace

TEST(Acl, EachField) {
    AclPolicy pol;
    pol.rules.push_back(rule("10.1.0.0/16", "0.0.0.0/0")); // 0: src
    pol.rules.push_back(rule("0.0.0.0/0", "10.2.3.0/24")); // 1: dst
    pol.rules.push_back(rule("0.0.0.0/0", "0.0.0.0/0"));   // 2: proto
    pol.rules.back().proto = 47;
    pol.rules.push_back(rule("0.0.0.0/0", "0.0.0.0/0")); // 3: sport range
    pol.rules.back().proto = IPPROTO_UDP;
    pol.rules.back().sport_lo = 1000, pol.rules.back().sport_hi = 1999;
    pol.rules.push_back(rule("0.0.0.0/0", "0.0.0.0/0")); // 4: dport
    pol.rules.back().proto = IPPROTO_TCP;
    pol.rules.back().dport_lo = pol.rules.back().dport_hi = 22;
    pol.rules.push_back(rule("0.0.0.0/0", "0.0.0.0/0")); // 5: icmp type
    pol.rules.back().proto = IPPROTO_ICMP, pol.rules.back().icmp_type = 8;
    auto s = AclSet::build(pol, 1, 0);
    auto rule_of = [&](Pkt p) { return one(*s, p).rule; };
    EXPECT_EQ(rule_of(tcp4("10.1.255.255", "9.9.9.9", 1, 2)), 0u);
    EXPECT_EQ(rule_of(tcp4("10.0.255.255", "9.9.9.9", 1, 2)), kAclDefault);
    EXPECT_EQ(rule_of(tcp4("9.9.9.9", "10.2.3.4", 1, 2)), 1u);
    EXPECT_EQ(rule_of(tcp4("9.9.9.9", "10.2.4.4", 1, 2)), kAclDefault);
    EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), 47}), 2u);
    EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), 50}), kAclDefault);
    for (uint16_t sp : {999, 1000, 1999, 2000}) {
        uint32_t want = sp >= 1000 && sp <= 1999 ? 3u : kAclDefault;
        EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), IPPROTO_UDP, sp, 7}), want) << sp;
        EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), IPPROTO_TCP, sp, 7}), kAclDefault) << sp;
    }
    EXPECT_EQ(rule_of(tcp4("9.9.9.9", "8.8.8.8", 5, 22)), 4u);
    EXPECT_EQ(rule_of(tcp4("9.9.9.9", "8.8.8.8", 22, 23)), kAclDefault);
    EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), IPPROTO_ICMP, 0, 0, 8, 0}), 5u);
    EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), IPPROTO_ICMP, 0, 0, 8, 255}), 5u);
    EXPECT_EQ(rule_of(Pkt{A("9.9.9.9"), A("8.8.8.8"), IPPROTO_ICMP, 0, 0, 0, 0}), kAclDefault);
    // IPv4 options move the L4 header: the ports are still found.
    Pkt opt = tcp4("9.9.9.9", "8.8.8.8", 5, 22);
    opt.extra = 40;
    EXPECT_EQ(rule_of(opt), 4u);
}

TEST(Acl, V6PrefixesAcrossWordsAndExtensionHeaders) {
    AclPolicy pol;
    pol.rules.push_back(rule("fd00:0:0:1::/64", "::/0"));
    pol.rules.push_back(rule("::/0", "fd00::ab00:0/100"));
    pol.rules.push_back(rule("::/0", "::/0"));
    pol.rules.back().proto = IPPROTO_ICMPV6, pol.rules.back().icmp_type = 128;
    pol.rules.push_back(rule("::/0", "::/0"));
    pol.rules.back().proto = IPPROTO_TCP, pol.rules.back().dport_lo = 443;
    pol.rules.back().dport_hi = 443;
    auto s = AclSet::build(pol, 1, 0);
    auto pkt = [](const char *src, const char *dst, uint8_t proto, uint16_t dport = 0,
                  uint8_t type = 0) { return Pkt{A(src), A(dst), proto, 1, dport, type}; };
    EXPECT_EQ(one(*s, pkt("fd00:0:0:1:ffff::1", "fd99::1", 17)).rule, 0u);
    EXPECT_EQ(one(*s, pkt("fd00:0:0:2::1", "fd99::1", 17)).rule, kAclDefault);
    EXPECT_EQ(one(*s, pkt("fd99::1", "fd00::abf:ffff", 17)).rule, kAclDefault);
    EXPECT_EQ(one(*s, pkt("fd99::1", "fd00::ab0f:ffff", 17)).rule, 1u);
    EXPECT_EQ(one(*s, pkt("fd99::1", "fd00::bc00:1", 17)).rule, kAclDefault);
    EXPECT_EQ(one(*s, pkt("fd99::1", "fd99::2", IPPROTO_ICMPV6, 0, 128)).rule, 2u);
    EXPECT_EQ(one(*s, pkt("fd99::1", "fd99::2", IPPROTO_ICMPV6, 0, 129)).rule, kAclDefault);
    Pkt p = pkt("fd99::1", "fd99::2", IPPROTO_TCP, 443);
    EXPECT_EQ(one(*s, p).rule, 3u);
    p.extra = 2; // two destination-options headers before TCP
    EXPECT_EQ(one(*s, p).rule, 3u);
    // IPv4 packets never see IPv6 rules.
    EXPECT_EQ(one(*s, tcp4("9.9.9.9", "8.8.8.8", 1, 443)).rule, kAclDefault);
}

TEST(Acl, LowerPriorityNumberWinsAndTiesGoToTheEarlierRule) {
    AclPolicy pol;
    pol.rules.push_back(rule("10.0.0.0/8", "0.0.0.0/0", AclAction::Allow));
    pol.rules.back().priority = 5;
    pol.rules.push_back(rule("10.1.0.0/16", "0.0.0.0/0", AclAction::Deny));
    pol.rules.back().priority = 5;
    pol.rules.push_back(rule("10.1.2.0/24", "0.0.0.0/0", AclAction::Deny));
    pol.rules.back().priority = 1;
    pol.default_action = AclAction::Deny;
    auto s = AclSet::build(pol, 1, 0);
    auto v = one(*s, tcp4("10.1.2.3", "1.1.1.1", 1, 2));
    EXPECT_EQ(v.rule, 2u);
    EXPECT_EQ(v.action, AclAction::Deny);
    v = one(*s, tcp4("10.1.3.3", "1.1.1.1", 1, 2)); // rules 0 and 1 tie: 0 is earlier
    EXPECT_EQ(v.rule, 0u);
    EXPECT_EQ(v.action, AclAction::Allow);
    v = one(*s, tcp4("11.1.3.3", "1.1.1.1", 1, 2));
    EXPECT_EQ(v.rule, kAclDefault);
    EXPECT_EQ(v.action, AclAction::Deny);
}

TEST(Acl, CountRulesDoNotDecideAndCountersArePerWorker) {
    AclPolicy pol;
    pol.rules.push_back(rule("10.0.0.0/8", "0.0.0.0/0", AclAction::Count));
    pol.rules.push_back(rule("10.1.0.0/16", "0.0.0.0/0", AclAction::Deny));
    pol.rules.back().priority = 9;
    pol.default_action = AclAction::Allow;
    auto s = AclSet::build(pol, 2, 0);
    auto v = run(*s,
                 {tcp4("10.1.0.1", "1.1.1.1", 1, 2), tcp4("10.2.0.1", "1.1.1.1", 1, 2),
                  tcp4("11.0.0.1", "1.1.1.1", 1, 2)},
                 1);
    EXPECT_EQ(v[0].action, AclAction::Deny);
    EXPECT_EQ(v[0].rule, 1u);
    EXPECT_EQ(v[0].counted, 0u);
    EXPECT_EQ(v[1].action, AclAction::Allow);
    EXPECT_EQ(v[1].rule, kAclDefault);
    EXPECT_EQ(v[1].counted, 0u);
    EXPECT_EQ(v[2].counted, kAclDefault);
    run(*s, {tcp4("10.1.0.1", "1.1.1.1", 1, 2)}, 0);
    EXPECT_EQ(s->hits(0), 3u);
    EXPECT_EQ(s->hits(1), 2u);
    EXPECT_EQ(s->hits(kAclDefault), 2u);
}

// A rule pinned to a host (exact-match part) against one that is not (rte_acl): equal
// priorities go to the earlier rule whichever part holds it, and an rte_acl Count rule
// ranked after the exact part's decision is still counted.
TEST(Acl, ExactAndTriePartsTieByOrderAndCount) {
    AclPolicy pol;
    pol.rules.push_back(rule("10.1.0.0/16", "0.0.0.0/0", AclAction::Deny)); // 0: rte_acl
    pol.rules.back().priority = 5;
    for (int i = 0; i < 5; i++) { // 1-5: exact, most ahead of rule 0 (so the split is made)
        pol.rules.push_back(rule("0.0.0.0/0", "10.9.9.9/32", AclAction::Allow));
        pol.rules.back().priority = i < 2 ? 5 : 0;
        pol.rules.back().proto = IPPROTO_TCP;
        pol.rules.back().dport_lo = pol.rules.back().dport_hi = uint16_t(80 + i);
    }
    pol.rules.push_back(rule("0.0.0.0/0", "10.9.9.0/24", AclAction::Count)); // 6: rte_acl
    pol.rules.back().priority = 50;
    pol.default_action = AclAction::Deny;
    auto s = AclSet::build(pol, 1, 0);
    EXPECT_EQ(s->exact_rules(), 5u);
    auto v = one(*s, tcp4("10.1.2.3", "10.9.9.9", 1, 80)); // 0 and 1 tie: 0 is earlier
    EXPECT_EQ(v.rule, 0u);
    EXPECT_EQ(v.counted, 6u);
    v = one(*s, tcp4("10.2.2.3", "10.9.9.9", 1, 81));
    EXPECT_EQ(v.rule, 2u);
    EXPECT_EQ(v.action, AclAction::Allow);
    EXPECT_EQ(v.counted, 6u);
    v = one(*s, tcp4("10.1.2.3", "10.9.9.9", 1, 82)); // priority 0 beats rule 0
    EXPECT_EQ(v.rule, 3u);
    EXPECT_EQ(v.counted, 6u);
    v = one(*s, tcp4("10.2.2.3", "10.9.9.8", 1, 80));
    EXPECT_EQ(v.rule, kAclDefault);
    EXPECT_EQ(v.counted, 6u);
    EXPECT_EQ(s->hits(6), 4u);
    EXPECT_EQ(s->hits(kAclDefault), 1u);

    // The other way round: the exact rule first wins the tie.
    std::swap(pol.rules[0], pol.rules[1]);
    s = AclSet::build(pol, 1, 0);
    EXPECT_EQ(s->exact_rules(), 5u);
    EXPECT_EQ(one(*s, tcp4("10.1.2.3", "10.9.9.9", 1, 80)).rule, 0u);
}

// More rules under one key than the exact part scans: the whole policy stays in rte_acl,
// with the same decisions.
TEST(Acl, OversizedKeyStaysInTrie) {
    AclPolicy pol;
    for (unsigned i = 0; i <= AclExact<4>::kMaxGroup; i++) {
        pol.rules.push_back(rule("10.1.0.0/16", "10.9.9.9/32", AclAction::Allow));
        pol.rules.back().src.addr.bytes[2] = uint8_t(i);
        pol.rules.back().src.len = 24;
        pol.rules.back().proto = IPPROTO_UDP;
        pol.rules.back().dport_lo = pol.rules.back().dport_hi = 53;
    }
    pol.default_action = AclAction::Deny;
    auto s = AclSet::build(pol, 1, 0);
    EXPECT_EQ(s->exact_rules(), 0u);
    Pkt p{A("10.1.64.1"), A("10.9.9.9"), IPPROTO_UDP, 5, 53};
    EXPECT_EQ(one(*s, p).rule, 64u);
    pol.rules.pop_back();
    s = AclSet::build(pol, 1, 0);
    EXPECT_EQ(s->exact_rules(), AclExact<4>::kMaxGroup);
    EXPECT_EQ(one(*s, p).rule, kAclDefault);
    p.src = A("10.1.63.1");
    EXPECT_EQ(one(*s, p).rule, 63u);
}

TEST(Acl, EmptyPolicyAndNonFirstFragments) {
    AclPolicy pol;
    pol.default_action = AclAction::Deny;
    auto s = AclSet::build(pol, 1, 0);
    EXPECT_EQ(one(*s, tcp4("1.1.1.1", "2.2.2.2", 1, 2)).action, AclAction::Deny);
    EXPECT_EQ(one(*s, Pkt{A("fd00::1"), A("fd00::2"), IPPROTO_UDP, 1, 2}).action, AclAction::Deny);

    pol.rules.push_back(rule("0.0.0.0/0", "0.0.0.0/0"));
    pol.rules.back().proto = IPPROTO_TCP, pol.rules.back().dport_lo = 22;
    pol.rules.back().dport_hi = 22;
    pol.default_action = AclAction::Allow;
    s = AclSet::build(pol, 1, 0);
    auto frag = bytes(tcp4("1.1.1.1", "2.2.2.2", 1, 22));
    const uint8_t *l3 = frag.data();
    uint16_t len = uint16_t(frag.size());
    AclVerdict v;
    s->classify4(&l3, &len, 1, &v, 0);
    EXPECT_EQ(v.rule, 0u);
    frag[6] = 0x00, frag[7] = 0x10; // fragment offset 128: the bytes there are not ports
    s->classify4(&l3, &len, 1, &v, 0);
    EXPECT_EQ(v.rule, kAclDefault);
    len = 22; // truncated inside the TCP header
    frag[7] = 0;
    s->classify4(&l3, &len, 1, &v, 0);
    EXPECT_EQ(v.rule, kAclDefault);
}

// Groups at the exact part's in-line limit and one over it (in the pool), decisive and
// Count rules in one group, the fallback from a port's group to the protocol's and the
// address's, and a rule pinned to 0.0.0.0 (a truncated packet's all-zero key must not
// take a free bucket for its group).
TEST(Acl, ExactGroupsInLineAndInPool) {
    static_assert(AclExact<4>::kInline == 2, "the groups below are sized for two in line");
    AclPolicy pol;
    auto add = [&](const char *s, const char *d, AclAction a, int32_t prio,
                   std::optional<uint8_t> proto, uint16_t dport = 0) {
        pol.rules.push_back(rule(s, d, a));
        AclRule &r = pol.rules.back();
        r.priority = prio, r.proto = proto;
        if (dport) r.dport_lo = r.dport_hi = dport;
        return &r;
    };
    // 10.9.9.1 tcp/80: two decisive rules, the later one ranks first.
    add("10.1.0.0/16", "10.9.9.1/32", AclAction::Allow, 5, IPPROTO_TCP, 80); // 0
    add("10.1.2.0/24", "10.9.9.1/32", AclAction::Deny, 1, IPPROTO_TCP, 80);  // 1
    // 10.9.9.2 tcp/80: three rules, one over the limit.
    add("0.0.0.0/0", "10.9.9.2/32", AclAction::Count, 0, IPPROTO_TCP, 80);                   // 2
    add("10.1.2.0/24", "10.9.9.2/32", AclAction::Deny, 2, IPPROTO_TCP, 80)->sport_lo = 1000; // 3
    pol.rules.back().sport_hi = 1999;
    add("10.1.0.0/16", "10.9.9.2/32", AclAction::Allow, 3, IPPROTO_TCP, 80); // 4
    // 10.9.9.3: a UDP port, a UDP range, ICMP echo and a protocol-less Count rule.
    add("0.0.0.0/0", "10.9.9.3/32", AclAction::Deny, 4, IPPROTO_UDP, 53);               // 5
    add("0.0.0.0/0", "10.9.9.3/32", AclAction::Allow, 4, IPPROTO_UDP)->dport_lo = 8000; // 6
    pol.rules.back().dport_hi = 8999;
    add("0.0.0.0/0", "10.9.9.3/32", AclAction::Allow, 4, IPPROTO_ICMP)->icmp_type = 8; // 7
    add("10.0.0.0/8", "10.9.9.3/32", AclAction::Count, 9, std::nullopt);               // 8
    // 10.9.9.4 tcp/443: two Count rules only.
    add("10.1.0.0/16", "10.9.9.4/32", AclAction::Count, 7, IPPROTO_TCP, 443); // 9
    add("0.0.0.0/0", "10.9.9.4/32", AclAction::Count, 6, IPPROTO_TCP, 443);   // 10
    add("0.0.0.0/0", "0.0.0.0/32", AclAction::Allow, 0, std::nullopt);        // 11
    pol.default_action = AclAction::Deny;
    auto s = AclSet::build(pol, 1, 0);
    ASSERT_EQ(s->exact_rules(), pol.rules.size());
    auto check = [&](Pkt p, uint32_t rule, uint32_t counted) {
        AclVerdict v = one(*s, p);
        EXPECT_EQ(v.rule, rule) << p.src.str() << " -> " << p.dst.str() << " " << p.dport;
        EXPECT_EQ(v.counted, counted) << p.src.str() << " -> " << p.dst.str() << " " << p.dport;
        AclAction want = rule == kAclDefault ? AclAction::Deny : pol.rules[rule].action;
        EXPECT_EQ(v.action, want);
    };
    check(tcp4("10.1.2.3", "10.9.9.1", 5, 80), 1, kAclDefault);
    check(tcp4("10.1.3.3", "10.9.9.1", 5, 80), 0, kAclDefault);
    check(tcp4("10.2.0.1", "10.9.9.1", 5, 80), kAclDefault, kAclDefault);
    check(tcp4("10.1.3.3", "10.9.9.1", 5, 81), kAclDefault, kAclDefault);
    check(tcp4("10.1.2.3", "10.9.9.2", 1500, 80), 3, 2);
    check(tcp4("10.1.2.3", "10.9.9.2", 999, 80), 4, 2);
    check(tcp4("10.2.2.3", "10.9.9.2", 1500, 80), kAclDefault, 2);
    check(Pkt{A("10.5.0.1"), A("10.9.9.3"), IPPROTO_UDP, 1, 53}, 5, 8);
    check(Pkt{A("10.5.0.1"), A("10.9.9.3"), IPPROTO_UDP, 1, 8999}, 6, 8);
    check(Pkt{A("11.5.0.1"), A("10.9.9.3"), IPPROTO_UDP, 1, 8000}, 6, kAclDefault);
    check(Pkt{A("10.5.0.1"), A("10.9.9.3"), IPPROTO_UDP, 1, 7999}, kAclDefault, 8);
    check(Pkt{A("10.5.0.1"), A("10.9.9.3"), IPPROTO_ICMP, 0, 0, 8, 3}, 7, 8);
    check(Pkt{A("10.5.0.1"), A("10.9.9.3"), IPPROTO_ICMP, 0, 0, 0, 0}, kAclDefault, 8);
    check(Pkt{A("10.5.0.1"), A("10.9.9.3"), 47}, kAclDefault, 8);
    check(tcp4("10.1.0.1", "10.9.9.4", 5, 443), kAclDefault, 10);
    check(tcp4("11.1.0.1", "10.9.9.4", 5, 443), kAclDefault, 10);
    check(tcp4("10.1.0.1", "10.9.9.4", 5, 444), kAclDefault, kAclDefault);
    check(tcp4("10.1.0.1", "0.0.0.0", 5, 444), 11, kAclDefault);
    // Too short to classify: an all-zero key (protocol 0, port 0, destination 0.0.0.0).
    std::vector<uint8_t> runt(12, 0);
    const uint8_t *l3 = runt.data();
    uint16_t len = uint16_t(runt.size());
    AclVerdict v;
    s->classify4(&l3, &len, 1, &v, 0);
    EXPECT_EQ(v.rule, 11u);
    EXPECT_EQ(s->hits(11), 2u);
    EXPECT_EQ(s->hits(8), 6u);
    EXPECT_EQ(s->hits(2), 3u);
    EXPECT_EQ(s->hits(kAclDefault), 9u);
}

TEST(Acl, InvalidRulesAreRejectedByName) {
    auto fails = [](AclRule r, const char *what) {
        AclPolicy pol;
        pol.rules = {rule("0.0.0.0/0", "0.0.0.0/0"), r};
        try {
            AclSet::build(pol, 1, 0);
            ADD_FAILURE() << "accepted: " << what;
        } catch (const std::invalid_argument &e) {
            EXPECT_NE(std::string(e.what()).find(std::string("acl rule 1: ") + what),
                      std::string::npos)
                << e.what();
        }
    };
    fails(rule("10.0.0.0/8", "fd00::/8"), "dst: not of the family of src");
    AclRule r = rule("0.0.0.0/0", "0.0.0.0/0");
    r.dport_lo = 80;
    fails(r, "dport: port ranges need proto tcp, udp or sctp");
    r.proto = IPPROTO_TCP, r.dport_hi = 79;
    fails(r, "dport: range is empty");
    r = rule("0.0.0.0/0", "0.0.0.0/0");
    r.proto = IPPROTO_ICMPV6, r.icmp_type = 128;
    fails(r, "icmp_type: needs proto icmp");
    AclPolicy pol;
    pol.default_action = AclAction::Count;
    EXPECT_THROW(AclSet::build(pol, 1, 0), std::invalid_argument);
}

namespace {

// Routed by the rig (not martian, not ours, not on a connected subnet).
bool routable(const IpAddr &d) {
    if (d.is_v4()) {
        uint32_t h = d.v4_host();
        return h != 0 && (h >> 29) != 7 && (h >> 17) != (0x0ac80000u >> 17); // 10.200/15
    }
    return d.bytes[0] != 0xff && !(d.bytes[0] == 0xfe && (d.bytes[1] & 0xc0) == 0x80) &&
           !(d.bytes[0] == 0xfd && d.bytes[1] == 0x99);
}

// Random packets through parse, acl_in (policy of port 0), route, forward, acl_out (policy
// of VRF 0, so only what acl_in let through) and dispatch; what comes out of port 1, in
// order, and the hit counters of both policies must be the reference's.
void stage_check(bool v6, uint64_t seed, unsigned n_rules, Mix mix = {}) {
    using namespace vleaf::test;
    Rig rig(16384);
    auto &f = *rig.prog;
    f.add_interface(0, "in", rig.port[0], 0, {P("10.200.0.1/24"), P("fd99:0::1/64")});
    f.add_interface(1, "out", rig.port[1], 0, {P("10.201.0.1/24"), P("fd99:1::1/64")});
    f.neighbor(1, A("10.201.0.2"), mac(0x22));
    f.neighbor(1, A("fd99:1::2"), mac(0x22));
    f.add_static(0, P("0.0.0.0/0"), {A("10.201.0.2")}, std::nullopt, false);
    f.add_static(0, P("::/0"), {A("fd99:1::2")}, std::nullopt, false);
    ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();

    Gen g(seed, v6);
    AclPolicy pol[2];
    for (auto &p : pol)
        for (unsigned i = 0; i < n_rules; i++)
            p.rules.push_back(g.chance(mix.pinned) ? g.pinned(mix.src) : g.rule());
    pol[0].default_action = v6 ? AclAction::Deny : AclAction::Allow;
    // Mostly allowing egress, so that enough packets get through both.
    for (auto &r : pol[1].rules)
        if (r.action == AclAction::Deny && g.chance(70)) r.action = AclAction::Allow;
    pol[1].default_action = AclAction::Allow;
    rig.acl->set(1, AclAttach{AclDirection::In, true, rig.port[0]}, pol[0]);
    rig.acl->set(2, AclAttach{AclDirection::Out, false, 0}, pol[1]);
    if (mix.pinned) { // the exact-match part is in use in both directions
        EXPECT_GT(rig.acl->state()->port[0][rig.port[0]]->exact_rules(), 0u);
        EXPECT_GT(rig.acl->state()->vrf[1][0]->exact_rules(), 0u);
    }
    std::vector<uint32_t> order[2] = {priority_order(pol[0]), priority_order(pol[1])};

    std::vector<Pkt> pkts;
    std::vector<uint64_t> want_hits[2] = {std::vector<uint64_t>(n_rules + 1),
                                          std::vector<uint64_t>(n_rules + 1)};
    std::vector<std::vector<uint8_t>> want_out;
    uint64_t denied = 0;
    while (pkts.size() < 20000) {
        Pkt p = g.packet(pol[g.below(2)].rules);
        if (!routable(p.dst) || (v6 && p.proto == IPPROTO_ICMPV6)) continue; // ND is punted
        if (!v6) p.extra = 0; // parse drops IPv4 options
        pkts.push_back(p);
        bool pass = true;
        for (int d = 0; d < 2 && pass; d++) {
            AclVerdict v = reference(pol[d], order[d], p);
            want_hits[d][v.rule == kAclDefault ? n_rules : v.rule]++;
            if (v.counted != kAclDefault) want_hits[d][v.counted]++;
            pass = v.action == AclAction::Allow;
        }
        auto l3 = bytes(p);
        if (pass)
            want_out.push_back(l3);
        else
            denied++;
    }
    size_t at = 0, mismatches = 0;
    for (size_t base = 0; base < pkts.size(); base += 32) {
        std::vector<std::vector<uint8_t>> frames;
        for (size_t i = base; i < std::min(pkts.size(), base + 32); i++) {
            auto l3 = bytes(pkts[i]);
            if (!v6) l3[3] = uint8_t(l3.size()); // total length
            Frame fr = ether(mac(0x10), mac(0x99), v6 ? 0x86dd : 0x0800);
            fr.insert(fr.end(), l3.begin(), l3.end());
            frames.push_back(fr);
        }
        rig.run(0, frames);
        for (rte_mbuf *m : rig.take_tx(1)) {
            auto b = bytes_of(m);
            rte_pktmbuf_free(m);
            // Compare addresses and the L4 header: forward changed TTL and checksum.
            size_t from = v6 ? 14 + 8 : 14 + 12;
            bool same =
                at < want_out.size() && b.size() == want_out[at].size() + 14 &&
                std::equal(b.begin() + long(from), b.end(), want_out[at].begin() + long(from - 14));
            mismatches += !same;
            at++;
        }
    }
    EXPECT_EQ(mismatches, 0u);
    EXPECT_EQ(at, want_out.size());
    EXPECT_EQ(rig.drops(Drop::acl_deny), denied);
    EXPECT_GT(denied, 500u); // both outcomes exercised
    EXPECT_GT(want_out.size(), 500u);
    for (int d = 0; d < 2; d++) {
        auto hits = rig.acl->hits(uint32_t(d + 1));
        EXPECT_EQ(hits, want_hits[d]) << (d ? "egress" : "ingress");
    }
    // Replacing a policy hands back its final counts; removing both leaves no state.
    EXPECT_EQ(rig.acl->set(1, AclAttach{AclDirection::In, true, rig.port[0]}, pol[0]),
              want_hits[0]);
    rig.acl->del(1);
    EXPECT_EQ(rig.acl->del(2), want_hits[1]);
    EXPECT_EQ(rig.acl->state(), nullptr);
}

} // namespace

TEST(AclStage, V4) {
    stage_check(false, 11, 300);
}
TEST(AclStage, V6) {
    stage_check(true, 12, 300);
}
// Most rules in the exact-match part, the others in rte_acl.
TEST(AclStage, ExactV4) {
    stage_check(false, 13, 300, {80});
}
TEST(AclStage, ExactV6) {
    stage_check(true, 14, 300, {80, true});
}

// One burst leaving by two ports with different egress policies (the port's own, and the
// VRF's for the other): acl_out classifies each packet with its own policy, interleaved.
TEST(AclStage, OneBurstSeveralPolicies) {
    using namespace vleaf::test;
    Rig rig;
    auto &f = *rig.prog;
    f.add_interface(0, "in", rig.port[0], 0, {P("10.200.0.1/24")});
    f.add_interface(1, "a", rig.port[1], 0, {P("10.201.0.1/24")});
    f.add_interface(2, "b", rig.port[2], 0, {P("10.202.0.1/24")});
    f.neighbor(1, A("10.201.0.2"), mac(0x21));
    f.neighbor(2, A("10.202.0.2"), mac(0x22));
    f.add_static(0, P("10.1.0.0/16"), {A("10.201.0.2")}, std::nullopt, false);
    f.add_static(0, P("10.2.0.0/16"), {A("10.202.0.2")}, std::nullopt, false);
    ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();
    auto deny_port = [](uint16_t port) {
        AclPolicy p;
        AclRule r = rule("0.0.0.0/0", "0.0.0.0/0");
        r.proto = IPPROTO_TCP, r.dport_lo = r.dport_hi = port;
        p.rules.push_back(r);
        return p;
    };
    rig.acl->set(1, AclAttach{AclDirection::Out, false, 0}, deny_port(80)); // VRF: port a
    rig.acl->set(2, AclAttach{AclDirection::Out, true, rig.port[2]}, deny_port(22));
    std::vector<std::vector<uint8_t>> frames;
    std::vector<uint16_t> want[2];
    static constexpr uint16_t dports[] = {22, 80, 443};
    for (unsigned i = 0; i < 32; i++) {
        V4 v;
        v.proto = IPPROTO_TCP, v.dst = i % 2 ? "10.2.0.9" : "10.1.0.9", v.dport = dports[i % 3];
        v.sport = uint16_t(1000 + i);
        frames.push_back(ipv4(mac(0x10), mac(0x99), v));
        if (v.dport != (i % 2 ? 22 : 80)) want[i % 2].push_back(v.sport);
    }
    rig.run(0, frames);
    for (unsigned out = 0; out < 2; out++) {
        std::vector<uint16_t> got;
        for (rte_mbuf *m : rig.take_tx(out + 1)) {
            auto b = bytes_of(m);
            rte_pktmbuf_free(m);
            got.push_back(uint16_t(b[14 + 20] << 8 | b[14 + 21]));
        }
        EXPECT_EQ(got, want[out]) << "port " << out + 1;
    }
    EXPECT_EQ(rig.drops(Drop::acl_deny), 32 - want[0].size() - want[1].size());
    EXPECT_EQ(rig.acl->hits(1), (std::vector<uint64_t>{5, 11}));
    EXPECT_EQ(rig.acl->hits(2), (std::vector<uint64_t>{5, 11}));
}

TEST(AclStage, NoPolicyNoState) {
    vleaf::test::Rig rig;
    EXPECT_EQ(rig.acl->state(), nullptr);
    AclPolicy deny_all;
    deny_all.default_action = AclAction::Deny;
    rig.acl->set(7, AclAttach{AclDirection::In, false, 3}, deny_all);
    ASSERT_NE(rig.acl->state(), nullptr);
    EXPECT_TRUE(rig.acl->state()->any[0]);
    EXPECT_FALSE(rig.acl->state()->any[1]);
    EXPECT_EQ(rig.acl->state()->vrf[0][3]->size(), 0u);
    EXPECT_THROW(rig.acl->set(8, AclAttach{AclDirection::In, true, RTE_MAX_ETHPORTS}, deny_all),
                 std::invalid_argument);
    rig.acl->del(7);
    EXPECT_EQ(rig.acl->state(), nullptr);
}

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new Eal);
    return RUN_ALL_TESTS();
}
