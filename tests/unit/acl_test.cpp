// The ACL policy registry (control/acl): rule ids, running hit totals across changes,
// requests refused with the field named and nothing changed.
#include "control/acl/acl.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace vleaf;
using namespace vleaf::acl;

namespace {

Rule rule(std::map<std::string, std::string> f) {
    return rule_from([&](const char *k) -> std::optional<std::string> {
        auto it = f.find(k);
        return it == f.end() ? std::nullopt : std::optional(it->second);
    });
}

// A dataplane stand-in: each policy's live counts are 10 * (rule index + 1), the
// default's 1; programming hands back those of the version it replaces.
struct Fake {
    std::map<uint32_t, Policy> live;
    bool refuse = false;
    std::vector<uint64_t> counts(uint32_t id) {
        std::vector<uint64_t> h;
        if (!live.count(id)) return h;
        for (size_t k = 0; k < live[id].rules.size(); k++) h.push_back(10 * (k + 1));
        h.push_back(1);
        return h;
    }
    Callbacks cb() {
        return {[this](uint32_t id, const Policy &p) {
                    if (refuse) throw std::runtime_error("rte_acl build failed");
                    auto old = counts(id);
                    live[id] = p;
                    return old;
                },
                [this](uint32_t id) { live.erase(id); },
                [this](uint32_t id) { return counts(id); }};
    }
};

Policy policy(const std::string &name, const std::string &vrf) {
    Policy p;
    p.name = name;
    p.vrf = vrf;
    return p;
}

} // namespace

TEST(AclRules, Fields) {
    Rule r = rule({{"src", "10.1.0.0/16"},
                   {"proto", "udp"},
                   {"dport", "53"},
                   {"sport", "1024-65535"},
                   {"priority", "5"},
                   {"action", "count"}});
    EXPECT_EQ(r.rule.src.str(), "10.1.0.0/16");
    EXPECT_EQ(r.rule.dst.str(), "0.0.0.0/0");
    EXPECT_EQ(r.rule.proto, 17);
    EXPECT_EQ(r.rule.dport_lo, 53);
    EXPECT_EQ(r.rule.dport_hi, 53);
    EXPECT_EQ(r.rule.sport_lo, 1024);
    EXPECT_EQ(r.rule.priority, 5);
    EXPECT_EQ(r.rule.action, AclAction::Count);
    r = rule({{"proto", "icmpv6"}, {"icmp_type", "128"}, {"action", "allow"}});
    EXPECT_EQ(r.rule.src.str(), "::/0");
    EXPECT_EQ(r.rule.icmp_type, 128);
    r = rule({{"dst", "fd00::1"}, {"proto", "47"}, {"action", "deny"}});
    EXPECT_EQ(r.rule.dst.str(), "fd00::1/128");
    EXPECT_EQ(r.rule.proto, 47);
    auto err = [](const std::map<std::string, std::string> &f) {
        try {
            rule(f);
        } catch (const AclError &e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(
        err({{"dst", "10.0.0.0/8"}, {"proto", "tcp"}, {"dport", "90-80"}, {"action", "deny"}}),
        "dport: '90-80' is an empty range");
    EXPECT_EQ(err({{"dst", "10.0.0.0/8"}, {"proto", "tcp"}, {"action", "drop"}}),
              "action: 'drop' is not allow, deny or count");
    EXPECT_EQ(err({{"dst", "10.0.0.0/8"}, {"proto", "300"}, {"action", "deny"}}),
              "proto: '300' is not an integer in 0..255");
    EXPECT_EQ(
        err({{"dst", "10.0.0.0/8"}, {"proto", "icmp"}, {"icmp_type", "x"}, {"action", "deny"}}),
        "icmp_type: 'x' is not an integer in 0..255");
    EXPECT_EQ(err({{"src", "::/0"}, {"family", "ipv4"}, {"action", "deny"}}),
              "src: not of family ipv4");
}

TEST(AclRegistry, IdsAndRunningTotals) {
    Fake dp;
    Registry reg(dp.cb());
    Policy p = policy("web", "default");
    p.rules = {rule({{"dst", "10.0.0.0/8"}, {"action", "deny"}}),
               rule({{"id", "7"}, {"dst", "10.1.0.0/16"}, {"action", "allow"}})};
    reg.add_policy(p);
    EXPECT_EQ(reg.find("web")->rules[0].id, 1u);
    EXPECT_EQ(reg.add_rule("web", rule({{"family", "ipv6"}, {"action", "count"}})), 8u);
    // Live: 10, 20, 30 and default 1; now the old version's 10, 20 and 1 were folded in.
    auto show = reg.show("web")[0];
    EXPECT_EQ(show["rules"][0]["hits"], 20);
    EXPECT_EQ(show["rules"][1]["hits"], 40);
    EXPECT_EQ(show["rules"][2]["hits"], 30);
    EXPECT_EQ(show["default_hits"], 2);
    reg.del_rule("web", 1); // rule 7 moves to index 0: its total follows its id
    show = reg.show("web")[0];
    ASSERT_EQ(show["rules"].size(), 2u);
    EXPECT_EQ(show["rules"][0]["id"], 7);
    EXPECT_EQ(show["rules"][0]["hits"], 20 + 20 + 10);
    reg.set_default("web", AclAction::Deny);
    EXPECT_EQ(reg.find("web")->default_action, AclAction::Deny);
    EXPECT_EQ(reg.show("web")[0]["default"], "deny");
    reg.del_policy("web");
    EXPECT_TRUE(dp.live.empty());
    EXPECT_EQ(reg.size(), 0u);
}

TEST(AclRegistry, RefusedRequestsChangeNothing) {
    Fake dp;
    Registry reg(dp.cb());
    reg.add_policy(policy("a", "default"));
    auto msg = [](auto &&fn) {
        try {
            fn();
        } catch (const AclError &e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(msg([&] { reg.add_policy(policy("a", "blue")); }),
              "name: ACL policy 'a' already exists");
    EXPECT_EQ(msg([&] { reg.add_policy(policy("b", "default")); }),
              "vrf: 'default' already has policy 'a' in direction in");
    EXPECT_EQ(msg([&] { reg.del_rule("a", 3); }), "id: policy 'a' has no rule 3");
    EXPECT_EQ(msg([&] {
                  reg.add_rule("zz", rule({{"family", "ipv4"}, {"action", "deny"}}));
              }),
              "policy: no ACL policy named 'zz'");
    reg.add_rule("a", rule({{"id", "4"}, {"family", "ipv4"}, {"action", "deny"}}));
    EXPECT_EQ(msg([&] {
                  reg.add_rule("a", rule({{"id", "4"}, {"family", "ipv4"}, {"action", "deny"}}));
              }),
              "id: 4 is already a rule of 'a'");
    dp.refuse = true;
    EXPECT_EQ(msg([&] {
                  reg.add_rule("a", rule({{"family", "ipv4"}, {"action", "deny"}}));
              }),
              "policy: rte_acl build failed");
    EXPECT_EQ(reg.find("a")->rules.size(), 1u);
    EXPECT_EQ(dp.live[1].rules.size(), 1u);
}
