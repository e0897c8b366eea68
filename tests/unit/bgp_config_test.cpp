// The `bgp:` configuration section: a full example and errors naming the field path.
#include "control/bgp/config.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

BgpConfig parse(const std::string &text) {
    return parse_config(YAML::Load(text));
}

std::string error_of(const std::string &text) {
    try {
        parse(text);
    } catch (const BgpConfigError &e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST(BgpConfig, FullExample) {
    auto c = parse(R"(
asn: 64512
router_id: 10.0.0.1
listen_port: 1179
max_paths: 4
peers:
  - address: 10.0.0.2
    remote_as: 64512
    rr_client: true
    password: secret
    timers: {hold: 30}
  - range: 10.0.1.0/24
    remote_as: 64513
    ttl_security: true
    families: [ipv4-unicast, ipv6-unicast, l2vpn-evpn]
    max_prefix: 1000
    refresh_stale_time: 30
    import: {prefix_list: [{prefix: 10.244.0.0/16, ge: 26, le: 26}, 10.96.0.0/12]}
    export: {set_community: ["64512:7"], set_local_pref: 150}
announce:
  - 10.244.0.0/26
  - {prefix: 10.96.0.10/32, communities: ["64512:100"], local_pref: 200}
)");
    EXPECT_EQ(c.asn, 64512u);
    EXPECT_EQ(c.listen_port, 1179);
    EXPECT_EQ(c.max_paths, 4);
    ASSERT_EQ(c.peers.size(), 2u);
    EXPECT_EQ(c.peers[0].timers.hold, 30);
    EXPECT_EQ(c.peers[0].timers.keepalive, 10) << "a third of the hold time";
    EXPECT_TRUE(c.peers[0].rr_client);
    EXPECT_EQ(c.peers[0].families, std::vector{RouteFamily::Ipv4Unicast});
    EXPECT_TRUE(c.peers[1].passive) << "ranges are passive";
    EXPECT_EQ(c.peers[1].families.size(), 3u);
    EXPECT_EQ(c.peers[0].refresh_stale_time, 360) << "FRR's stale-path time";
    EXPECT_EQ(c.peers[1].refresh_stale_time, 30);
    ASSERT_EQ(c.peers[1].import_policy.prefix_list.size(), 2u);
    EXPECT_TRUE(c.peers[1].import_policy.prefix_list[0].matches(*Prefix::parse("10.244.3.64/26")));
    EXPECT_FALSE(c.peers[1].import_policy.prefix_list[0].matches(*Prefix::parse("10.244.3.0/24")));
    EXPECT_EQ(c.peers[1].export_policy.set_local_pref, 150u);
    ASSERT_EQ(c.announce.size(), 2u);
    EXPECT_EQ(c.announce[1].communities, std::vector<Community>{64512u << 16 | 100});
    EXPECT_EQ(c.announce[1].local_pref, 200u);
}

TEST(BgpConfig, ErrorsNameTheField) {
    const std::pair<const char *, const char *> cases[] = {
        {"router_id: 10.0.0.1", "bgp.asn: missing"},
        {"asn: 0\nrouter_id: 10.0.0.1", "bgp.asn: AS 0 is reserved"},
        {"asn: 1\nrouter_id: 0.0.0.0", "bgp.router_id: must be a non-zero IPv4"},
        {"asn: 1\nrouter_id: 10.0.0.1\nbogus: 1", "bgp.bogus: unknown field"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2}, "
         "{address: 10.0.0.3, remote_as: x}]",
         "bgp.peers[1].remote_as: 'x' is not a non-negative integer"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.300, remote_as: 2}]",
         "bgp.peers[0].address: '10.0.0.300' is not an IP address"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{remote_as: 2}]", "bgp.peers[0].address: missing"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2, timers: {hold: "
         "2}}]",
         "bgp.peers[0].timers.hold: must be 0 or at least 3"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2, families: "
         "[ipv4]}]",
         "bgp.peers[0].families[0]: 'ipv4' is not one of"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2, ttl_security: "
         "true, multihop: 3}]",
         "bgp.peers[0].multihop: cannot be combined with ttl_security"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2, "
         "refresh_stale_time: 0}]",
         "bgp.peers[0].refresh_stale_time: must be at least 1 second"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2}, "
         "{address: 10.0.0.2, remote_as: 3}]",
         "bgp.peers[1]: duplicate neighbor 10.0.0.2"},
        {"asn: 1\nrouter_id: 10.0.0.1\nannounce: [10.0.0.1/24]",
         "bgp.announce[0]: '10.0.0.1/24' is not a prefix"},
        {"asn: 1\nrouter_id: 10.0.0.1\nannounce: [{prefix: 10.0.0.0/24, communities: "
         "[\"1:70000\"]}]",
         "bgp.announce[0].communities[0]: '1:70000' is not a community"},
        {"asn: 1\nrouter_id: 10.0.0.1\npeers: [{address: 10.0.0.2, remote_as: 2, import: "
         "{prefix_list: [{prefix: 10.0.0.0/16, le: 8}]}}]",
         "bgp.peers[0].import.prefix_list[0].le: shorter than ge or the prefix length"},
    };
    for (auto &[text, want] : cases)
        EXPECT_NE(error_of(text).find(want), std::string::npos)
            << text << "\n  got: " << error_of(text) << "\n  want: " << want;
}

TEST(BgpConfig, ShippedVleafBgpdConfigsAreValid) {
    const char *d = std::getenv("VLEAF_CONF_DIR");
    ASSERT_NE(d, nullptr) << "run through meson test";
    size_t n = 0;
    for (const auto &e : std::filesystem::directory_iterator(std::filesystem::path(d) / "bgp")) {
        SCOPED_TRACE(e.path().string());
        YAML::Node root = YAML::LoadFile(e.path());
        ASSERT_TRUE(root["bgp"]);
        BgpConfig c;
        EXPECT_NO_THROW(c = parse_config(root["bgp"]));
        ++n;
        if (e.path().filename() == "evpn-leaf.yaml") {
            EXPECT_EQ(c.evpn.vnis.size(), 2u);
            EXPECT_EQ(c.vtep().str(), "10.0.0.11");
            EXPECT_EQ(c.auto_rt(100).str(), "64512:100");
            EXPECT_EQ(c.auto_rd(100).str(), "10.0.0.11:100");
        }
    }
    EXPECT_GE(n, 1u);
}
