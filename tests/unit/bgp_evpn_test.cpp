// EVPN tables: what vleaf originates from its VNI/VRF configuration (types 3, 5 and 2),
// import by route target into MAC-VRFs and IP-VRF Loc-RIBs, RFC 7432 MAC mobility
// (sequence numbers, sticky MACs, duplicate detection) and reconfiguration.
#include "control/bgp/evpn_tables.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

IpAddr ip(const char *s) {
    return *IpAddr::parse(s);
}
MacAddr mac(const char *s) {
    return *MacAddr::parse(s);
}

const char *kConfig = R"(
asn: 65001
router_id: 10.0.0.1
evpn:
  duplicate_mac: {max_moves: 3, window: 60}
  vrfs:
    - {name: blue, l3vni: 100, router_mac: "02:00:00:00:00:01", prefixes: [10.1.0.0/24]}
  vnis:
    - {vni: 10, vrf: blue}
    - {vni: 20, rd: "10.0.0.1:99", route_targets: ["65000:20"]}
)";

BgpConfig config(const std::string &extra_yaml = "") {
    return parse_config(YAML::Load(std::string(kConfig) + extra_yaml));
}

std::vector<std::string> rts(const PathAttrs &a) {
    std::vector<std::string> v;
    for (auto &c : a.ext_communities)
        if (auto rt = c.as_route_target()) v.push_back(rt->str());
    return v;
}

bool has(const PathAttrs &a, ExtCommunity c) {
    return std::find(a.ext_communities.begin(), a.ext_communities.end(), c) !=
           a.ext_communities.end();
}

struct BgpEvpn : ::testing::Test {
    Rib rib{RibOptions{65001, 0x0a000001, 0, 4, false, false}};
    EvpnTables evpn{rib};
    struct Seen {
        std::string vrf, prefix;
        size_t before = 0, now = 0;
        std::vector<uint32_t> vnis;
    };
    std::vector<Seen> vrf_changes; // of the IP-VRF Loc-RIBs
    std::vector<std::string> l2;   // EvpnL2Change as "kind vni mac/vtep [ips]"
    PeerId remote = 0;

    void SetUp() override {
        rib.on_change([this](const RibChange &c) { evpn.on_rib_change(c); });
        rib.on_change([this](const RibChange &c) {
            if (!c.vrf) return;
            EXPECT_EQ(c.now_vni.size(), c.now.size());
            vrf_changes.push_back({std::string(c.vrf_name),
                                   c.prefix->str(),
                                   c.before.size(),
                                   c.now.size(),
                                   {c.now_vni.begin(), c.now_vni.end()}});
        });
        evpn.on_l2_change([this](const EvpnL2Change &c) {
            // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on + chains.
            static const char *kinds[] = {"remote", "gone", "flood+", "flood-"};
            std::string x = kinds[c.kind];
            auto add = [&x](const std::string &v) {
                x += ' ';
                x += v;
            };
            add(std::to_string(c.vni));
            if (c.kind <= EvpnL2Change::MacGone) add(c.mac.str());
            if (c.kind != EvpnL2Change::MacGone) add(c.vtep.str());
            for (auto &a : c.ips) add(a.str());
            l2.push_back(x);
        });
        RibPeer p;
        p.address = ip("10.0.0.9");
        p.asn = 65001;
        p.ibgp = true;
        p.router_id = 0x0a000009;
        remote = rib.add_peer(p);
        evpn.configure(config());
    }

    // Our own routes of a type in the global table, by key string.
    std::map<std::string, const AttrData *> local(uint8_t type) {
        std::map<std::string, const AttrData *> out;
        rib.for_each(RouteFamily::Evpn,
                     [&](const Prefix *, const EvpnNlri *n, const RouteEntry &e) {
                         if (n->route_type() == type && e.n && e.all()[0].peer == kLocalPeer)
                             out[n->str()] = e.all()[0].attrs;
                     });
        return out;
    }
    // Our MAC/IP route for a MAC and its attributes (null when not announced).
    std::pair<const EvpnMacIp *, const AttrData *> local_route(const char *m) {
        std::pair<const EvpnMacIp *, const AttrData *> r{nullptr, nullptr};
        rib.for_each(RouteFamily::Evpn,
                     [&](const Prefix *, const EvpnNlri *n, const RouteEntry &e) {
                         auto *x = std::get_if<EvpnMacIp>(&n->route);
                         if (x && x->mac == mac(m) && e.n && e.all()[0].peer == kLocalPeer)
                             r = {x, e.all()[0].attrs};
                     });
        return r;
    }
    const EvpnMacIp *local_mac(const char *m) { return local_route(m).first; }
    const AttrData *local_mac_attrs(const char *m) { return local_route(m).second; }

    // A route from VTEP `vtep` as the peer would send it.
    void remote_mac(const char *vtep, const char *m, std::optional<MacMobility> mm = {},
                    const char *rt = "65001:10", std::optional<IpAddr> host = {},
                    std::optional<uint32_t> l3vni = {}, bool withdraw = false) {
        EvpnNlri n;
        EvpnMacIp r;
        r.rd = RouteDistinguisher{1, ip(vtep).v4_host(), 10};
        r.mac = mac(m);
        r.ip = host;
        r.label1 = 10;
        r.label2 = l3vni;
        n.route = r;
        send(n, vtep, rt, mm, withdraw);
    }
    void send(const EvpnNlri &n, const char *vtep, const char *rt,
              std::optional<MacMobility> mm = {}, bool withdraw = false,
              std::optional<MacAddr> rmac = {}) {
        if (withdraw) {
            rib.withdraw(remote, n);
            return;
        }
        PathAttrs a;
        a.origin = Origin::Igp;
        a.as_path = AsPath{};
        a.local_pref = 100;
        std::string list = rt; // comma-separated
        for (size_t at = 0, end; at < list.size(); at = end + 1) {
            end = std::min(list.find(',', at), list.size());
            auto t = RouteTarget::parse(list.substr(at, end - at));
            EXPECT_TRUE(t) << list;
            if (t) a.ext_communities.push_back(ExtCommunity::route_target(*t));
        }
        a.ext_communities.push_back(ExtCommunity::encapsulation(kTunnelVxlan));
        if (mm) a.ext_communities.push_back(ExtCommunity::mac_mobility(*mm));
        if (rmac) a.ext_communities.push_back(ExtCommunity::router_mac(*rmac));
        rib.update(remote, n, rib.intern(std::move(a), NextHop{ip(vtep), {}}));
    }
    const MacEntry *entry(uint32_t vni, const char *m) {
        auto &macs = evpn.mac_vrfs().at(vni).macs;
        auto it = macs.find(mac(m));
        return it == macs.end() ? nullptr : &it->second;
    }
};

} // namespace

TEST(BgpEvpnConfig, ErrorsNameTheField) {
    auto bad = [](const std::string &evpn) {
        try {
            parse_config(YAML::Load("asn: 65001\nrouter_id: 10.0.0.1\nevpn:\n" + evpn));
        } catch (const BgpConfigError &e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(bad("  vnis: [10, 10]"), "bgp.evpn.vnis[1].vni: VNI used twice");
    EXPECT_EQ(bad("  vnis: [{vni: 10, vrf: red}]"),
              "bgp.evpn.vnis[0].vrf: 'red' is not one of bgp.evpn.vrfs");
    EXPECT_EQ(bad("  vnis: [{vni: 70000}]"),
              "bgp.evpn.vnis[0].rd: VNI above 65535: give the RD explicitly");
    EXPECT_EQ(bad("  vrfs: [{name: a, l3vni: 5, router_mac: \"01:00:00:00:00:01\"}]"),
              "bgp.evpn.vrfs[0].router_mac: '01:00:00:00:00:01' is not a unicast MAC address");
    EXPECT_EQ(bad("  vnis: [{vni: 10, route_targets: [x]}]"),
              "bgp.evpn.vnis[0].route_targets[0]: 'x' is not a route target (AS:N, IPv4:N or "
              "AS4:N)");
}

TEST_F(BgpEvpn, OriginatesImetPerL2VniWithPmsiAndEncap) {
    auto imet = local(3);
    ASSERT_EQ(imet.size(), 2u);
    // Automatic RD router-id:VNI and RT AS:VNI, as FRR derives them.
    auto *a = imet.at("[10.0.0.1:10]:[3]:[0]:[32]:[10.0.0.1]");
    EXPECT_EQ(rts(a->attrs), std::vector<std::string>{"65001:10"});
    EXPECT_TRUE(has(a->attrs, ExtCommunity::encapsulation(kTunnelVxlan)));
    ASSERT_TRUE(a->attrs.pmsi_tunnel);
    EXPECT_EQ(a->attrs.pmsi_tunnel->tunnel_type, PmsiTunnel::kIngressReplication);
    EXPECT_EQ(a->attrs.pmsi_tunnel->label, 10u);
    EXPECT_EQ(a->attrs.pmsi_tunnel->endpoint(), ip("10.0.0.1"));
    EXPECT_EQ(a->next_hop.addr, ip("10.0.0.1"));
    auto *b = imet.at("[10.0.0.1:99]:[3]:[0]:[32]:[10.0.0.1]");
    EXPECT_EQ(rts(b->attrs), std::vector<std::string>{"65000:20"});
}

TEST_F(BgpEvpn, OriginatesType5PerVrfPrefixWithRouterMac) {
    auto t5 = local(5);
    ASSERT_EQ(t5.size(), 1u);
    auto *a = t5.at("[10.0.0.1:100]:[5]:[0]:[24]:[10.1.0.0]");
    EXPECT_EQ(rts(a->attrs), std::vector<std::string>{"65001:100"});
    EXPECT_TRUE(has(a->attrs, ExtCommunity::router_mac(mac("02:00:00:00:00:01"))));
    rib.for_each(RouteFamily::Evpn, [&](const Prefix *, const EvpnNlri *n, const RouteEntry &) {
        if (auto *p = std::get_if<EvpnIpPrefix>(&n->route)) {
            EXPECT_EQ(p->label, 100u);
        }
    });
}

TEST_F(BgpEvpn, LocalMacIpCarriesL3VniAndVrfTargets) {
    EXPECT_EQ(evpn.originate_mac_ip(10, mac("00:00:00:aa:00:01"), ip("10.1.0.5"), false),
              MacResult::Advertised);
    EXPECT_EQ(evpn.originate_mac_ip(99, mac("00:00:00:aa:00:01"), {}, false),
              MacResult::UnknownVni);
    auto *r = local_mac("00:00:00:aa:00:01");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->label1, 10u);
    EXPECT_EQ(r->label2, 100u);
    auto *a = local_mac_attrs("00:00:00:aa:00:01");
    EXPECT_EQ(rts(a->attrs), (std::vector<std::string>{"65001:10", "65001:100"}));
    EXPECT_TRUE(has(a->attrs, ExtCommunity::router_mac(mac("02:00:00:00:00:01"))));
    EXPECT_FALSE(a->attrs.ext_communities.back().as_mac_mobility()) << "sequence 0: no MM";
    EXPECT_EQ(entry(10, "00:00:00:aa:00:01")->owner, MacEntry::Owner::Local);
    EXPECT_TRUE(evpn.withdraw_mac_ip(10, mac("00:00:00:aa:00:01"), ip("10.1.0.5")));
    EXPECT_EQ(local_mac("00:00:00:aa:00:01"), nullptr);
    EXPECT_EQ(entry(10, "00:00:00:aa:00:01"), nullptr);
}

TEST_F(BgpEvpn, ImportsByRouteTarget) {
    remote_mac("10.0.0.9", "00:00:00:bb:00:01", {}, "65001:10,65001:100", ip("10.1.0.9"), 100);
    remote_mac("10.0.0.9", "00:00:00:bb:00:02", {}, "65009:10"); // no VNI imports it
    EvpnNlri imet;
    imet.route = EvpnImet{RouteDistinguisher{1, ip("10.0.0.9").v4_host(), 10}, 0, ip("10.0.0.9")};
    send(imet, "10.0.0.9", "65001:10");
    auto *e = entry(10, "00:00:00:bb:00:01");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->owner, MacEntry::Owner::Remote);
    EXPECT_EQ(e->owner_vtep, ip("10.0.0.9"));
    EXPECT_EQ(entry(10, "00:00:00:bb:00:02"), nullptr);
    EXPECT_EQ(evpn.mac_vrfs().at(10).flood_list(), std::set<IpAddr>{ip("10.0.0.9")});
    EXPECT_TRUE(evpn.mac_vrfs().at(20).flood_list().empty());
    // The MAC/IP route's host address lands in the VRF (by its L3 target) with its L3VNI.
    ASSERT_EQ(vrf_changes.size(), 1u);
    EXPECT_EQ(vrf_changes[0].vrf, "blue");
    EXPECT_EQ(vrf_changes[0].prefix, "10.1.0.9/32");
    EXPECT_EQ(vrf_changes[0].vnis, std::vector<uint32_t>{100});
    auto &blue = evpn.ip_vrfs().at("blue");
    ASSERT_TRUE(blue.routes.count(*Prefix::parse("10.1.0.9/32")));
    // Type 5 from two VTEPs: one prefix, two ECMP paths with their L3VNI.
    for (const char *vtep : {"10.0.0.7", "10.0.0.8"}) {
        EvpnNlri t5;
        EvpnIpPrefix p;
        p.rd = RouteDistinguisher{1, ip(vtep).v4_host(), 100};
        p.prefix = *Prefix::parse("10.2.0.0/24");
        p.gateway = ip("0.0.0.0");
        p.label = 100;
        t5.route = p;
        send(t5, vtep, "65001:100", {}, false, mac("02:00:00:00:00:07"));
    }
    auto &e5 = blue.routes.at(*Prefix::parse("10.2.0.0/24"));
    EXPECT_EQ(e5.n_best, 2);
    EXPECT_EQ(vrf_changes.back().vnis, (std::vector<uint32_t>{100, 100}));
    // Our own type 5 is not imported back.
    EXPECT_FALSE(blue.routes.count(*Prefix::parse("10.1.0.0/24")));
    // Withdrawals leave the tables.
    remote_mac("10.0.0.9", "00:00:00:bb:00:01", {}, "65001:10,65001:100", ip("10.1.0.9"), 100,
               true);
    rib.withdraw(remote, imet);
    EXPECT_EQ(entry(10, "00:00:00:bb:00:01"), nullptr);
    EXPECT_TRUE(evpn.mac_vrfs().at(10).flood_list().empty());
    EXPECT_FALSE(blue.routes.count(*Prefix::parse("10.1.0.9/32")));
    EXPECT_EQ(vrf_changes.back().prefix, "10.1.0.9/32");
    EXPECT_EQ(vrf_changes.back().now, 0u);
}

TEST_F(BgpEvpn, MacMovesWithSequenceNumbers) {
    const char *m = "00:00:00:cc:00:01";
    evpn.originate_mac_ip(10, mac(m), {}, false);
    // The MAC shows up behind another VTEP with a higher sequence: ours is withdrawn.
    remote_mac("10.0.0.9", m, MacMobility{false, 1});
    EXPECT_EQ(local_mac(m), nullptr);
    EXPECT_EQ(entry(10, m)->owner, MacEntry::Owner::Remote);
    // It comes back here: advertised above the remote sequence.
    EXPECT_EQ(evpn.originate_mac_ip(10, mac(m), {}, false), MacResult::Advertised);
    auto mm = local_mac_attrs(m)->attrs.ext_communities.back().as_mac_mobility();
    ASSERT_TRUE(mm);
    EXPECT_EQ(mm->sequence, 2u);
    EXPECT_EQ(entry(10, m)->owner, MacEntry::Owner::Local);
    EXPECT_EQ(evpn.moves(), 2u);
    // Same sequence elsewhere: the lower VTEP address wins (RFC 7432 15.1); 10.0.0.9 is
    // above ours (10.0.0.1), so we keep it.
    remote_mac("10.0.0.9", m, MacMobility{false, 2});
    EXPECT_NE(local_mac(m), nullptr);
}

TEST_F(BgpEvpn, StickyMacDoesNotMove) {
    const char *m = "00:00:00:dd:00:01";
    remote_mac("10.0.0.9", m, MacMobility{true, 0});
    EXPECT_EQ(evpn.originate_mac_ip(10, mac(m), {}, false), MacResult::Refused);
    EXPECT_EQ(local_mac(m), nullptr);
    // Our own sticky MAC stays ours whatever the sequence elsewhere.
    const char *s = "00:00:00:dd:00:02";
    EXPECT_EQ(evpn.originate_mac_ip(10, mac(s), {}, true), MacResult::Advertised);
    EXPECT_TRUE(local_mac_attrs(s)->attrs.ext_communities.back().as_mac_mobility()->sticky);
    remote_mac("10.0.0.9", s, MacMobility{false, 7});
    EXPECT_NE(local_mac(s), nullptr);
    EXPECT_EQ(entry(10, s)->owner, MacEntry::Owner::Local);
}

TEST_F(BgpEvpn, DuplicateDetectionFreezesTheMac) {
    const char *m = "00:00:00:ee:00:01";
    uint32_t seq = 0;
    evpn.originate_mac_ip(10, mac(m), {}, false);
    // Moves away and back: max_moves is 3 in this configuration.
    remote_mac("10.0.0.9", m, MacMobility{false, ++seq}); // move 1
    evpn.originate_mac_ip(10, mac(m), {}, false);         // move 2, seq 2
    seq = 2;
    remote_mac("10.0.0.9", m, MacMobility{false, ++seq}); // move 3: duplicate
    auto *e = entry(10, m);
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->duplicate);
    EXPECT_EQ(evpn.originate_mac_ip(10, mac(m), {}, false), MacResult::Duplicate);
    EXPECT_EQ(local_mac(m), nullptr) << "a duplicate is not advertised";
    EXPECT_TRUE(evpn.clear_duplicate(10, mac(m)));
    EXPECT_FALSE(entry(10, m)->duplicate);
    auto mm = local_mac_attrs(m)->attrs.ext_communities.back().as_mac_mobility();
    ASSERT_TRUE(mm);
    EXPECT_EQ(mm->sequence, 4u) << "above the remote's 3";
}

TEST_F(BgpEvpn, ReconfigureTouchesOnlyWhatChanged) {
    remote_mac("10.0.0.9", "00:00:00:bb:00:01", {}, "65001:10,65001:100", ip("10.1.0.9"), 100);
    evpn.originate_mac_ip(10, mac("00:00:00:aa:00:01"), {}, false);
    size_t changes = vrf_changes.size();
    // VNI 20 gets another RT; VNI 10 and VRF blue stay as they were.
    auto cfg = config();
    cfg.evpn.vnis[1].import_targets =
        cfg.evpn.vnis[1].export_targets = {*RouteTarget::parse("65000:21")};
    cfg.evpn.vnis.push_back(L2Vni{30, {}, {}, {}, ""});
    evpn.configure(cfg);
    EXPECT_EQ(vrf_changes.size(), changes) << "the VRF's Loc-RIB did not flap";
    auto imet = local(3);
    EXPECT_EQ(imet.size(), 3u);
    EXPECT_EQ(rts(imet.at("[10.0.0.1:99]:[3]:[0]:[32]:[10.0.0.1]")->attrs),
              std::vector<std::string>{"65000:21"});
    EXPECT_NE(entry(10, "00:00:00:bb:00:01"), nullptr);
    EXPECT_NE(local_mac("00:00:00:aa:00:01"), nullptr);
    // Removing the VRF withdraws its prefixes and empties its Loc-RIB for the listeners.
    cfg.evpn.vnis[0].vrf.clear();
    cfg.evpn.vrfs.clear();
    evpn.configure(cfg);
    EXPECT_TRUE(local(5).empty());
    ASSERT_GT(vrf_changes.size(), changes);
    EXPECT_EQ(vrf_changes.back().vrf, "blue");
    EXPECT_EQ(vrf_changes.back().now, 0u);
    EXPECT_TRUE(evpn.ip_vrfs().empty());
}

TEST_F(BgpEvpn, TellsTheDataplaneWhereMacsAndVtepsAre) {
    EvpnNlri imet;
    imet.route = EvpnImet{RouteDistinguisher{1, ip("10.0.0.9").v4_host(), 10}, 0, ip("10.0.0.9")};
    send(imet, "10.0.0.9", "65001:10");
    const char *m = "00:00:00:ff:00:01";
    remote_mac("10.0.0.9", m, {}, "65001:10", ip("10.1.0.20"));
    evpn.originate_mac_ip(10, mac(m), {}, false);                                  // moves here
    remote_mac("10.0.0.9", m, MacMobility{false, 5}, "65001:10", ip("10.1.0.20")); // and back
    rib.withdraw(remote, imet);
    EXPECT_EQ(l2, (std::vector<std::string>{
                      "flood+ 10 10.0.0.9",
                      "remote 10 00:00:00:ff:00:01 10.0.0.9 10.1.0.20",
                      "gone 10 00:00:00:ff:00:01",
                      "remote 10 00:00:00:ff:00:01 10.0.0.9 10.1.0.20",
                      "flood- 10 10.0.0.9",
                  }));
    // A VNI removed from the configuration takes its remote MACs along.
    l2.clear();
    auto cfg = config();
    cfg.evpn.vnis.erase(cfg.evpn.vnis.begin());
    evpn.configure(cfg);
    EXPECT_EQ(l2, std::vector<std::string>{"gone 10 00:00:00:ff:00:01"});
}
