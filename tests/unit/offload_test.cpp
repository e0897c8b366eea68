// rte_flow offload decisions (control/offload): port ranges as value/mask blocks, which
// ACL deny rules may be dropped in hardware, VXLAN steering per VNI, and the per-port
// manager (validate first, create, fall back with the reason counted, follow changes,
// leave nothing behind) against a scripted port.
#include "control/acl/acl.hpp"
#include "control/offload/offload.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>

using namespace vleaf;
using namespace vleaf::offload;

namespace {

acl::Rule rule(std::map<std::string, std::string> f) {
    return acl::rule_from([&](const char *k) -> std::optional<std::string> {
        auto it = f.find(k);
        return it == f.end() ? std::nullopt : std::optional(it->second);
    });
}

acl::Policy policy(std::vector<acl::Rule> rules) {
    acl::Policy p;
    p.name = "in";
    p.interface = "h1";
    p.rules = std::move(rules);
    for (size_t k = 0; k < p.rules.size(); k++) p.rules[k].id = uint32_t(k + 1);
    return p;
}

Vtep vtep() {
    return {IpAddr::parse("10.9.9.9"), IpAddr::parse("fd00:9::9"), 4789};
}

// The unfit reasons (empty: offloadable) of the deny rules of `rules`, in order.
std::vector<std::string> unfit(std::vector<acl::Rule> rules) {
    std::vector<std::string> out;
    for (const Want &w : plan_acl(policy(std::move(rules)), vtep())) out.push_back(w.unfit);
    return out;
}

} // namespace

TEST(OffloadPlan, PortBlocksAreExactAndFew) {
    using B = std::vector<std::pair<uint16_t, uint16_t>>;
    EXPECT_EQ(port_blocks(80, 80), (B{{80, 0xffff}}));
    EXPECT_EQ(port_blocks(0, 65535), (B{{0, 0}}));
    EXPECT_EQ(port_blocks(1024, 65535), (B{{1024, 0xfc00},
                                           {2048, 0xf800},
                                           {4096, 0xf000},
                                           {8192, 0xe000},
                                           {16384, 0xc000},
                                           {32768, 0x8000}}));
    EXPECT_EQ(port_blocks(1, 65535).size(), 16u);
    EXPECT_EQ(port_blocks(8080, 8081), (B{{8080, 0xfffe}}));
    std::mt19937 rng(7);
    for (int t = 0; t < 200; t++) {
        uint16_t a = uint16_t(rng()), b = uint16_t(rng());
        if (t % 2) b = uint16_t(a + rng() % 300); // short ranges too
        uint16_t lo = std::min(a, b), hi = std::max(a, b);
        auto blocks = port_blocks(lo, hi);
        EXPECT_LE(blocks.size(), 30u);
        for (uint32_t p = 0; p < 65536; p += (t % 2 ? 1 : 7)) {
            int hits = 0;
            for (auto [v, m] : blocks) hits += (p & m) == v;
            ASSERT_EQ(hits, lo <= p && p <= hi ? 1 : 0) << lo << "-" << hi << " port " << p;
        }
    }
}

TEST(OffloadPlan, DenyRulesAndWhyNot) {
    auto deny = rule({{"dst", "10.0.2.0/24"},
                      {"proto", "tcp"},
                      {"dport", "22"},
                      {"action", "deny"},
                      {"priority", "10"}});
    // Alone: one flow, counted, dropping, with the rule's fields.
    auto wants = plan_acl(policy({deny}), vtep());
    ASSERT_EQ(wants.size(), 1u);
    EXPECT_EQ(wants[0].kind, Kind::AclDrop);
    EXPECT_EQ(wants[0].owner, "in");
    EXPECT_EQ(wants[0].id, 1u);
    ASSERT_EQ(wants[0].flows.size(), 1u);
    const FlowSpec &f = wants[0].flows[0];
    EXPECT_EQ(f.action, FlowAction::Drop);
    EXPECT_TRUE(f.count);
    EXPECT_EQ(f.priority, kAclPriority);
    EXPECT_EQ(f.match.dst.str(), "10.0.2.0/24");
    EXPECT_EQ(f.match.src.str(), "0.0.0.0/0");
    EXPECT_EQ(f.match.proto, IPPROTO_TCP);
    EXPECT_EQ(f.match.dport, 22);
    EXPECT_EQ(f.match.dport_mask, 0xffff);
    EXPECT_EQ(f.match.sport_mask, 0);

    auto allow_admin = rule(
        {{"src", "10.0.1.0/28"}, {"dst", "10.0.2.0/24"}, {"proto", "tcp"}, {"action", "allow"}});
    EXPECT_EQ(unfit({deny, allow_admin}),
              std::vector<std::string>{"allow rule 2 takes precedence over part of its match"});
    // The same allow rule losing on priority, or not overlapping, changes nothing.
    auto late = allow_admin;
    late.rule.priority = 20;
    auto udp = allow_admin;
    udp.rule.proto = IPPROTO_UDP;
    auto other_net = allow_admin;
    other_net.rule.dst = *Prefix::parse("10.0.3.0/24");
    EXPECT_EQ(unfit({deny, late, udp, other_net}), std::vector<std::string>{""});
    // Equal priority: the earlier rule wins.
    auto tie = allow_admin;
    tie.rule.priority = 10;
    EXPECT_EQ(unfit({deny, tie}), std::vector<std::string>{""});
    EXPECT_EQ(unfit({tie, deny})[0], "allow rule 1 takes precedence over part of its match");
    auto count =
        rule({{"family", "ipv4"}, {"proto", "tcp"}, {"dport", "1-1000"}, {"action", "count"}});
    EXPECT_EQ(unfit({deny, count})[0], "count rule 2 counts packets it matches");

    // Traffic the ACL stage never sees as such.
    auto vx = rule({{"dst", "10.9.0.0/16"}, {"proto", "udp"}, {"action", "deny"}});
    EXPECT_EQ(unfit({vx})[0], "could match VXLAN to our VTEP, which the ACL filters decapsulated");
    vx.rule.dport_lo = vx.rule.dport_hi = 53;
    EXPECT_EQ(unfit({vx})[0], "");
    auto nd = rule({{"dst", "fd00:2::/64"}, {"action", "deny"}});
    EXPECT_EQ(unfit({nd})[0],
              "could match IPv6 neighbor discovery, which goes to the host unfiltered");
    auto v6tcp = rule({{"dst", "fd00:2::/64"}, {"proto", "tcp"}, {"action", "deny"}});
    EXPECT_EQ(unfit({v6tcp})[0], "");
    v6tcp.rule.dst = *Prefix::parse("::/0");
    EXPECT_EQ(unfit({v6tcp})[0], "could match IPv6 link-local or multicast traffic, which goes "
                                 "to the host unfiltered");
    auto echo6 = rule(
        {{"dst", "fd00:2::/64"}, {"proto", "icmpv6"}, {"icmp_type", "128"}, {"action", "deny"}});
    EXPECT_EQ(unfit({echo6})[0], "");

    // Port ranges: blocks multiply; past the limit the rule stays in software.
    auto wide =
        rule({{"family", "ipv4"}, {"proto", "tcp"}, {"dport", "1024-65535"}, {"action", "deny"}});
    EXPECT_EQ(plan_acl(policy({wide}), vtep())[0].flows.size(), 6u);
    wide.rule.sport_lo = 1000; // 1000-65535: 8 blocks, times 6
    EXPECT_EQ(unfit({wide})[0],
              "sport 1000-65535 and dport 1024-65535 need 48 value/mask blocks (at most 8)");

    // Only deny rules of ingress policies.
    auto p = policy({deny, allow_admin});
    p.dir = AclDirection::Out;
    EXPECT_TRUE(plan_acl(p, vtep()).empty());
}

TEST(OffloadPlan, VxlanSteering) {
    auto wants = plan_vxlan(vtep(), {10, 20, 30}, {{20, 1}, {30, 4}}, 2);
    ASSERT_EQ(wants.size(), 3u);
    EXPECT_EQ(wants[0].kind, Kind::VxlanRss);
    ASSERT_EQ(wants[0].flows.size(), 2u); // outer IPv4 and IPv6
    const FlowSpec &f = wants[0].flows[0];
    EXPECT_EQ(f.action, FlowAction::Rss);
    EXPECT_EQ(f.queue, 2);
    EXPECT_EQ(f.priority, kVxlanPriority);
    EXPECT_EQ(f.match.dst.str(), "10.9.9.9/32");
    EXPECT_EQ(f.match.src.str(), "0.0.0.0/0");
    EXPECT_EQ(f.match.proto, IPPROTO_UDP);
    EXPECT_EQ(f.match.dport, 4789);
    EXPECT_EQ(f.match.dport_mask, 0xffff);
    EXPECT_EQ(f.match.vni, 10u);
    EXPECT_EQ(wants[0].flows[1].match.dst.str(), "fd00:9::9/128");
    EXPECT_EQ(wants[1].kind, Kind::VxlanQueue);
    EXPECT_EQ(wants[1].flows[0].action, FlowAction::Queue);
    EXPECT_EQ(wants[1].flows[0].queue, 1);
    EXPECT_EQ(wants[2].unfit, "queue 4: the port has 2 RX queue(s)");
    EXPECT_TRUE(wants[2].flows.empty());
    EXPECT_EQ(plan_vxlan(vtep(), {10}, {}, 1)[0].unfit, "one RX queue: nothing to spread");
    EXPECT_TRUE(plan_vxlan(Vtep{}, {10}, {}, 4).empty());
}

namespace {

// A port that accepts what `accept` says and records what is installed.
struct FakePort {
    std::function<FlowOutcome(const FlowSpec &)> accept = [](const FlowSpec &) {
        return FlowOutcome{};
    };
    bool create_fails = false;
    uint64_t next = 1;
    std::map<uint64_t, std::pair<uint16_t, FlowSpec>> live;
    int validations = 0, creations = 0;

    FlowPort cb() {
        FlowPort c;
        c.validate = [this](uint16_t, const FlowSpec &f) {
            validations++;
            return accept(f);
        };
        c.create = [this](uint16_t port, const FlowSpec &f, FlowOutcome &why) -> uint64_t {
            if (create_fails) {
                why = {-EEXIST, "handle", "kernel refused"};
                return 0;
            }
            creations++;
            live[next] = {port, f};
            return next++;
        };
        c.destroy = [this](uint16_t, uint64_t h) { ASSERT_EQ(live.erase(h), 1u); };
        c.hits = [](uint16_t, uint64_t h) { return std::optional<uint64_t>(h * 100); };
        return c;
    }
};

const nlohmann::json &port_json(const nlohmann::json &show, const std::string &name) {
    for (const auto &p : show)
        if (p["port"] == name) return p;
    throw std::runtime_error("no port " + name);
}

} // namespace

TEST(Offload, InstallsFollowsChangesAndLeavesNothing) {
    FakePort port;
    std::vector<Port> ports{{0, "p0", true, 0, false, false, 2},
                            {1, "p1", true, 0, false, false, 2}};
    Offload off(port.cb(), ports, vtep());
    auto deny22 =
        rule({{"dst", "10.0.2.0/24"}, {"proto", "tcp"}, {"dport", "22"}, {"action", "deny"}});
    auto deny25 =
        rule({{"dst", "10.0.2.0/24"}, {"proto", "tcp"}, {"dport", "25"}, {"action", "deny"}});
    // On port 0 only.
    off.set_acl(7, {AclDirection::In, true, 0}, policy({deny22, deny25}));
    EXPECT_EQ(port.live.size(), 2u);
    EXPECT_EQ(off.counters(0).attempts, 2u);
    EXPECT_EQ(off.counters(0).offloaded, 2u);
    EXPECT_EQ(off.counters(1).attempts, 0u);
    for (auto &[h, pf] : port.live) {
        EXPECT_EQ(pf.first, 0);
        EXPECT_TRUE(pf.second.count);
    }
    auto show = off.show();
    const auto &p0 = port_json(show, "p0");
    ASSERT_EQ(p0["rules"].size(), 2u);
    EXPECT_EQ(p0["rules"][0]["kind"], "acl-drop");
    EXPECT_EQ(p0["rules"][0]["owner"], "in");
    EXPECT_EQ(p0["rules"][0]["state"], "offloaded");
    EXPECT_EQ(p0["rules"][0]["counted"], true);
    EXPECT_EQ(p0["rules"][0]["hw_hits"], 100); // handle 1 in the fake
    EXPECT_TRUE(port_json(show, "p1")["rules"].empty());

    // Rule 2 deleted: its flow goes, rule 1's stays (not created again).
    int created = port.creations;
    auto pol = policy({deny22, deny25});
    pol.rules.pop_back();
    off.set_acl(7, {AclDirection::In, true, 0}, pol);
    EXPECT_EQ(port.live.size(), 1u);
    EXPECT_EQ(port.creations, created);
    EXPECT_EQ(off.counters(0).removed, 1u);
    // An allow rule taking precedence takes rule 1 back to software.
    pol.rules.push_back(
        rule({{"src", "10.0.1.0/24"}, {"proto", "tcp"}, {"action", "allow"}, {"priority", "0"}}));
    pol.rules.back().id = 9;
    pol.rules[0].rule.priority = 5;
    off.set_acl(7, {AclDirection::In, true, 0}, pol);
    EXPECT_TRUE(port.live.empty());
    EXPECT_EQ(off.counters(0).fallbacks[size_t(Fallback::rule)], 1u);
    show = off.show();
    EXPECT_EQ(port_json(show, "p0")["rules"][0]["state"], "software");
    EXPECT_EQ(port_json(show, "p0")["rules"][0]["reason"],
              "allow rule 9 takes precedence over part of its match");

    // A VRF policy covers both ports; port 0 keeps its own.
    off.set_acl(8, {AclDirection::In, false, 0}, policy({deny25}));
    EXPECT_EQ(port.live.size(), 1u);
    EXPECT_EQ(port.live.begin()->second.first, 1);
    off.del_acl(7);
    EXPECT_EQ(port.live.size(), 2u);
    // Egress policies are never offloaded.
    off.set_acl(8, {AclDirection::Out, false, 0}, policy({deny25}));
    EXPECT_TRUE(port.live.empty());

    off.set_vxlan({10, 20}, {{20, 1}});
    EXPECT_EQ(port.live.size(), 8u); // 2 ports x 2 VNIs x 2 outer families
    off.set_acl(3, {AclDirection::In, true, 1}, policy({deny22}));
    EXPECT_EQ(port.live.size(), 9u);
    off.clear();
    EXPECT_TRUE(port.live.empty());
}

TEST(Offload, FallbacksByReason) {
    FakePort port;
    std::vector<Port> ports{{0, "on", true, 0, false, false, 1},
                            {1, "off", false, 0, false, false, 1},
                            {2, "bridging", true, 0, true, false, 1}};
    Offload off(port.cb(), ports, vtep());
    // No COUNT on this port; ICMP items refused; the rest accepted.
    port.accept = [](const FlowSpec &f) {
        if (f.count) return FlowOutcome{-ENOTSUP, "action", "action not supported"};
        if (f.match.icmp_type) return FlowOutcome{-ENOTSUP, "item", "item not supported"};
        return FlowOutcome{};
    };
    auto tcp = rule({{"family", "ipv4"}, {"proto", "tcp"}, {"dport", "22"}, {"action", "deny"}});
    auto icmp =
        rule({{"family", "ipv4"}, {"proto", "icmp"}, {"icmp_type", "8"}, {"action", "deny"}});
    off.set_acl(1, {AclDirection::In, false, 0}, policy({tcp, icmp}));
    ASSERT_EQ(port.live.size(), 1u);
    EXPECT_FALSE(port.live.begin()->second.second.count);
    const Counters &on = off.counters(0);
    EXPECT_EQ(on.attempts, 2u);
    EXPECT_EQ(on.offloaded, 1u);
    EXPECT_EQ(on.fallbacks[size_t(Fallback::pattern)], 1u);
    EXPECT_EQ(off.counters(1).fallbacks[size_t(Fallback::disabled)], 2u);
    EXPECT_EQ(off.counters(1).attempts, 0u);
    EXPECT_EQ(off.counters(2).fallbacks[size_t(Fallback::rule)], 2u);
    auto show = off.show();
    const auto &r = port_json(show, "on")["rules"];
    EXPECT_EQ(r[0]["counted"], false);
    EXPECT_FALSE(r[0].contains("hw_hits"));
    EXPECT_EQ(r[1]["reason"],
              "validate: " + std::string(strerror(ENOTSUP)) + ", item: item not supported");
    EXPECT_EQ(port_json(show, "on")["fallbacks"]["pattern"], 1);
    EXPECT_EQ(port_json(show, "off")["offload"], "off");
    EXPECT_EQ(port_json(show, "off")["rules"][0]["reason"], "offload is off on this port");
    EXPECT_EQ(port_json(show, "bridging")["rules"][0]["reason"],
              "the port also bridges frames, which the ACL does not filter");

    // A port without rte_flow, and one whose creation fails after validation.
    off.del_acl(1);
    port.accept = [](const FlowSpec &) {
        return FlowOutcome{-ENOSYS, "unspecified", "Function not implemented"};
    };
    off.set_acl(2, {AclDirection::In, true, 0}, policy({tcp}));
    EXPECT_EQ(off.counters(0).fallbacks[size_t(Fallback::no_flow_api)], 1u);
    port.accept = [](const FlowSpec &) { return FlowOutcome{}; };
    port.create_fails = true;
    off.set_acl(2, {AclDirection::In, true, 0}, policy({tcp, tcp}));
    EXPECT_EQ(off.counters(0).fallbacks[size_t(Fallback::create)], 1u); // rule 2 only
    EXPECT_TRUE(port.live.empty());
}
