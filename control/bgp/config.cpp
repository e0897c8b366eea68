#include "control/bgp/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace vleaf::bgp {

std::optional<RouteFamily> family_from_name(const std::string &name) {
    for (unsigned i = 0; i < kRouteFamilies; ++i)
        if (name == family_name(RouteFamily(i))) return RouteFamily(i);
    return std::nullopt;
}

static std::optional<uint64_t> parse_uint(std::string_view s) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::optional<Community> parse_community(const std::string &text) {
    auto colon = text.find(':');
    if (colon == std::string::npos) return std::nullopt;
    auto hi = parse_uint(std::string_view(text).substr(0, colon));
    auto lo = parse_uint(std::string_view(text).substr(colon + 1));
    if (!hi || !lo || *hi > 0xffff || *lo > 0xffff) return std::nullopt;
    return Community(*hi << 16 | *lo);
}

std::string community_str(Community c) {
    return std::to_string(c >> 16) + ":" + std::to_string(c & 0xffff);
}

bool PrefixListEntry::matches(const Prefix &p) const {
    if (p.addr.family != prefix.addr.family || p.len < prefix.len) return false;
    if (!prefix.contains(p.addr)) return false;
    if (ge == 0 && le == 0) return p.len == prefix.len;
    uint8_t lo = ge ? ge : prefix.len;
    uint8_t hi = le ? le : uint8_t(p.addr.max_len());
    return p.len >= lo && p.len <= hi;
}

bool Policy::empty() const {
    return prefix_list.empty() && match_community.empty() && set_community.empty() &&
           !set_local_pref && !set_med;
}

std::string PeerConfig::name() const {
    if (address) return address->str();
    if (range) return range->str();
    return "?";
}

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &why) {
    throw BgpConfigError(path + ": " + why);
}

std::string scalar(const YAML::Node &n, const std::string &path) {
    if (!n.IsScalar()) fail(path, "expected a scalar");
    return n.Scalar();
}

uint64_t uint_field(const YAML::Node &n, const std::string &path, uint64_t max) {
    auto s = scalar(n, path);
    auto v = parse_uint(s);
    if (!v) fail(path, "'" + s + "' is not a non-negative integer");
    if (*v > max) fail(path, "'" + s + "' is larger than " + std::to_string(max));
    return *v;
}

bool bool_field(const YAML::Node &n, const std::string &path) {
    auto s = scalar(n, path);
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(path, "'" + s + "' is not a boolean");
}

IpAddr addr_field(const YAML::Node &n, const std::string &path) {
    auto s = scalar(n, path);
    auto a = IpAddr::parse(s);
    if (!a) fail(path, "'" + s + "' is not an IP address");
    return *a;
}

Prefix prefix_field(const YAML::Node &n, const std::string &path) {
    auto s = scalar(n, path);
    auto p = Prefix::parse(s);
    if (!p) fail(path, "'" + s + "' is not a prefix (address/length without host bits)");
    return *p;
}

uint32_t asn_field(const YAML::Node &n, const std::string &path) {
    auto v = uint_field(n, path, 0xffffffffu);
    if (v == 0) fail(path, "AS 0 is reserved (RFC 7607)");
    return uint32_t(v);
}

// Unknown keys are errors: a typo must not silently become a default.
void check_keys(const YAML::Node &n, const std::string &path,
                std::initializer_list<const char *> known) {
    if (!n.IsMap()) fail(path, "expected a mapping");
    for (auto it = n.begin(); it != n.end(); ++it) {
        auto key = it->first.as<std::string>();
        if (std::none_of(known.begin(), known.end(), [&](const char *k) { return key == k; }))
            fail(std::string(path).append(".").append(key), "unknown field");
    }
}

// A list of scalars each read by `parse` (which returns an optional); `what` names the
// expected form in errors.
template <class Parse>
auto scalar_list(const YAML::Node &n, const std::string &path, const char *example,
                 const char *what, Parse parse) {
    if (!n.IsSequence()) fail(path, std::string("expected a list like [") + example + "]");
    std::vector<typename decltype(parse(std::string()))::value_type> out;
    for (size_t i = 0; i < n.size(); ++i) {
        auto ip = path + "[" + std::to_string(i) + "]";
        auto s = scalar(n[i], ip);
        auto v = parse(s);
        if (!v) fail(ip, "'" + s + "' is not " + what);
        out.push_back(*v);
    }
    return out;
}

std::vector<Community> communities_field(const YAML::Node &n, const std::string &path) {
    return scalar_list(n, path, "65000:100", "a community (AS:value, each 0..65535)",
                       [](const std::string &s) { return parse_community(s); });
}

PrefixListEntry prefix_list_entry(const YAML::Node &n, const std::string &path) {
    PrefixListEntry e;
    if (n.IsScalar()) {
        e.prefix = prefix_field(n, path);
        return e;
    }
    check_keys(n, path, {"prefix", "ge", "le", "action"});
    if (!n["prefix"]) fail(path + ".prefix", "missing");
    e.prefix = prefix_field(n["prefix"], path + ".prefix");
    int max = e.prefix.addr.max_len();
    if (n["ge"]) e.ge = uint8_t(uint_field(n["ge"], path + ".ge", max));
    if (n["le"]) e.le = uint8_t(uint_field(n["le"], path + ".le", max));
    if (e.ge && e.ge < e.prefix.len) fail(path + ".ge", "shorter than the prefix length");
    if (e.le && e.le < std::max(e.ge, e.prefix.len))
        fail(path + ".le", "shorter than ge or the prefix length");
    if (n["action"]) {
        auto a = scalar(n["action"], path + ".action");
        if (a != "permit" && a != "deny") fail(path + ".action", "'" + a + "' is not permit|deny");
        e.permit = a == "permit";
    }
    return e;
}

Policy policy_field(const YAML::Node &n, const std::string &path) {
    check_keys(n, path,
               {"prefix_list", "match_community", "set_community", "set_local_pref", "set_med"});
    Policy p;
    if (auto pl = n["prefix_list"]) {
        if (!pl.IsSequence()) fail(path + ".prefix_list", "expected a list");
        for (size_t i = 0; i < pl.size(); ++i)
            p.prefix_list.push_back(
                prefix_list_entry(pl[i], path + ".prefix_list[" + std::to_string(i) + "]"));
    }
    if (n["match_community"])
        p.match_community = communities_field(n["match_community"], path + ".match_community");
    if (n["set_community"])
        p.set_community = communities_field(n["set_community"], path + ".set_community");
    if (n["set_local_pref"])
        p.set_local_pref =
            uint32_t(uint_field(n["set_local_pref"], path + ".set_local_pref", 0xffffffffu));
    if (n["set_med"])
        p.set_med = uint32_t(uint_field(n["set_med"], path + ".set_med", 0xffffffffu));
    return p;
}

PeerConfig peer_field(const YAML::Node &n, const std::string &path) {
    check_keys(n, path, {"address",           "range",         "remote_as",     "local_as",
                         "description",       "passive",       "password",      "ttl_security",
                         "multihop",          "update_source", "port",          "timers",
                         "families",          "rr_client",     "next_hop_self", "max_prefix",
                         "graceful_restart",  "restart_time",  "import",        "export",
                         "refresh_stale_time"});
    PeerConfig p;
    if (n["address"] && n["range"]) fail(path, "give either address or range, not both");
    if (n["address"])
        p.address = addr_field(n["address"], path + ".address");
    else if (n["range"]) {
        p.range = prefix_field(n["range"], path + ".range");
        p.passive = true;
    } else
        fail(path + ".address", "missing (or give a range for dynamic neighbors)");
    if (!n["remote_as"]) fail(path + ".remote_as", "missing");
    p.remote_as = asn_field(n["remote_as"], path + ".remote_as");
    if (n["local_as"]) p.local_as = asn_field(n["local_as"], path + ".local_as");
    if (n["description"]) p.description = scalar(n["description"], path + ".description");
    if (n["passive"]) {
        p.passive = bool_field(n["passive"], path + ".passive");
        if (p.range && !p.passive) fail(path + ".passive", "dynamic neighbors are always passive");
    }
    if (n["password"]) {
        p.password = scalar(n["password"], path + ".password");
        if (p.password.size() > 80) fail(path + ".password", "longer than 80 bytes (TCP-MD5)");
    }
    if (n["ttl_security"]) p.ttl_security = bool_field(n["ttl_security"], path + ".ttl_security");
    if (n["multihop"]) p.multihop = uint8_t(uint_field(n["multihop"], path + ".multihop", 255));
    if (p.ttl_security && p.multihop)
        fail(path + ".multihop", "cannot be combined with ttl_security (GTSM needs TTL 255)");
    if (n["update_source"])
        p.update_source = addr_field(n["update_source"], path + ".update_source");
    if (n["port"]) p.port = uint16_t(uint_field(n["port"], path + ".port", 65535));
    if (auto t = n["timers"]) {
        auto tp = path + ".timers";
        check_keys(t, tp, {"hold", "keepalive", "connect_retry"});
        if (t["hold"]) p.timers.hold = uint16_t(uint_field(t["hold"], tp + ".hold", 65535));
        if (p.timers.hold == 1 || p.timers.hold == 2)
            fail(tp + ".hold", "must be 0 or at least 3 seconds (RFC 4271 4.2)");
        p.timers.keepalive = p.timers.hold / 3;
        if (t["keepalive"])
            p.timers.keepalive = uint16_t(uint_field(t["keepalive"], tp + ".keepalive", 65535));
        if (p.timers.hold && p.timers.keepalive > p.timers.hold)
            fail(tp + ".keepalive", "larger than the hold time");
        if (t["connect_retry"]) {
            p.timers.connect_retry =
                uint16_t(uint_field(t["connect_retry"], tp + ".connect_retry", 65535));
            if (!p.timers.connect_retry) fail(tp + ".connect_retry", "must be at least 1 second");
        }
    }
    if (auto f = n["families"]) {
        if (!f.IsSequence()) fail(path + ".families", "expected a list");
        for (size_t i = 0; i < f.size(); ++i) {
            auto fp = path + ".families[" + std::to_string(i) + "]";
            auto s = scalar(f[i], fp);
            auto fam = family_from_name(s);
            if (!fam) fail(fp, "'" + s + "' is not one of ipv4-unicast, ipv6-unicast, l2vpn-evpn");
            if (std::find(p.families.begin(), p.families.end(), *fam) == p.families.end())
                p.families.push_back(*fam);
        }
        if (p.families.empty()) fail(path + ".families", "empty");
    } else {
        bool v4 = p.address ? p.address->is_v4() : p.range->addr.is_v4();
        p.families.push_back(v4 ? RouteFamily::Ipv4Unicast : RouteFamily::Ipv6Unicast);
    }
    if (n["rr_client"]) p.rr_client = bool_field(n["rr_client"], path + ".rr_client");
    if (n["next_hop_self"])
        p.next_hop_self = bool_field(n["next_hop_self"], path + ".next_hop_self");
    if (n["max_prefix"])
        p.max_prefix = uint32_t(uint_field(n["max_prefix"], path + ".max_prefix", 0xffffffffu));
    if (n["graceful_restart"])
        p.graceful_restart = bool_field(n["graceful_restart"], path + ".graceful_restart");
    if (n["restart_time"])
        p.restart_time = uint16_t(uint_field(n["restart_time"], path + ".restart_time", 4095));
    if (n["refresh_stale_time"]) {
        p.refresh_stale_time =
            uint16_t(uint_field(n["refresh_stale_time"], path + ".refresh_stale_time", 65535));
        if (!p.refresh_stale_time) fail(path + ".refresh_stale_time", "must be at least 1 second");
    }
    if (n["import"]) p.import_policy = policy_field(n["import"], path + ".import");
    if (n["export"]) p.export_policy = policy_field(n["export"], path + ".export");
    return p;
}

std::vector<RouteTarget> targets_field(const YAML::Node &n, const std::string &path) {
    return scalar_list(n, path, "65000:10", "a route target (AS:N, IPv4:N or AS4:N)",
                       [](const std::string &s) { return RouteTarget::parse(s); });
}

// rd, route_targets (both directions), import_targets, export_targets.
template <class T> void rd_rt_fields(const YAML::Node &n, const std::string &path, T &out) {
    if (n["rd"]) {
        auto s = scalar(n["rd"], path + ".rd");
        if (s != "auto") {
            out.rd = RouteDistinguisher::parse(s);
            if (!out.rd) fail(path + ".rd", "'" + s + "' is not a route distinguisher or auto");
        }
    }
    if (n["route_targets"]) {
        out.import_targets = targets_field(n["route_targets"], path + ".route_targets");
        out.export_targets = out.import_targets;
    }
    if (n["import_targets"])
        out.import_targets = targets_field(n["import_targets"], path + ".import_targets");
    if (n["export_targets"])
        out.export_targets = targets_field(n["export_targets"], path + ".export_targets");
}

uint32_t vni_field(const YAML::Node &n, const std::string &path) {
    auto v = uint_field(n, path, 0xffffff);
    if (!v) fail(path, "VNI 0 is not usable");
    return uint32_t(v);
}

EvpnConfig evpn_field(const YAML::Node &n, const std::string &path) {
    check_keys(n, path, {"vtep", "vnis", "vrfs", "duplicate_mac"});
    EvpnConfig e;
    if (n["vtep"]) e.vtep = addr_field(n["vtep"], path + ".vtep");
    if (auto d = n["duplicate_mac"]) {
        auto dp = path + ".duplicate_mac";
        check_keys(d, dp, {"max_moves", "window"});
        if (d["max_moves"])
            e.dup_max_moves = uint32_t(uint_field(d["max_moves"], dp + ".max_moves", 1000));
        if (d["window"]) e.dup_window_s = uint32_t(uint_field(d["window"], dp + ".window", 3600));
        if (e.dup_max_moves < 2) fail(dp + ".max_moves", "must be at least 2");
    }
    std::set<uint32_t> vnis;
    if (auto vrfs = n["vrfs"]) {
        if (!vrfs.IsSequence()) fail(path + ".vrfs", "expected a list");
        std::set<std::string> names;
        for (size_t i = 0; i < vrfs.size(); ++i) {
            auto vp = path + ".vrfs[" + std::to_string(i) + "]";
            YAML::Node y = vrfs[i];
            check_keys(y, vp,
                       {"name", "l3vni", "router_mac", "rd", "route_targets", "import_targets",
                        "export_targets", "prefixes"});
            EvpnVrf v;
            if (!y["name"]) fail(vp + ".name", "missing");
            v.name = scalar(y["name"], vp + ".name");
            if (v.name.empty() || v.name == "default")
                fail(vp + ".name", "give the IP-VRF a name other than default");
            if (!names.insert(v.name).second) fail(vp + ".name", "duplicate VRF " + v.name);
            if (!y["l3vni"]) fail(vp + ".l3vni", "missing");
            v.l3vni = vni_field(y["l3vni"], vp + ".l3vni");
            if (!vnis.insert(v.l3vni).second) fail(vp + ".l3vni", "VNI used twice");
            if (!y["router_mac"]) fail(vp + ".router_mac", "missing");
            auto m = scalar(y["router_mac"], vp + ".router_mac");
            auto mac = MacAddr::parse(m);
            if (!mac || mac->is_zero() || (mac->bytes[0] & 1))
                fail(vp + ".router_mac", "'" + m + "' is not a unicast MAC address");
            v.router_mac = *mac;
            rd_rt_fields(y, vp, v);
            if (auto ps = y["prefixes"]) {
                if (!ps.IsSequence()) fail(vp + ".prefixes", "expected a list of prefixes");
                for (size_t k = 0; k < ps.size(); ++k)
                    v.prefixes.push_back(
                        prefix_field(ps[k], vp + ".prefixes[" + std::to_string(k) + "]"));
            }
            e.vrfs.push_back(std::move(v));
        }
    }
    if (auto ls = n["vnis"]) {
        if (!ls.IsSequence()) fail(path + ".vnis", "expected a list");
        for (size_t i = 0; i < ls.size(); ++i) {
            auto vp = path + ".vnis[" + std::to_string(i) + "]";
            YAML::Node y = ls[i];
            L2Vni v;
            if (y.IsScalar()) {
                v.vni = vni_field(y, vp);
            } else {
                check_keys(
                    y, vp,
                    {"vni", "rd", "route_targets", "import_targets", "export_targets", "vrf"});
                if (!y["vni"]) fail(vp + ".vni", "missing");
                v.vni = vni_field(y["vni"], vp + ".vni");
                rd_rt_fields(y, vp, v);
                if (y["vrf"]) {
                    v.vrf = scalar(y["vrf"], vp + ".vrf");
                    if (!e.vrf(v.vrf))
                        fail(vp + ".vrf", "'" + v.vrf + "' is not one of " + path + ".vrfs");
                }
            }
            if (!vnis.insert(v.vni).second) fail(vp + ".vni", "VNI used twice");
            e.vnis.push_back(std::move(v));
        }
    }
    return e;
}

Announce announce_field(const YAML::Node &n, const std::string &path) {
    Announce a;
    if (n.IsScalar()) {
        a.prefix = prefix_field(n, path);
        return a;
    }
    check_keys(n, path, {"prefix", "communities", "local_pref", "med", "next_hop"});
    if (!n["prefix"]) fail(path + ".prefix", "missing");
    a.prefix = prefix_field(n["prefix"], path + ".prefix");
    if (n["communities"])
        a.communities = communities_field(n["communities"], path + ".communities");
    if (n["local_pref"])
        a.local_pref = uint32_t(uint_field(n["local_pref"], path + ".local_pref", 0xffffffffu));
    if (n["med"]) a.med = uint32_t(uint_field(n["med"], path + ".med", 0xffffffffu));
    if (n["next_hop"]) {
        a.next_hop = addr_field(n["next_hop"], path + ".next_hop");
        if (a.next_hop->family != a.prefix.addr.family)
            fail(path + ".next_hop", "not of the prefix's address family");
    }
    return a;
}

} // namespace

BgpConfig parse_config(const YAML::Node &node, const std::string &path) {
    check_keys(node, path,
               {"asn", "router_id", "cluster_id", "listen_address", "listen_port", "max_paths",
                "multipath_relax", "always_compare_med", "select_defer_time", "peers", "announce",
                "evpn"});
    BgpConfig c;
    if (!node["asn"]) fail(path + ".asn", "missing");
    c.asn = asn_field(node["asn"], path + ".asn");
    if (!node["router_id"]) fail(path + ".router_id", "missing");
    c.router_id = addr_field(node["router_id"], path + ".router_id");
    if (!c.router_id.is_v4() || c.router_id.is_unspecified())
        fail(path + ".router_id", "must be a non-zero IPv4 address (the BGP identifier)");
    if (node["cluster_id"]) {
        auto a = addr_field(node["cluster_id"], path + ".cluster_id");
        if (!a.is_v4()) fail(path + ".cluster_id", "must be an IPv4 address");
        c.cluster_id = a.v4_host();
    }
    if (node["listen_address"]) {
        c.listen_address = scalar(node["listen_address"], path + ".listen_address");
        if (!c.listen_address.empty() && !IpAddr::parse(c.listen_address))
            fail(path + ".listen_address", "'" + c.listen_address + "' is not an IP address");
    }
    if (node["listen_port"])
        c.listen_port = uint16_t(uint_field(node["listen_port"], path + ".listen_port", 65535));
    if (node["max_paths"]) {
        c.max_paths = uint16_t(uint_field(node["max_paths"], path + ".max_paths", 64));
        if (!c.max_paths) fail(path + ".max_paths", "must be at least 1");
    }
    if (node["multipath_relax"])
        c.multipath_relax = bool_field(node["multipath_relax"], path + ".multipath_relax");
    if (node["always_compare_med"])
        c.always_compare_med = bool_field(node["always_compare_med"], path + ".always_compare_med");
    if (node["select_defer_time"]) {
        c.select_defer_time =
            uint16_t(uint_field(node["select_defer_time"], path + ".select_defer_time", 3600));
        if (!c.select_defer_time) fail(path + ".select_defer_time", "must be at least 1 second");
    }
    if (auto peers = node["peers"]) {
        if (!peers.IsSequence()) fail(path + ".peers", "expected a list");
        std::set<std::string> seen;
        for (size_t i = 0; i < peers.size(); ++i) {
            auto pp = path + ".peers[" + std::to_string(i) + "]";
            auto p = peer_field(peers[i], pp);
            if (!seen.insert(p.name()).second) fail(pp, "duplicate neighbor " + p.name());
            c.peers.push_back(std::move(p));
        }
    }
    if (auto ann = node["announce"]) {
        if (!ann.IsSequence()) fail(path + ".announce", "expected a list");
        for (size_t i = 0; i < ann.size(); ++i)
            c.announce.push_back(
                announce_field(ann[i], path + ".announce[" + std::to_string(i) + "]"));
    }
    if (node["evpn"]) {
        c.evpn = evpn_field(node["evpn"], path + ".evpn");
        // Automatic RDs are router-id:VNI, whose number field has 16 bits.
        for (size_t i = 0; i < c.evpn.vnis.size(); ++i)
            if (!c.evpn.vnis[i].rd && c.evpn.vnis[i].vni > 0xffff)
                fail(path + ".evpn.vnis[" + std::to_string(i) + "].rd",
                     "VNI above 65535: give the RD explicitly");
        for (size_t i = 0; i < c.evpn.vrfs.size(); ++i)
            if (!c.evpn.vrfs[i].rd && c.evpn.vrfs[i].l3vni > 0xffff)
                fail(path + ".evpn.vrfs[" + std::to_string(i) + "].rd",
                     "L3VNI above 65535: give the RD explicitly");
    }
    return c;
}

const L2Vni *EvpnConfig::vni(uint32_t v) const {
    for (auto &x : vnis)
        if (x.vni == v) return &x;
    return nullptr;
}

const EvpnVrf *EvpnConfig::vrf(const std::string &name) const {
    for (auto &x : vrfs)
        if (x.name == name) return &x;
    return nullptr;
}

RouteDistinguisher BgpConfig::auto_rd(uint32_t vni) const {
    return {1, router_id.v4_host(), vni & 0xffff};
}

RouteTarget BgpConfig::auto_rt(uint32_t vni) const {
    // FRR's form: the low 16 bits of the AS, the VNI in the 32-bit number.
    return {0, asn & 0xffff, vni};
}

} // namespace vleaf::bgp
