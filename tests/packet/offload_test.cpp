// rte_flow rules as vleaf builds them: for ACL deny rules and VXLAN steering planned by
// control/offload, the exact pattern items (types, spec and mask bytes) and actions of
// dataplane/offload's FlowRule; then what a real net_tap port answers to
// rte_flow_validate, and the offload manager falling back on it. The process moves into a
// network namespace of its own first, so the tap it creates vanishes with it.
#include "control/acl/acl.hpp"
#include "control/offload/offload.hpp"
#include "dataplane/offload.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <rte_ethdev.h>

#include <sched.h>

#include <cstring>

using namespace vleaf;
using namespace vleaf::offload;
using dp::FlowRule;

namespace {

Vtep vtep() {
    return {IpAddr::parse("10.9.9.9"), IpAddr::parse("fd00:9::9"), 4789};
}

// An ingress policy of deny rules with these fields, ids from 1.
acl::Policy denying(std::vector<std::map<std::string, std::string>> rules) {
    acl::Policy p;
    p.name = "in";
    p.interface = "h1";
    for (auto &f : rules) {
        f["action"] = "deny";
        p.rules.push_back(acl::rule_from([&](const char *k) -> std::optional<std::string> {
            auto it = f.find(k);
            return it == f.end() ? std::nullopt : std::optional(it->second);
        }));
        p.rules.back().id = uint32_t(p.rules.size());
    }
    return p;
}

// The flows planned for one ACL deny rule (without VXLAN, which would keep rules that
// could match it in software).
std::vector<FlowSpec> acl_flows(const std::map<std::string, std::string> &f) {
    acl::Policy p = denying({f});
    auto wants = plan_acl(p, Vtep{});
    if (wants.size() != 1 || !wants[0].unfit.empty())
        throw std::runtime_error("not offloadable: " + (wants.empty() ? "" : wants[0].unfit));
    return wants[0].flows;
}

std::vector<rte_flow_item_type> types(const FlowRule &r) {
    std::vector<rte_flow_item_type> out;
    for (const rte_flow_item *i = r.pattern();; i++) {
        out.push_back(i->type);
        if (i->type == RTE_FLOW_ITEM_TYPE_END) return out;
    }
}

std::vector<rte_flow_action_type> action_types(const FlowRule &r) {
    std::vector<rte_flow_action_type> out;
    for (const rte_flow_action *a = r.actions();; a++) {
        out.push_back(a->type);
        if (a->type == RTE_FLOW_ACTION_TYPE_END) return out;
    }
}

// Item k's spec and mask equal `spec` and `mask` byte for byte.
template <typename T>
::testing::AssertionResult item_is(const FlowRule &r, size_t k, const T &spec, const T &mask) {
    const rte_flow_item &i = r.pattern()[k];
    if (!i.spec || !i.mask) return ::testing::AssertionFailure() << "item " << k << " unset";
    if (i.last) return ::testing::AssertionFailure() << "item " << k << " has a range";
    if (std::memcmp(i.spec, &spec, sizeof(T)) != 0)
        return ::testing::AssertionFailure() << "item " << k << " spec differs";
    if (std::memcmp(i.mask, &mask, sizeof(T)) != 0)
        return ::testing::AssertionFailure() << "item " << k << " mask differs";
    return ::testing::AssertionSuccess();
}

uint32_t be32(uint32_t v) {
    return rte_cpu_to_be_32(v);
}
uint16_t be16(uint16_t v) {
    return rte_cpu_to_be_16(v);
}

using T = std::vector<rte_flow_item_type>;
using A = std::vector<rte_flow_action_type>;
constexpr auto ETH = RTE_FLOW_ITEM_TYPE_ETH, IPV4 = RTE_FLOW_ITEM_TYPE_IPV4,
               IPV6 = RTE_FLOW_ITEM_TYPE_IPV6, END = RTE_FLOW_ITEM_TYPE_END;
const A kDropCount{RTE_FLOW_ACTION_TYPE_DROP, RTE_FLOW_ACTION_TYPE_COUNT, RTE_FLOW_ACTION_TYPE_END};

} // namespace

TEST(FlowRules, Ipv4TcpPortWithPrefixes) {
    auto flows = acl_flows(
        {{"src", "10.0.1.0/24"}, {"dst", "10.0.2.128/25"}, {"proto", "tcp"}, {"dport", "22"}});
    ASSERT_EQ(flows.size(), 1u);
    FlowRule r(flows[0]);
    EXPECT_EQ(r.attr().ingress, 1u);
    EXPECT_EQ(r.attr().egress, 0u);
    EXPECT_EQ(r.attr().priority, kAclPriority);
    EXPECT_EQ(types(r), (T{ETH, IPV4, RTE_FLOW_ITEM_TYPE_TCP, END}));
    EXPECT_EQ(r.pattern()[0].spec, nullptr); // any Ethernet header
    EXPECT_EQ(r.pattern()[0].mask, nullptr);
    rte_flow_item_ipv4 s{}, m{};
    s.hdr.src_addr = be32(0x0a000100);
    m.hdr.src_addr = be32(0xffffff00);
    s.hdr.dst_addr = be32(0x0a000280);
    m.hdr.dst_addr = be32(0xffffff80);
    s.hdr.next_proto_id = IPPROTO_TCP;
    m.hdr.next_proto_id = 0xff;
    EXPECT_TRUE(item_is(r, 1, s, m));
    rte_flow_item_tcp ts{}, tm{};
    ts.hdr.dst_port = be16(22);
    tm.hdr.dst_port = 0xffff;
    EXPECT_TRUE(item_is(r, 2, ts, tm));
    EXPECT_EQ(action_types(r), kDropCount);
}

TEST(FlowRules, Ipv6UdpPortRangeAsBlocks) {
    auto flows = acl_flows(
        {{"dst", "fd00:2::/64"}, {"proto", "udp"}, {"dport", "8080-8083"}, {"sport", "53"}});
    ASSERT_EQ(flows.size(), 1u); // 8080-8083 is one aligned block
    FlowRule r(flows[0]);
    EXPECT_EQ(types(r), (T{ETH, IPV6, RTE_FLOW_ITEM_TYPE_UDP, END}));
    rte_flow_item_ipv6 s{}, m{};
    const uint8_t net[16] = {0xfd, 0, 0, 2};
    std::memcpy(s.hdr.dst_addr, net, 16);
    std::memset(m.hdr.dst_addr, 0xff, 8);
    s.hdr.proto = IPPROTO_UDP;
    m.hdr.proto = 0xff;
    EXPECT_TRUE(item_is(r, 1, s, m));
    rte_flow_item_udp us{}, um{};
    us.hdr.src_port = be16(53);
    um.hdr.src_port = 0xffff;
    us.hdr.dst_port = be16(8080);
    um.hdr.dst_port = be16(0xfffc);
    EXPECT_TRUE(item_is(r, 2, us, um));

    // 8080-8090: 8080-8087, 8088-8089, 8090.
    flows = acl_flows({{"dst", "fd00:2::/64"}, {"proto", "udp"}, {"dport", "8080-8090"}});
    ASSERT_EQ(flows.size(), 3u);
    const std::pair<uint16_t, uint16_t> want[] = {{8080, 0xfff8}, {8088, 0xfffe}, {8090, 0xffff}};
    for (size_t k = 0; k < 3; k++) {
        FlowRule b(flows[k]);
        rte_flow_item_udp bs{}, bm{};
        bs.hdr.dst_port = be16(want[k].first);
        bm.hdr.dst_port = be16(want[k].second);
        EXPECT_TRUE(item_is(b, 2, bs, bm)) << "block " << k;
    }
}

TEST(FlowRules, ProtocolOnlyAnyAndSctp) {
    FlowRule gre(acl_flows({{"dst", "192.168.0.0/16"}, {"proto", "47"}})[0]);
    EXPECT_EQ(types(gre), (T{ETH, IPV4, END}));
    rte_flow_item_ipv4 s{}, m{};
    s.hdr.dst_addr = be32(0xc0a80000);
    m.hdr.dst_addr = be32(0xffff0000);
    s.hdr.next_proto_id = 47;
    m.hdr.next_proto_id = 0xff;
    EXPECT_TRUE(item_is(gre, 1, s, m));

    FlowRule any(acl_flows({{"family", "ipv4"}})[0]);
    EXPECT_EQ(types(any), (T{ETH, IPV4, END}));
    rte_flow_item_ipv4 zero{};
    EXPECT_TRUE(item_is(any, 1, zero, zero)); // every IPv4 packet

    FlowRule sctp(acl_flows({{"family", "ipv4"}, {"proto", "sctp"}, {"sport", "5000"}})[0]);
    EXPECT_EQ(types(sctp), (T{ETH, IPV4, RTE_FLOW_ITEM_TYPE_SCTP, END}));
    rte_flow_item_sctp ss{}, sm{};
    ss.hdr.src_port = be16(5000);
    sm.hdr.src_port = 0xffff;
    EXPECT_TRUE(item_is(sctp, 2, ss, sm));
}

TEST(FlowRules, IcmpTypes) {
    FlowRule v4(acl_flows({{"dst", "10.0.2.0/24"}, {"proto", "icmp"}, {"icmp_type", "8"}})[0]);
    EXPECT_EQ(types(v4), (T{ETH, IPV4, RTE_FLOW_ITEM_TYPE_ICMP, END}));
    rte_flow_item_icmp s{}, m{};
    s.hdr.icmp_type = 8;
    m.hdr.icmp_type = 0xff;
    EXPECT_TRUE(item_is(v4, 2, s, m));
    FlowRule v6(acl_flows({{"dst", "fd00:2::/64"}, {"proto", "icmpv6"}, {"icmp_type", "128"}})[0]);
    EXPECT_EQ(types(v6), (T{ETH, IPV6, RTE_FLOW_ITEM_TYPE_ICMP6, END}));
    rte_flow_item_icmp6 s6{}, m6{};
    s6.type = 128;
    m6.type = 0xff;
    EXPECT_TRUE(item_is(v6, 2, s6, m6));
    // Without a type: the protocol alone.
    FlowRule all(acl_flows({{"dst", "10.0.2.0/24"}, {"proto", "icmp"}})[0]);
    EXPECT_EQ(types(all), (T{ETH, IPV4, END}));
}

TEST(FlowRules, VxlanRssAndQueue) {
    auto wants = plan_vxlan(vtep(), {0x123456, 20}, {{20, 3}}, 4);
    ASSERT_EQ(wants.size(), 2u);
    FlowRule rss(wants[0].flows[0]);
    EXPECT_EQ(rss.attr().priority, kVxlanPriority);
    EXPECT_EQ(types(rss), (T{ETH, IPV4, RTE_FLOW_ITEM_TYPE_UDP, RTE_FLOW_ITEM_TYPE_VXLAN, END}));
    rte_flow_item_ipv4 s{}, m{};
    s.hdr.dst_addr = be32(0x0a090909);
    m.hdr.dst_addr = 0xffffffff;
    s.hdr.next_proto_id = IPPROTO_UDP;
    m.hdr.next_proto_id = 0xff;
    EXPECT_TRUE(item_is(rss, 1, s, m));
    rte_flow_item_udp us{}, um{};
    us.hdr.dst_port = be16(4789);
    um.hdr.dst_port = 0xffff;
    EXPECT_TRUE(item_is(rss, 2, us, um));
    rte_flow_item_vxlan vs{}, vm{};
    vs.vni[0] = 0x12, vs.vni[1] = 0x34, vs.vni[2] = 0x56;
    vm.vni[0] = vm.vni[1] = vm.vni[2] = 0xff;
    EXPECT_TRUE(item_is(rss, 3, vs, vm));
    EXPECT_EQ(action_types(rss), (A{RTE_FLOW_ACTION_TYPE_RSS, RTE_FLOW_ACTION_TYPE_END}));
    auto *conf = static_cast<const rte_flow_action_rss *>(rss.actions()[0].conf);
    EXPECT_EQ(conf->level, 2u); // the inner frame
    EXPECT_EQ(conf->func, RTE_ETH_HASH_FUNCTION_DEFAULT);
    EXPECT_EQ(conf->types, RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
    EXPECT_EQ(conf->key_len, 0u);
    ASSERT_EQ(conf->queue_num, 4u);
    for (uint16_t q = 0; q < 4; q++) EXPECT_EQ(conf->queue[q], q);

    FlowRule v6(wants[0].flows[1]);
    EXPECT_EQ(types(v6), (T{ETH, IPV6, RTE_FLOW_ITEM_TYPE_UDP, RTE_FLOW_ITEM_TYPE_VXLAN, END}));
    rte_flow_item_ipv6 s6{}, m6{};
    std::memcpy(s6.hdr.dst_addr, IpAddr::parse("fd00:9::9")->bytes.data(), 16);
    std::memset(m6.hdr.dst_addr, 0xff, 16);
    s6.hdr.proto = IPPROTO_UDP;
    m6.hdr.proto = 0xff;
    EXPECT_TRUE(item_is(v6, 1, s6, m6));

    FlowRule queue(wants[1].flows[0]);
    EXPECT_EQ(action_types(queue), (A{RTE_FLOW_ACTION_TYPE_QUEUE, RTE_FLOW_ACTION_TYPE_END}));
    EXPECT_EQ(static_cast<const rte_flow_action_queue *>(queue.actions()[0].conf)->index, 3);
}

namespace {

constexpr uint16_t kTapQueues = 2;
uint16_t tap_port = RTE_MAX_ETHPORTS;
rte_mempool *tap_pool = nullptr;

// A started net_tap port with two queue pairs (net_tap wants as many TX as RX queues).
class TapEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        // The tap device is created in this process's own network namespace.
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare: " << std::strerror(errno);
        test::init_eal("packet_offload", 256, false, "0", {"--vdev=net_tap0,iface=vloffload0"});
        ASSERT_EQ(rte_eth_dev_get_port_by_name("net_tap0", &tap_port), 0);
        tap_pool = rte_pktmbuf_pool_create("offload", 1023, 0, 0, 2176, 0);
        ASSERT_NE(tap_pool, nullptr);
        rte_eth_conf conf{};
        ASSERT_EQ(rte_eth_dev_configure(tap_port, kTapQueues, kTapQueues, &conf), 0);
        for (uint16_t q = 0; q < kTapQueues; q++) {
            ASSERT_EQ(rte_eth_rx_queue_setup(tap_port, q, 64, 0, nullptr, tap_pool), 0);
            ASSERT_EQ(rte_eth_tx_queue_setup(tap_port, q, 64, 0, nullptr), 0);
        }
        ASSERT_EQ(rte_eth_dev_start(tap_port), 0);
    }
    void TearDown() override {
        rte_eth_dev_stop(tap_port);
        rte_eth_dev_close(tap_port);
        rte_mempool_free(tap_pool);
        test::finish_eal();
    }
};

FlowOutcome validate(FlowSpec f, bool count) {
    f.count = count;
    return dp::flow_validate(tap_port, f);
}

} // namespace

// What net_tap (DPDK 22.11) accepts: ETH/IPV4|IPV6/TCP|UDP with masks, and DROP; not the
// COUNT action, not ICMP or VXLAN items, not RSS without its BPF program.
TEST(NetTap, ValidateAcceptsAndRejects) {
    auto tcp = acl_flows(
        {{"src", "10.0.1.0/24"}, {"dst", "10.0.2.0/24"}, {"proto", "tcp"}, {"dport", "22"}})[0];
    EXPECT_EQ(validate(tcp, false).rc, 0) << validate(tcp, false).message;
    FlowOutcome o = validate(tcp, true);
    EXPECT_EQ(o.rc, -ENOTSUP);
    EXPECT_EQ(o.type, "action");
    EXPECT_EQ(o.message, "action not supported");

    auto udp6 = acl_flows({{"dst", "fd00:2::/64"}, {"proto", "udp"}, {"dport", "8080-8083"}})[0];
    EXPECT_EQ(validate(udp6, false).rc, 0) << validate(udp6, false).message;
    EXPECT_EQ(validate(acl_flows({{"family", "ipv4"}})[0], false).rc, 0);

    o = validate(acl_flows({{"family", "ipv4"}, {"proto", "icmp"}, {"icmp_type", "8"}})[0], false);
    EXPECT_EQ(o.rc, -ENOTSUP);
    EXPECT_EQ(o.type, "item");
    EXPECT_EQ(o.message, "item not supported");

    auto wants = plan_vxlan(vtep(), {10, 20}, {{20, 1}}, kTapQueues);
    for (const Want &w : wants)
        for (const FlowSpec &f : w.flows) { // outer IPv4 and IPv6
            o = validate(f, false);
            EXPECT_EQ(o.rc, -ENOTSUP) << kind_name(w.kind);
            EXPECT_EQ(o.type, "item") << kind_name(w.kind);
        }
}

// The manager on the real port: the TCP rule validates once COUNT is dropped; creating it
// needs tc flower, which these machines' kernels lack (it then falls back as `create`),
// but a kernel with flower installs it and the test checks that outcome instead. ICMP and
// the VXLAN steering fall back as `pattern`.
TEST(NetTap, OffloadFallsBackWithReasons) {
    Offload off(dp::flow_port(), {{tap_port, "tap", true, 0, false, false, kTapQueues}}, vtep());
    off.set_acl(1, {AclDirection::In, true, tap_port},
                denying({{{"dst", "10.0.2.0/24"}, {"proto", "tcp"}, {"dport", "22"}},
                         {{"family", "ipv4"}, {"proto", "icmp"}, {"icmp_type", "8"}}}));
    off.set_vxlan({10}, {});
    const Counters &c = off.counters(tap_port);
    EXPECT_EQ(c.attempts, 3u);
    const bool flower = c.offloaded == 1;
    EXPECT_EQ(c.offloaded + c.fallbacks[size_t(Fallback::create)], 1u);
    EXPECT_EQ(c.fallbacks[size_t(Fallback::pattern)], 2u);
    auto show = off.show();
    const auto &rules = show[0]["rules"];
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0]["kind"], "acl-drop");
    if (flower) {
        EXPECT_EQ(rules[0]["state"], "offloaded") << rules[0];
    } else {
        EXPECT_EQ(rules[0]["state"], "software");
        EXPECT_EQ(rules[0]["reason"].get<std::string>().rfind("create: ", 0), 0u) << rules[0];
    }
    EXPECT_EQ(rules[1]["reason"],
              "validate: " + std::string(std::strerror(ENOTSUP)) + ", item: item not supported");
    EXPECT_EQ(rules[2]["kind"], "vxlan-rss");
    EXPECT_EQ(rules[2]["id"], 10);
    EXPECT_EQ(rules[2]["reason"], rules[1]["reason"]);
    off.clear();
    EXPECT_EQ(off.counters(tap_port).removed, flower ? 1u : 0u);
    EXPECT_TRUE(off.show()[0]["rules"].empty());
}

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new TapEnv);
    return RUN_ALL_TESTS();
}
