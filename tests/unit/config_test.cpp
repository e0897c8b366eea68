#include "control/config/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace vleaf;
using namespace vleaf::config;

namespace {

// The source tree's conf/ directory, passed by meson (tests/unit/meson.build).
std::filesystem::path conf_dir() {
    const char *d = std::getenv("VLEAF_CONF_DIR");
    if (!d) throw std::runtime_error("VLEAF_CONF_DIR is not set; run through `meson test`");
    return d;
}

std::string read(const std::filesystem::path &p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Two ports, p0 with two RSS queues, and a VRF: enough for every reference to resolve.
const std::string kBase = R"(
ports:
  - {name: p0, device: net_null0, rx_queues: 2}
  - {name: p1, device: net_null1}
vrfs:
  - {name: blue, id: 7}
)";

const std::string kInterfaces = R"(
interfaces:
  - {name: h1, port: p0, ipv4: [10.0.1.1/24], ipv6: ["fd00:1::1/64"]}
  - {name: h2, port: p1, ipv4: [10.0.2.1/24]}
)";

// Returns the ConfigError message, or fails the test when the text parses.
std::string error_of(const std::string &yaml) {
    try {
        parse(yaml, "t.yaml");
    } catch (const ConfigError &e) {
        return e.what();
    }
    ADD_FAILURE() << "accepted:\n" << yaml;
    return "";
}

void expect_rejected(const std::string &yaml, const std::string &path, const std::string &reason) {
    std::string msg = error_of(yaml);
    EXPECT_EQ(msg.rfind("t.yaml: " + path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
}

} // namespace

TEST(Config, DemoFileIsTheDemo) {
    Config c = load_file(conf_dir() / "demo.yaml");
    EXPECT_EQ(c.source, conf_dir() / "demo.yaml");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].name, "p0");
    EXPECT_EQ(c.ports[0].device.rfind("net_af_packet0,iface=vl-h1,", 0), 0u);
    EXPECT_NE(c.ports[0].device.find("qpairs=1"), std::string::npos);
    EXPECT_EQ(c.ports[1].device.rfind("net_af_packet1,iface=vl-h2,", 0), 0u);
    EXPECT_NE(c.ports[1].device.find("qpairs=1"), std::string::npos);
    ASSERT_EQ(c.interfaces.size(), 2u);
    EXPECT_EQ(c.interfaces[0].name, "h1");
    EXPECT_EQ(c.interfaces[0].port, "p0");
    EXPECT_EQ(c.interfaces[0].ipv4.at(0).str(), "10.0.1.1/24");
    EXPECT_EQ(c.interfaces[0].ipv6.at(0).str(), "fd00:1::1/64");
    EXPECT_EQ(c.interfaces[0].tap, "vl-tap-h1");
    EXPECT_EQ(c.interfaces[1].ipv4.at(0).str(), "10.0.2.1/24");
    EXPECT_EQ(c.interfaces[1].ipv6.at(0).str(), "fd00:2::1/64");
    EXPECT_EQ(c.interfaces[1].tap, "vl-tap-h2");
    ASSERT_EQ(c.workers.size(), 1u);
    EXPECT_EQ(c.workers[0].lcore, 1u);
    ASSERT_EQ(c.workers[0].rx.size(), 2u);
    ASSERT_EQ(c.routes.size(), 2u);
    EXPECT_EQ(c.routes[0].prefix.str(), "10.100.0.0/16");
    EXPECT_EQ(c.routes[0].via.at(0).str(), "10.0.2.2");
    EXPECT_EQ(c.routes[1].prefix.str(), "fd00:100::/48");
    EXPECT_EQ(c.routes[1].via.at(0).str(), "fd00:2::2");
    EXPECT_EQ(c.api.socket, "/run/vleaf/demo.sock");
}

TEST(Config, EveryShippedConfigIsValid) {
    size_t n = 0;
    for (const auto &e : std::filesystem::directory_iterator(conf_dir())) {
        if (e.path().extension() != ".yaml") continue;
        SCOPED_TRACE(e.path().string());
        EXPECT_NO_THROW(load_file(e.path()));
        n++;
    }
    EXPECT_GE(n, 2u); // demo and gateway at least
}

TEST(Config, EmbeddedDefaultIsConfDemoYaml) {
    EXPECT_EQ(std::string(embedded_default_text()), read(conf_dir() / "demo.yaml"));
    Config c = embedded_default();
    EXPECT_EQ(c.source, "<embedded default>");
    EXPECT_EQ(c.punt_police.arp_nd, 2000u);
    EXPECT_EQ(c.api.socket, "/run/vleaf/demo.sock");
}

TEST(Config, GatewayHasEcmpBlackholeAndTenantVrf) {
    Config c = load_file(conf_dir() / "gateway.yaml");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].rx_queues, 2);
    EXPECT_TRUE(c.ports[0].rss);
    EXPECT_EQ(c.workers.size(), 2u);
    EXPECT_EQ(c.routes.at(0).prefix.str(), "0.0.0.0/0");
    EXPECT_EQ(c.routes.at(0).via.size(), 2u);
    EXPECT_TRUE(c.routes.at(2).blackhole);
    ASSERT_TRUE(c.vrf("tenant-a"));
    EXPECT_EQ(c.vrf("tenant-a")->id, 1u);
    EXPECT_EQ(c.routes.back().vrf, "tenant-a");
    EXPECT_EQ(c.interfaces.at(1).mac->str(), "02:00:0a:0a:00:01");
}

TEST(Config, CalicoPeerRunsTheEmbeddedSpeaker) {
    Config c = load_file(conf_dir() / "calico-peer.yaml");
    ASSERT_TRUE(c.bgp);
    EXPECT_EQ(c.bgp->asn, 64512u);
    EXPECT_EQ(c.bgp->max_paths, 8);
    ASSERT_EQ(c.bgp->peers.size(), 2u);
    EXPECT_EQ(c.bgp->peers[0].range->str(), "10.20.0.0/16");
    EXPECT_TRUE(c.bgp->peers[0].rr_client);
    EXPECT_EQ(c.fib.ring_size, 65536u);
    EXPECT_EQ(c.fib.backlog_limit, 262144u);
    EXPECT_FALSE(load_file(conf_dir() / "demo.yaml").bgp) << "no bgp: section, no speaker";
}

TEST(Config, EvpnLeafHasVnisGatewaysAndTunnels) {
    Config c = load_file(conf_dir() / "evpn-leaf.yaml");
    ASSERT_TRUE(c.vxlan);
    EXPECT_EQ(c.vxlan->source4->str(), "10.2.2.2");
    EXPECT_FALSE(c.vxlan->source6);
    EXPECT_EQ(c.vxlan->udp_port, 4789);
    EXPECT_EQ(c.vrf("vpn1")->l3vni, 100u);
    EXPECT_EQ(c.vrf("vpn1")->router_mac->str(), "02:00:0a:02:02:02");
    ASSERT_EQ(c.bridge_domains.size(), 2u);
    const BridgeDomain &bd = c.bridge_domains[0];
    EXPECT_EQ(bd.vni, 10u);
    EXPECT_EQ(bd.gateway_mac->str(), "00:00:5e:00:01:01");
    EXPECT_EQ(bd.gateway_ipv4.at(0).str(), "192.168.10.1/24");
    ASSERT_EQ(bd.access.size(), 2u);
    EXPECT_EQ(bd.access[1].vlan, 10);
    EXPECT_EQ(bd.flood.at(0).str(), "10.3.3.3");
    EXPECT_EQ(bd.macs.at(0).ips.at(0).str(), "192.168.10.31");
    const Route &r = c.routes.back();
    EXPECT_EQ(r.vtep->str(), "10.3.3.3");
    EXPECT_EQ(r.vni, 100u);
    EXPECT_EQ(r.router_mac->str(), "02:00:0a:03:03:03");
    // The speaker's EVPN view is completed from the sections above.
    ASSERT_TRUE(c.bgp);
    EXPECT_EQ(c.bgp->evpn.vtep->str(), "10.2.2.2");
    ASSERT_EQ(c.bgp->evpn.vnis.size(), 2u);
    EXPECT_EQ(c.bgp->evpn.vnis[1].vni, 20u);
    EXPECT_EQ(c.bgp->evpn.vnis[1].vrf, "vpn1");
    ASSERT_EQ(c.bgp->evpn.vrfs.size(), 1u);
    EXPECT_EQ(c.bgp->evpn.vrfs[0].prefixes.size(), 2u);
}

TEST(Config, DefaultsApplyAndDefaultVrfIsImplicit) {
    Config c = parse("ports: [{name: p0, device: net_null0}]\n", "min.yaml");
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.burst, 32);
    EXPECT_EQ(c.mempool.mbufs, 16383u);
    EXPECT_EQ(c.ports[0].rx_queues, 1);
    EXPECT_TRUE(c.ports[0].rss);
    ASSERT_EQ(c.vrfs.size(), 1u);
    EXPECT_EQ(c.vrfs[0].name, "default");
    EXPECT_EQ(c.vrfs[0].id, 0u);
    EXPECT_EQ(c.neighbors.retries, 3u);
    EXPECT_EQ(c.punt_police.arp_nd, 2000u);
    EXPECT_EQ(c.punt_police.host, 5000u);
    EXPECT_EQ(c.punt_police.bgp, 20000u);
    EXPECT_EQ(c.api.socket, "/run/vleaf/vleafd.sock");
    EXPECT_TRUE(c.workers.empty());
}

TEST(Config, ParsesEveryRouteKind) {
    Config c = parse(kBase + kInterfaces + R"(
routes:
  - {prefix: 0.0.0.0/0, via: [10.0.2.2, 10.0.2.3]}
  - {prefix: 192.168.0.0/16, dev: h1}
  - {prefix: 172.16.0.0/12, blackhole: true, vrf: blue}
  - {prefix: "fd00:99::/64", via: "fd00:1::9"}
)",
                     "t.yaml");
    ASSERT_EQ(c.routes.size(), 4u);
    EXPECT_EQ(c.routes[0].via.size(), 2u);
    EXPECT_EQ(c.routes[1].dev, "h1");
    EXPECT_TRUE(c.routes[2].blackhole);
    EXPECT_EQ(c.routes[2].vrf, "blue");
    EXPECT_EQ(c.routes[3].via.at(0).str(), "fd00:1::9");
    EXPECT_EQ(c.vrf("blue")->id, 7u);
}

TEST(Config, DefaultVrfMayBeTunedButKeepsIdZero) {
    Config c = parse(kBase + "  - {name: default, max_routes_v4: 1000}\n", "t.yaml");
    EXPECT_EQ(c.vrfs.size(), 2u);
    EXPECT_EQ(c.vrf("default")->max_routes_v4, 1000u);
    EXPECT_EQ(c.vrf("default")->id, 0u);
    expect_rejected(kBase + "  - {name: default, id: 3}\n", "vrfs[1].id", "out of range 0..0");
}

TEST(Config, WorkersMayUseLcoreZero) {
    Config c = parse(kBase + R"(
workers:
  - {lcore: 0, rx: [{port: p0, queue: 0}, {port: p0, queue: 1}, {port: p1, queue: 0}]}
)",
                     "t.yaml");
    EXPECT_EQ(c.workers.at(0).lcore, 0u);
}

TEST(ConfigReject, ExampleMessageIsExact) {
    EXPECT_EQ(error_of(kBase + R"(
routes:
  - {prefix: 10.1.0.0/16, blackhole: true}
  - {prefix: 10.2.0.0/16, blackhole: true}
  - {prefix: 10.3.0.0/16, via: [10.0.0.300]}
)"),
              "t.yaml: routes[2].via[0]: '10.0.0.300' is not an IP address");
}

TEST(ConfigReject, BgpAndFibErrorsNameTheField) {
    expect_rejected(kBase +
                        "bgp: {asn: 65001, router_id: 10.0.0.1, peers: [{address: 10.0.0.2}]}\n",
                    "bgp.peers[0].remote_as", "");
    expect_rejected(kBase + "fib: {ring_size: 1}\n", "fib.ring_size", "");
}

TEST(ConfigReject, UnknownTopLevelKey) {
    expect_rejected(kBase + "lgo_level: debug\n", "lgo_level", "unknown key");
}

TEST(ConfigReject, UnknownNestedKey) {
    expect_rejected("ports: [{name: p0, device: d, rx_queue: 2}]\n", "ports[0].rx_queue",
                    "unknown key (expected one of: name, device, rx_queues");
}

TEST(ConfigReject, RepeatedKey) {
    expect_rejected(kBase + "burst: 16\nburst: 64\n", "burst", "key given twice");
}

TEST(ConfigReject, ListWhereMappingExpected) {
    expect_rejected("ports: {name: p0, device: d}\n", "ports", "expected a list, got a mapping");
}

TEST(ConfigReject, TextWhereNumberExpected) {
    expect_rejected(kBase + "burst: fast\n", "burst", "expected an integer in 1..64, got 'fast'");
}

TEST(ConfigReject, NegativeNumber) {
    expect_rejected("ports: [{name: p0, device: d, rx_desc: -1}]\n", "ports[0].rx_desc",
                    "expected an integer");
}

TEST(ConfigReject, TextWhereBoolExpected) {
    expect_rejected("ports: [{name: p0, device: d, rss: maybe}]\n", "ports[0].rss",
                    "expected true or false, got 'maybe'");
}

TEST(ConfigReject, MappingWhereStringExpected) {
    expect_rejected("ports: [{name: {a: 1}, device: d}]\n", "ports[0].name",
                    "expected a string, got a mapping");
}

TEST(ConfigReject, NumberOutOfRange) {
    expect_rejected("ports: [{name: p0, device: d, rx_queues: 0}]\n", "ports[0].rx_queues",
                    "0 is out of range 1..64");
    expect_rejected(kBase + "mempool: {data_room: 70000}\n", "mempool.data_room",
                    "out of range 256..65535");
    expect_rejected(kBase + "neighbors: {retries: 0}\n", "neighbors.retries", "out of range");
    expect_rejected(kBase + "burst: 99999999999999999999999\n", "burst", "out of range");
}

TEST(Config, PuntPoliceRatesPerClass) {
    Config c = parse(kBase + "punt_police: {arp_nd: 300, bgp: 50000}\n", "p.yaml");
    EXPECT_EQ(c.punt_police.arp_nd, 300u);
    EXPECT_EQ(c.punt_police.host, 5000u); // the default: the key is absent
    EXPECT_EQ(c.punt_police.bgp, 50000u);
}

TEST(ConfigReject, BadPuntPoliceRate) {
    expect_rejected(kBase + "punt_police: {arp_nd: 0}\n", "punt_police.arp_nd",
                    "0 is out of range 1..10000000");
    expect_rejected(kBase + "punt_police: {host: -5}\n", "punt_police.host", "");
    expect_rejected(kBase + "punt_police: {bgp: fast}\n", "punt_police.bgp", "");
    expect_rejected(kBase + "punt_police: {icmp: 10}\n", "punt_police.icmp", "");
}

TEST(ConfigReject, MempoolCacheTooLargeForPool) {
    expect_rejected(kBase + "mempool: {mbufs: 600, cache: 512}\n", "mempool.cache",
                    "more than mbufs / 1.5");
}

TEST(ConfigReject, UnknownLogLevel) {
    expect_rejected(kBase + "log_level: verbose\n", "log_level", "'verbose' is not a log level");
}

TEST(ConfigReject, MissingRequiredField) {
    expect_rejected("ports: [{name: p0}]\n", "ports[0].device", "required field is missing");
}

TEST(ConfigReject, NoPorts) {
    expect_rejected("log_level: info\n", "ports", "at least one port is required");
    expect_rejected("", "ports", "at least one port is required");
}

TEST(ConfigReject, DuplicatePortName) {
    expect_rejected("ports: [{name: p0, device: a}, {name: p0, device: b}]\n", "ports[1].name",
                    "port 'p0' listed twice");
}

TEST(ConfigReject, DuplicatePortDevice) {
    expect_rejected("ports: [{name: p0, device: a}, {name: p1, device: a}]\n", "ports[1].device",
                    "'a' is already port 'p0'");
}

TEST(ConfigReject, DuplicateInterfaceName) {
    expect_rejected(kBase + R"(
interfaces:
  - {name: h1, port: p0}
  - {name: h1, port: p1}
)",
                    "interfaces[1].name", "interface 'h1' listed twice");
}

TEST(ConfigReject, DuplicateVrfNameAndId) {
    expect_rejected(kBase + "  - {name: blue, id: 8}\n", "vrfs[1].name", "VRF 'blue' listed twice");
    expect_rejected(kBase + "  - {name: red, id: 7}\n", "vrfs[1].id", "id 7 is already VRF 'blue'");
}

TEST(ConfigReject, VrfWithoutId) {
    expect_rejected("ports: [{name: p0, device: a}]\nvrfs: [{name: red}]\n", "vrfs[0].id",
                    "required field is missing");
}

TEST(ConfigReject, InterfaceOnUnknownPort) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p9}]\n", "interfaces[0].port",
                    "unknown port 'p9'");
}

TEST(ConfigReject, InterfaceInUnknownVrf) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, vrf: red}]\n", "interfaces[0].vrf",
                    "unknown VRF 'red'");
}

TEST(ConfigReject, PortUsedByTwoInterfaces) {
    expect_rejected(kBase + R"(
interfaces:
  - {name: h1, port: p0}
  - {name: h2, port: p0}
)",
                    "interfaces[1].port", "port 'p0' is already used by interface 'h1'");
}

TEST(ConfigReject, InterfaceAddressWithoutPrefixLength) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, ipv4: [10.0.1.1]}]\n",
                    "interfaces[0].ipv4[0]", "'10.0.1.1' has no prefix length");
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, ipv6: [\"fd00::1\"]}]\n",
                    "interfaces[0].ipv6[0]", "'fd00::1' has no prefix length");
}

TEST(ConfigReject, InterfaceAddressOfWrongFamily) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, ipv4: [\"fd00::1/64\"]}]\n",
                    "interfaces[0].ipv4[0]", "is not an IPv4 address");
}

TEST(ConfigReject, InterfaceAddressIsSubnetAddress) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, ipv4: [10.0.1.0/24]}]\n",
                    "interfaces[0].ipv4[0]", "is the subnet address");
}

TEST(ConfigReject, OverlappingSubnetsInOneVrf) {
    expect_rejected(kBase + R"(
interfaces:
  - {name: h1, port: p0, ipv4: [10.0.1.1/24]}
  - {name: h2, port: p1, ipv4: [10.0.1.2/25]}
)",
                    "interfaces[1].ipv4[0]", "overlaps 10.0.1.1/24 of interface 'h1'");
    // The same subnet in another VRF is fine.
    EXPECT_NO_THROW(parse(kBase + R"(
interfaces:
  - {name: h1, port: p0, ipv4: [10.0.1.1/24]}
  - {name: h2, port: p1, vrf: blue, ipv4: [10.0.1.1/24]}
)",
                          "t.yaml"));
}

TEST(ConfigReject, BadMac) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, mac: \"01:00:5e:00:00:01\"}]\n",
                    "interfaces[0].mac", "not a unicast MAC");
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, mac: \"zz\"}]\n",
                    "interfaces[0].mac", "is not a MAC address");
}

TEST(ConfigReject, TapNameTooLongForKernel) {
    expect_rejected(kBase + "interfaces: [{name: h1, port: p0, tap: vl-tap-much-too-long}]\n",
                    "interfaces[0].tap", "longer than 15 characters");
}

TEST(ConfigReject, Ipv6OnSmallMtu) {
    expect_rejected(kBase +
                        "interfaces: [{name: h1, port: p0, mtu: 1000, ipv6: [\"fd00::1/64\"]}]\n",
                    "interfaces[0].mtu", "at least 1280");
}

TEST(ConfigReject, RoutePrefixWithHostBits) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.2.3/16, blackhole: true}]\n",
                    "routes[0].prefix",
                    "'10.1.2.3/16' has host bits set (did you mean 10.1.0.0/16?)");
}

TEST(ConfigReject, RoutePrefixNotAPrefix) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.2.0/33, blackhole: true}]\n",
                    "routes[0].prefix", "is not an IP prefix");
    expect_rejected(kBase + "routes: [{prefix: 10.1.2.0, blackhole: true}]\n", "routes[0].prefix",
                    "has no prefix length");
}

TEST(ConfigReject, RouteWithoutTarget) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16}]\n", "routes[0]",
                    "exactly one of via, dev, blackhole, vtep (none given)");
}

TEST(ConfigReject, RouteWithTwoTargets) {
    expect_rejected(kBase + kInterfaces +
                        "routes: [{prefix: 10.1.0.0/16, via: [10.0.1.2], blackhole: true}]\n",
                    "routes[0]", "(got via and blackhole)");
    expect_rejected(kBase + kInterfaces +
                        "routes: [{prefix: 10.1.0.0/16, via: [10.0.1.2], dev: h1}]\n",
                    "routes[0]", "(got via and dev)");
}

TEST(ConfigReject, BlackholeFalse) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, blackhole: false}]\n",
                    "routes[0].blackhole", "only 'true' makes sense");
}

TEST(ConfigReject, GatewayFamilyDiffersFromPrefix) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, via: [\"fd00::1\"]}]\n",
                    "routes[0].via[0]", "IPv6 gateway fd00::1 for IPv4 prefix 10.1.0.0/16");
    expect_rejected(kBase + "routes: [{prefix: \"fd00:9::/64\", via: [10.0.0.1]}]\n",
                    "routes[0].via[0]", "IPv4 gateway 10.0.0.1 for IPv6 prefix");
}

TEST(ConfigReject, MoreThanSixteenGateways) {
    std::string via;
    for (int i = 1; i <= 17; i++) via += (i > 1 ? ", " : "") + ("10.0.0." + std::to_string(i));
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, via: [" + via + "]}]\n",
                    "routes[0].via", "17 gateways, at most 16");
    via = via.substr(0, via.rfind(','));
    EXPECT_NO_THROW(parse(kBase + "routes: [{prefix: 10.1.0.0/16, via: [" + via + "]}]\n", "t"));
}

TEST(ConfigReject, GatewayListedTwice) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, via: [10.0.0.1, 10.0.0.1]}]\n",
                    "routes[0].via[1]", "10.0.0.1 listed twice");
}

TEST(ConfigReject, EmptyGatewayList) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, via: []}]\n", "routes[0].via",
                    "needs at least one gateway");
}

TEST(ConfigReject, RouteToUnknownInterface) {
    expect_rejected(kBase + kInterfaces + "routes: [{prefix: 10.1.0.0/16, dev: h9}]\n",
                    "routes[0].dev", "unknown interface 'h9'");
}

TEST(ConfigReject, RouteDevInOtherVrf) {
    expect_rejected(kBase + kInterfaces + "routes: [{prefix: 10.1.0.0/16, dev: h1, vrf: blue}]\n",
                    "routes[0].dev", "interface 'h1' is in VRF 'default'");
}

TEST(ConfigReject, RouteInUnknownVrf) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, blackhole: true, vrf: red}]\n",
                    "routes[0].vrf", "unknown VRF 'red'");
}

TEST(ConfigReject, DuplicateRoute) {
    expect_rejected(kBase + R"(
routes:
  - {prefix: 10.1.0.0/16, blackhole: true}
  - {prefix: 10.1.0.0/16, via: [10.0.0.1]}
)",
                    "routes[1].prefix", "10.1.0.0/16 in VRF 'default' is already routes[0]");
}

TEST(ConfigReject, WorkerOnUnknownPort) {
    expect_rejected(kBase + "workers: [{lcore: 1, rx: [{port: p7, queue: 0}]}]\n",
                    "workers[0].rx[0].port", "unknown port 'p7'");
}

TEST(ConfigReject, WorkerQueueBeyondPortQueues) {
    expect_rejected(kBase + "workers: [{lcore: 1, rx: [{port: p1, queue: 1}]}]\n",
                    "workers[0].rx[0].queue", "queue 1 but port 'p1' has rx_queues: 1");
}

TEST(ConfigReject, WorkerQueueListedTwice) {
    expect_rejected(kBase + R"(
workers:
  - {lcore: 1, rx: [{port: p0, queue: 0}, {port: p1, queue: 0}]}
  - {lcore: 2, rx: [{port: p0, queue: 1}, {port: p0, queue: 0}]}
)",
                    "workers[1].rx[1].queue", "port 'p0' queue 0 is already served by workers[0]");
}

TEST(ConfigReject, DuplicatedWorkerLcore) {
    expect_rejected(kBase + R"(
workers:
  - {lcore: 1, rx: [{port: p0, queue: 0}, {port: p1, queue: 0}]}
  - {lcore: 1, rx: [{port: p0, queue: 1}]}
)",
                    "workers[1].lcore", "lcore 1 is already used by workers[0]");
}

TEST(ConfigReject, RxQueueServedByNoWorker) {
    expect_rejected(kBase +
                        "workers: [{lcore: 1, rx: [{port: p0, queue: 0}, {port: p1, queue: 0}]}]\n",
                    "workers", "port 'p0' rx queue 1 is served by no worker");
}

TEST(ConfigReject, WorkerWithoutQueues) {
    expect_rejected(kBase + "workers: [{lcore: 1}]\n", "workers[0].rx",
                    "required field is missing");
    expect_rejected(kBase + "workers: [{lcore: 1, rx: []}]\n", "workers[0].rx",
                    "at least one rx queue");
}

const std::string kVxlan = kBase + "vxlan: {source: 10.9.9.9}\n";

TEST(ConfigReject, VxlanSection) {
    expect_rejected(kBase + "vxlan: {udp_port: 4789}\n", "vxlan.source",
                    "VTEP address is required");
    expect_rejected(kBase + "vxlan: {source: fd00::1}\n", "vxlan.source", "not an IPv4 address");
    expect_rejected(kBase + "vxlan: {source: 10.9.9.9, src_port_min: 60000, src_port_max: 50000}\n",
                    "vxlan.src_port_max", "below src_port_min");
    expect_rejected(kBase + "vxlan: {source: 10.9.9.9, ttl: 0}\n", "vxlan.ttl", "out of range");
    const std::string bd = "bridge_domains: [{vni: 10}]\n";
    expect_rejected(kBase + "vxlan: {source: 10.9.9.9, vni_queues: [{vni: 11, queue: 1}]}\n" + bd,
                    "vxlan.vni_queues[0].vni", "11 is neither a bridge domain's VNI nor an l3vni");
    expect_rejected(kBase + "vxlan: {source: 10.9.9.9, vni_queues: [{vni: 10}]}\n" + bd,
                    "vxlan.vni_queues[0].queue", "required");
    expect_rejected(kBase +
                        "vxlan: {source: 10.9.9.9, vni_queues: [{vni: 10, queue: 0}, "
                        "{vni: 10, queue: 1}]}\n" +
                        bd,
                    "vxlan.vni_queues[1].vni", "10 is listed twice");
}

TEST(Config, OffloadKnobAndVniQueues) {
    Config c = parse(kBase + R"(
vxlan:
  source: 10.9.9.9
  vni_queues: [{vni: 10, queue: 1}]
bridge_domains: [{vni: 10}, {vni: 20}]
)",
                     "t.yaml");
    EXPECT_TRUE(c.ports[0].offload); // the default: try
    EXPECT_EQ(c.vxlan->vni_queues, (std::map<uint32_t, uint16_t>{{10, 1}}));
    c = parse("ports: [{name: p0, device: d, offload: false}]\n", "t.yaml");
    EXPECT_FALSE(c.ports[0].offload);
}

TEST(ConfigReject, VrfL3vni) {
    expect_rejected("ports: [{name: p0, device: d}]\nvrfs: [{name: t, id: 1, l3vni: 100}]\n",
                    "vrfs[0].router_mac", "required with l3vni");
    expect_rejected("ports: [{name: p0, device: d}]\nvrfs: [{name: t, id: 1, l3vni: 16777216, "
                    "router_mac: \"02:00:00:00:00:01\"}]\n",
                    "vrfs[0].l3vni", "out of range");
}

TEST(ConfigReject, TunnelRoutes) {
    expect_rejected(kBase + "routes: [{prefix: 10.1.0.0/16, vtep: 10.9.9.8, router_mac: "
                            "\"02:00:00:00:00:01\"}]\n",
                    "routes[0].vtep", "needs the vxlan section");
    expect_rejected(kVxlan + "routes: [{prefix: 10.1.0.0/16, vtep: 10.9.9.8}]\n",
                    "routes[0].router_mac", "required with vtep");
    expect_rejected(kVxlan + "routes: [{prefix: 10.1.0.0/16, vtep: 10.9.9.8, router_mac: "
                             "\"02:00:00:00:00:01\"}]\n",
                    "routes[0].vni", "has no l3vni");
    expect_rejected(kVxlan + "routes: [{prefix: 10.1.0.0/16, vtep: \"fd00::8\", vni: 5, "
                             "router_mac: \"02:00:00:00:00:01\"}]\n",
                    "routes[0].vtep", "vxlan has no IPv6 source");
    expect_rejected(kVxlan + "routes: [{prefix: 10.1.0.0/16, via: 10.9.9.8, vni: 5}]\n",
                    "routes[0].vni", "only a route with vtep");
}

TEST(ConfigReject, BridgeDomains) {
    expect_rejected(kBase + "bridge_domains: [{vni: 10}]\n", "bridge_domains[0]",
                    "need the vxlan section");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10}, {vni: 10}]\n", "bridge_domains[1].vni",
                    "VNI 10 is already bridge_domains[0]");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10, gateway_ipv4: [10.5.0.1/24]}]\n",
                    "bridge_domains[0].gateway_mac", "required with gateway addresses");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10, access: [{port: p9}]}]\n",
                    "bridge_domains[0].access[0].port", "unknown port 'p9'");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10, access: [{port: p1, vlan: 4095}]}]\n",
                    "bridge_domains[0].access[0].vlan", "out of range");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10, access: [{port: p1}]}, "
                             "{vni: 20, access: [{port: p1}]}]\n",
                    "bridge_domains[1].access[0].vlan", "already in bridge_domains[0]");
    expect_rejected(kVxlan + kInterfaces + "bridge_domains: [{vni: 10, access: [{port: p0}]}]\n",
                    "bridge_domains[0].access[0].port", "routed by interface 'h1'");
    expect_rejected(kVxlan + kInterfaces +
                        "bridge_domains: [{vni: 10, gateway_mac: \"00:00:5e:00:01:01\", "
                        "gateway_ipv4: [10.0.1.9/24]}]\n",
                    "bridge_domains[0].gateway_ipv4[0]", "overlaps 10.0.1.1/24");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10, flood: [10.1.1.1, 10.1.1.1]}]\n",
                    "bridge_domains[0].flood[1]", "listed twice");
    expect_rejected(kVxlan + "bridge_domains: [{vni: 10, macs: [{mac: \"01:00:00:00:00:01\", "
                             "vtep: 10.1.1.1}]}]\n",
                    "bridge_domains[0].macs[0].mac", "not a unicast MAC");
    expect_rejected("ports: [{name: p0, device: d}]\nvxlan: {source: 10.9.9.9}\n"
                    "vrfs: [{name: t, id: 1, l3vni: 10, router_mac: "
                    "\"02:00:00:00:00:01\"}]\nbridge_domains: [{vni: 10}]\n",
                    "bridge_domains[0].vni", "VNI 10 is already VRF 't'");
}

TEST(ConfigReject, ApiSocketMustBeAbsolute) {
    expect_rejected(kBase + "api: {socket: run/x.sock}\n", "api.socket", "not an absolute path");
}

TEST(ConfigReject, BadName) {
    expect_rejected("ports: [{name: \"p 0\", device: d}]\n", "ports[0].name",
                    "may only hold letters");
}

TEST(ConfigReject, YamlSyntaxErrorNamesTheLine) {
    EXPECT_EQ(error_of("burst: 32\nlog_level: info\nports: [{name: p0, device: d}]\n"
                       "api: {socket: /x}}\nworkers: []\n"),
              "t.yaml: line 4, column 18: illegal flow end");
    std::string msg = error_of("ports:\n  - name: p0\n   device: d\n");
    EXPECT_EQ(msg.rfind("t.yaml: line 3, column 4: ", 0), 0u) << msg;
}

TEST(ConfigReject, MissingFileNamesThePath) {
    try {
        load_file("/nonexistent/vleaf.yaml");
        FAIL() << "loaded a missing file";
    } catch (const ConfigError &e) {
        EXPECT_STREQ(e.what(), "/nonexistent/vleaf.yaml: cannot open: No such file or directory");
    }
}

TEST(ConfigAcl, NetworkPolicyExample) {
    Config c = load_file(conf_dir() / "network-policy.yaml");
    ASSERT_EQ(c.acls.size(), 2u);
    const acl::Policy &p = c.acls[0];
    EXPECT_EQ(p.name, "pods-ingress");
    EXPECT_EQ(p.interface, "pods");
    EXPECT_EQ(p.dir, AclDirection::Out);
    ASSERT_EQ(p.rules.size(), 7u);
    EXPECT_EQ(p.rules[2].id, 20u);
    EXPECT_EQ(p.rules[2].rule.src.str(), "10.0.1.0/28");
    EXPECT_EQ(p.rules[2].rule.dport_lo, 22);
    EXPECT_EQ(p.rules[4].rule.priority, 100);
    EXPECT_EQ(p.rules[4].rule.action, AclAction::Deny);
    EXPECT_EQ(p.rules[5].rule.dport_hi, 65535);
    EXPECT_EQ(c.acls[1].rules[1].rule.action, AclAction::Count);
    EXPECT_EQ(c.acls[1].default_action, AclAction::Allow);
}

TEST(ConfigAcl, ErrorsNameTheField) {
    const std::string base = kBase + kInterfaces + "acls:\n";
    expect_rejected(base + "  - {name: a, interface: nope}\n", "acls[0].interface",
                    "unknown interface 'nope'");
    expect_rejected(base + "  - {name: a, vrf: red}\n", "acls[0].vrf", "unknown VRF 'red'");
    expect_rejected(base + "  - {name: a}\n", "acls[0]", "interface: give exactly one");
    expect_rejected(base + "  - {name: a, vrf: blue, direction: up}\n", "acls[0]",
                    "direction: 'up' is not in or out");
    expect_rejected(base + "  - {name: a, vrf: blue, default: count}\n", "acls[0]",
                    "default: 'count' is not allow or deny");
    const std::string pol = base + "  - name: a\n    vrf: blue\n    rules:\n";
    expect_rejected(pol + "      - {dst: 10.0.0.0/8, proto: tcp, dport: 70000, action: deny}\n",
                    "acls[0].rules[0]", "dport: '70000' is not a port");
    expect_rejected(pol + "      - {dst: 10.0.0.1/8, action: deny}\n", "acls[0].rules[0]",
                    "dst: '10.0.0.1/8' has host bits set");
    expect_rejected(pol + "      - {dst: 10.0.0.0/8, dport: 80, action: deny}\n",
                    "acls[0].rules[0]", "dport: port ranges need proto tcp, udp or sctp");
    expect_rejected(pol + "      - {src: 10.0.0.0/8, dst: \"fd00::/8\", action: deny}\n",
                    "acls[0].rules[0]", "dst: not of the family of src");
    expect_rejected(pol + "      - {proto: tcp, action: deny}\n", "acls[0].rules[0]",
                    "family: required");
    expect_rejected(pol + "      - {dst: 10.0.0.0/8}\n", "acls[0].rules[0]", "action: required");
    expect_rejected(pol + "      - {dst: 10.0.0.0/8, action: deny, colour: red}\n",
                    "acls[0].rules[0].colour", "unknown key");
    expect_rejected(pol + "      - {id: 3, dst: 10.0.0.0/8, action: deny}\n" +
                        "      - {id: 3, dst: 10.0.0.0/8, action: allow}\n",
                    "acls[0]", "rules[1].id: 3 given twice");
    expect_rejected(base + "  - {name: a, vrf: blue}\n  - {name: b, vrf: blue}\n", "acls[1]",
                    "vrf: 'blue' already has policy 'a' in direction in");
}
