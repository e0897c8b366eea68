#include "control/config/config.hpp"
#include "control/config/evpn.hpp"

#include "config/demo_yaml.hpp"
#include "control/acl/acl.hpp"
#include "control/services/services.hpp"
#include "vleaf/update.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string_view>
#include <sys/un.h>
#include <utility>

namespace vleaf::config {

namespace {

constexpr unsigned kMaxLcore = 128;  // RTE_MAX_LCORE of Debian's DPDK build
constexpr uint32_t kMaxVrfId = 255;  // one LPM pair per VRF: keep the table count bounded
constexpr size_t kMaxNameLen = 32;   // names appear in CLI tables and counters
constexpr size_t kMaxIfNameLen = 15; // IFNAMSIZ - 1, for kernel tap names
constexpr size_t kMaxQueues = 64;    // per port; more than any NIC we target exposes

std::string sub(const std::string &path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string at(const std::string &path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

std::string describe(const YAML::Node &n) {
    switch (n.Type()) {
    case YAML::NodeType::Scalar:
        return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Map:
        return "a mapping";
    default:
        return "nothing";
    }
}

std::string join(const std::vector<std::string> &items, std::string_view sep) {
    std::string out;
    for (const auto &s : items) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

class Checker {
  public:
    explicit Checker(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string &path, const std::string &reason) const {
        throw ConfigError(source_ + ": " + (path.empty() ? "(top level)" : path) + ": " + reason);
    }

    const std::string &source() const { return source_; }

  private:
    std::string source_;
};

// One YAML mapping with a fixed set of allowed keys. Unknown and repeated keys are errors so
// that a typo ("rx_queue") never silently falls back to a default.
class Map {
  public:
    Map(const Checker &c, const YAML::Node &node, std::string path,
        std::initializer_list<std::string_view> allowed)
        : c_(c), path_(std::move(path)) {
        if (!node.IsMap()) c_.fail(path_, "expected a mapping, got " + describe(node));
        for (auto it = node.begin(); it != node.end(); ++it) {
            if (!it->first.IsScalar())
                c_.fail(path_, "mapping keys must be plain names, got " + describe(it->first));
            const std::string &key = it->first.Scalar();
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                std::vector<std::string> names(allowed.begin(), allowed.end());
                c_.fail(sub(path_, key),
                        "unknown key (expected one of: " + join(names, ", ") + ")");
            }
            if (entries_.count(key)) c_.fail(sub(path_, key), "key given twice");
            entries_.emplace(key, it->second);
        }
    }

    const std::string &path() const { return path_; }
    std::string path(std::string_view key) const { return sub(path_, key); }
    bool has(std::string_view key) const { return entries_.count(std::string(key)) != 0; }

    const YAML::Node *get(std::string_view key) const {
        auto it = entries_.find(std::string(key));
        return it == entries_.end() ? nullptr : &it->second;
    }

    const YAML::Node &required(std::string_view key) const {
        if (auto *n = get(key)) return *n;
        c_.fail(path(key), "required field is missing");
    }

    std::string text(std::string_view key, const YAML::Node &n) const {
        if (!n.IsScalar()) c_.fail(path(key), "expected a string, got " + describe(n));
        return n.Scalar();
    }

    void str(std::string_view key, std::string &out) const {
        if (auto *n = get(key)) out = text(key, *n);
    }

    std::string required_str(std::string_view key) const {
        std::string s = text(key, required(key));
        if (s.empty()) c_.fail(path(key), "must not be empty");
        return s;
    }

    template <class T> void num(std::string_view key, T &out, uint64_t min, uint64_t max) const {
        if (auto *n = get(key)) out = static_cast<T>(number(c_, *n, path(key), min, max));
    }

    void flag(std::string_view key, bool &out) const {
        auto *n = get(key);
        if (!n) return;
        if (!n->IsScalar() || !YAML::convert<bool>::decode(*n, out))
            c_.fail(path(key), "expected true or false, got " + describe(*n));
    }

    // A list under `key`: absent means empty, anything but a sequence is an error.
    YAML::Node list(std::string_view key) const {
        auto *n = get(key);
        if (!n) return YAML::Node(YAML::NodeType::Sequence);
        if (!n->IsSequence()) c_.fail(path(key), "expected a list, got " + describe(*n));
        return *n;
    }

    static uint64_t number(const Checker &c, const YAML::Node &n, const std::string &path,
                           uint64_t min, uint64_t max) {
        const std::string range = std::to_string(min) + ".." + std::to_string(max);
        if (!n.IsScalar()) c.fail(path, "expected an integer in " + range + ", got " + describe(n));
        const std::string &s = n.Scalar();
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec == std::errc::invalid_argument || end != s.data() + s.size())
            c.fail(path, "expected an integer in " + range + ", got '" + s + "'");
        if (ec == std::errc::result_out_of_range || v < min || v > max)
            c.fail(path, s + " is out of range " + range);
        return v;
    }

  private:
    const Checker &c_;
    std::string path_;
    std::map<std::string, YAML::Node, std::less<>> entries_;
};

void check_name(const Checker &c, const std::string &path, const std::string &name,
                size_t max_len = kMaxNameLen) {
    if (name.size() > max_len)
        c.fail(path, "'" + name + "' is longer than " + std::to_string(max_len) + " characters");
    for (char ch : name) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok) c.fail(path, "'" + name + "' may only hold letters, digits, '_', '-' and '.'");
    }
}

std::string family_name(const IpAddr &a) {
    return a.is_v4() ? "IPv4" : "IPv6";
}

class Parser {
  public:
    Parser(const Checker &c) : c_(c) {}

    Config run(const YAML::Node &root) {
        Config cfg;
        cfg.source = c_.source();
        if (root.IsNull()) c_.fail("ports", "at least one port is required (the file is empty)");
        Map top(c_, root, "",
                {"log_level", "burst", "mempool", "ports", "interfaces", "workers", "vrfs",
                 "routes", "vxlan", "bridge_domains", "neighbors", "punt_police", "api", "fib",
                 "bgp", "lb", "services", "acls"});
        top.str("log_level", cfg.log_level);
        static const std::vector<std::string> levels{"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};
        if (std::find(levels.begin(), levels.end(), cfg.log_level) == levels.end())
            c_.fail("log_level", "'" + cfg.log_level +
                                     "' is not a log level (one of: " + join(levels, ", ") + ")");
        top.num("burst", cfg.burst, 1, kMaxBurst);
        if (auto *n = top.get("mempool")) cfg.mempool = mempool(*n);
        // Order matters: later sections refer to names defined by earlier ones.
        vrfs(cfg, top.list("vrfs"));
        ports(cfg, top.list("ports"));
        interfaces(cfg, top.list("interfaces"));
        workers(cfg, top.list("workers"));
        if (auto *n = top.get("vxlan")) cfg.vxlan = vxlan(*n);
        routes(cfg, top.list("routes"));
        bridge_domains(cfg, top.list("bridge_domains"));
        check_vni_queues();
        if (auto *n = top.get("neighbors")) cfg.neighbors = neighbors(*n);
        if (auto *n = top.get("punt_police")) cfg.punt_police = punt_police(*n);
        if (auto *n = top.get("api")) cfg.api = api(*n);
        if (auto *n = top.get("fib")) cfg.fib = fib(*n);
        if (auto *n = top.get("bgp")) {
            try {
                cfg.bgp = bgp::parse_config(*n, "bgp");
            } catch (const bgp::BgpConfigError &e) {
                throw ConfigError(c_.source() + ": " + e.what());
            }
        }
        if (auto *n = top.get("lb")) cfg.lb = lb(*n);
        services(cfg, top.list("services"));
        acls(cfg, top.list("acls"));
        link_evpn(cfg);
        return cfg;
    }

  private:
    Mempool mempool(const YAML::Node &n) {
        Map m(c_, n, "mempool", {"mbufs", "cache", "data_room"});
        Mempool p;
        m.num("mbufs", p.mbufs, 512, 1u << 24);
        // rte_mempool caps the per-lcore cache at 512 and at mbufs / 1.5.
        m.num("cache", p.cache, 0, 512);
        if (p.cache * 3 > p.mbufs * 2)
            c_.fail("mempool.cache", std::to_string(p.cache) + " is more than mbufs / 1.5 (" +
                                         std::to_string(p.mbufs * 2 / 3) + ")");
        // At least the 128-byte headroom plus a minimal Ethernet frame.
        m.num("data_room", p.data_room, 256, UINT16_MAX);
        return p;
    }

    void vrfs(Config &cfg, const YAML::Node &list) {
        cfg.vrfs.push_back(Vrf{"default", 0, 1u << 18, 1u << 16, 0, std::nullopt});
        std::map<uint32_t, std::string> ids{{0, "default"}};
        bool default_seen = false;
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("vrfs", i),
                  {"name", "id", "max_routes_v4", "max_routes_v6", "l3vni", "router_mac"});
            Vrf v;
            v.name = m.required_str("name");
            check_name(c_, m.path("name"), v.name);
            if (v.name == "default") {
                if (default_seen) c_.fail(m.path("name"), "VRF 'default' listed twice");
                default_seen = true;
                m.num("id", v.id, 0, 0);
            } else {
                if (cfg.vrf(v.name)) c_.fail(m.path("name"), "VRF '" + v.name + "' listed twice");
                v.id = static_cast<uint32_t>(
                    Map::number(c_, m.required("id"), m.path("id"), 1, kMaxVrfId));
                if (auto it = ids.find(v.id); it != ids.end())
                    c_.fail(m.path("id"),
                            "id " + std::to_string(v.id) + " is already VRF '" + it->second + "'");
                ids.emplace(v.id, v.name);
            }
            m.num("max_routes_v4", v.max_routes_v4, 1, 1u << 24);
            m.num("max_routes_v6", v.max_routes_v6, 1, 1u << 24);
            m.num("l3vni", v.l3vni, 1, kMaxVni);
            if (m.has("router_mac")) v.router_mac = unicast_mac(m, "router_mac");
            if (v.l3vni && !v.router_mac)
                c_.fail(m.path("router_mac"), "required with l3vni (the inner destination MAC "
                                              "remote VTEPs send routed packets to)");
            if (v.router_mac && !v.l3vni) c_.fail(m.path("l3vni"), "required with router_mac");
            if (v.l3vni) claim_vni(v.l3vni, m.path("l3vni"), "VRF '" + v.name + "'");
            if (v.name == "default")
                cfg.vrfs.front() = v;
            else
                cfg.vrfs.push_back(v);
        }
    }

    void ports(Config &cfg, const YAML::Node &list) {
        if (list.size() == 0) c_.fail("ports", "at least one port is required");
        std::map<std::string, std::string> devices;
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("ports", i),
                  {"name", "device", "rx_queues", "rx_desc", "tx_desc", "rss", "promiscuous",
                   "offload"});
            Port p;
            p.name = m.required_str("name");
            check_name(c_, m.path("name"), p.name);
            if (cfg.port(p.name)) c_.fail(m.path("name"), "port '" + p.name + "' listed twice");
            p.device = m.required_str("device");
            if (auto it = devices.find(p.device); it != devices.end())
                c_.fail(m.path("device"),
                        "'" + p.device + "' is already port '" + it->second + "'");
            devices.emplace(p.device, p.name);
            m.num("rx_queues", p.rx_queues, 1, kMaxQueues);
            m.num("rx_desc", p.rx_desc, 32, 32768);
            m.num("tx_desc", p.tx_desc, 32, 32768);
            m.flag("rss", p.rss);
            m.flag("promiscuous", p.promiscuous);
            m.flag("offload", p.offload);
            cfg.ports.push_back(p);
        }
    }

    std::vector<Prefix> addresses(const Map &m, std::string_view key, Family family) {
        std::vector<Prefix> out;
        YAML::Node list = m.list(key);
        for (size_t j = 0; j < list.size(); j++) {
            std::string path = at(m.path(key), j);
            if (!list[j].IsScalar()) c_.fail(path, "expected an address, got " + describe(list[j]));
            const std::string &s = list[j].Scalar();
            auto p = Prefix::parse(s, true);
            if (!p) c_.fail(path, "'" + s + "' is not an address with prefix length");
            if (s.find('/') == std::string::npos) {
                std::string why = "'" + s + "' has no prefix length (as in ";
                why.append(s).append(p->addr.is_v4() ? "/24)" : "/64)");
                c_.fail(path, why);
            }
            if (p->addr.family != family)
                c_.fail(path, "'" + s + "' is not an " +
                                  std::string(family == Family::V4 ? "IPv4" : "IPv6") + " address");
            // In a v4 subnet larger than /31 the all-zeros host is the subnet itself.
            if (p->addr.is_v4() && p->len < 31 && p->masked().addr == p->addr)
                c_.fail(path, "'" + s + "' is the subnet address, not a host address");
            for (const auto &q : out)
                if (q.addr == p->addr) c_.fail(path, "'" + s + "' listed twice");
            out.push_back(*p);
        }
        return out;
    }

    void interfaces(Config &cfg, const YAML::Node &list) {
        std::map<std::string, std::string> port_owner; // port -> interface
        std::map<std::string, std::string> taps;       // tap -> interface
        struct Subnet {
            std::string vrf, ifname;
            Prefix p;
        };
        std::vector<Subnet> subnets;
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("interfaces", i),
                  {"name", "port", "vrf", "mtu", "ipv4", "ipv6", "mac", "tap"});
            Interface itf;
            itf.name = m.required_str("name");
            check_name(c_, m.path("name"), itf.name);
            for (const auto &o : cfg.interfaces)
                if (o.name == itf.name)
                    c_.fail(m.path("name"), "interface '" + itf.name + "' listed twice");
            itf.port = m.required_str("port");
            if (!cfg.port(itf.port)) c_.fail(m.path("port"), "unknown port '" + itf.port + "'");
            if (auto it = port_owner.find(itf.port); it != port_owner.end())
                c_.fail(m.path("port"), "port '" + itf.port + "' is already used by interface '" +
                                            it->second + "'");
            port_owner.emplace(itf.port, itf.name);
            m.str("vrf", itf.vrf);
            if (!cfg.vrf(itf.vrf)) c_.fail(m.path("vrf"), "unknown VRF '" + itf.vrf + "'");
            m.num("mtu", itf.mtu, 68, 9216);
            itf.ipv4 = addresses(m, "ipv4", Family::V4);
            itf.ipv6 = addresses(m, "ipv6", Family::V6);
            if (!itf.ipv6.empty() && itf.mtu < 1280)
                c_.fail(m.path("mtu"),
                        "IPv6 needs an MTU of at least 1280, got " + std::to_string(itf.mtu));
            if (m.has("mac")) itf.mac = unicast_mac(m, "mac");
            m.str("tap", itf.tap);
            if (!itf.tap.empty()) {
                check_name(c_, m.path("tap"), itf.tap, kMaxIfNameLen);
                if (auto it = taps.find(itf.tap); it != taps.end())
                    c_.fail(m.path("tap"), "tap '" + itf.tap + "' is already used by interface '" +
                                               it->second + "'");
                taps.emplace(itf.tap, itf.name);
            }
            // Overlapping connected subnets in one VRF would make the connected route ambiguous.
            for (auto [key, addrs] : {std::pair{"ipv4", &itf.ipv4}, std::pair{"ipv6", &itf.ipv6}}) {
                for (size_t j = 0; j < addrs->size(); j++) {
                    const Prefix &p = (*addrs)[j];
                    for (const auto &o : subnets)
                        if (o.vrf == itf.vrf && o.p.addr.family == p.addr.family &&
                            (o.p.masked().contains(p.addr) || p.masked().contains(o.p.addr)))
                            c_.fail(at(m.path(key), j), p.str() + " overlaps " + o.p.str() +
                                                            " of interface '" + o.ifname +
                                                            "' in VRF '" + itf.vrf + "'");
                }
            }
            for (const auto *addrs : {&itf.ipv4, &itf.ipv6})
                for (const auto &p : *addrs) subnets.push_back({itf.vrf, itf.name, p});
            cfg.interfaces.push_back(itf);
        }
    }

    void workers(Config &cfg, const YAML::Node &list) {
        std::map<unsigned, size_t> lcores;                        // lcore -> worker index
        std::map<std::pair<std::string, uint16_t>, size_t> owner; // (port, queue) -> worker
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("workers", i), {"lcore", "rx"});
            Worker w;
            w.lcore = static_cast<unsigned>(
                Map::number(c_, m.required("lcore"), m.path("lcore"), 0, kMaxLcore - 1));
            if (auto it = lcores.find(w.lcore); it != lcores.end())
                c_.fail(m.path("lcore"), "lcore " + std::to_string(w.lcore) +
                                             " is already used by workers[" +
                                             std::to_string(it->second) + "]");
            lcores.emplace(w.lcore, i);
            m.required("rx");
            YAML::Node rx = m.list("rx");
            if (rx.size() == 0) c_.fail(m.path("rx"), "a worker needs at least one rx queue");
            for (size_t j = 0; j < rx.size(); j++) {
                Map q(c_, rx[j], at(m.path("rx"), j), {"port", "queue"});
                RxQueue r;
                r.port = q.required_str("port");
                const Port *p = cfg.port(r.port);
                if (!p) c_.fail(q.path("port"), "unknown port '" + r.port + "'");
                q.num("queue", r.queue, 0, kMaxQueues - 1);
                if (r.queue >= p->rx_queues)
                    c_.fail(q.path("queue"),
                            "queue " + std::to_string(r.queue) + " but port '" + r.port +
                                "' has rx_queues: " + std::to_string(p->rx_queues));
                auto key = std::make_pair(r.port, r.queue);
                if (auto it = owner.find(key); it != owner.end())
                    c_.fail(q.path("queue"), "port '" + r.port + "' queue " +
                                                 std::to_string(r.queue) +
                                                 " is already served by workers[" +
                                                 std::to_string(it->second) + "]");
                owner.emplace(key, i);
                w.rx.push_back(r);
            }
            cfg.workers.push_back(w);
        }
        // An rx queue nobody polls fills up and silently drops what RSS steers to it.
        if (cfg.workers.empty()) return;
        for (const auto &p : cfg.ports)
            for (uint16_t q = 0; q < p.rx_queues; q++)
                if (!owner.count({p.name, q}))
                    c_.fail("workers", "port '" + p.name + "' rx queue " + std::to_string(q) +
                                           " is served by no worker");
    }

    void routes(Config &cfg, const YAML::Node &list) {
        std::map<std::pair<std::string, Prefix>, size_t> seen;
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("routes", i),
                  {"prefix", "via", "dev", "blackhole", "vrf", "vtep", "router_mac", "vni"});
            Route r;
            m.str("vrf", r.vrf);
            if (!cfg.vrf(r.vrf)) c_.fail(m.path("vrf"), "unknown VRF '" + r.vrf + "'");
            std::string s = m.required_str("prefix");
            auto p = Prefix::parse(s, true);
            if (!p) c_.fail(m.path("prefix"), "'" + s + "' is not an IP prefix");
            if (s.find('/') == std::string::npos)
                c_.fail(m.path("prefix"), "'" + s + "' has no prefix length");
            if (p->masked() != *p)
                c_.fail(m.path("prefix"),
                        "'" + s + "' has host bits set (did you mean " + p->masked().str() + "?)");
            r.prefix = *p;
            if (auto it = seen.find({r.vrf, r.prefix}); it != seen.end())
                c_.fail(m.path("prefix"), r.prefix.str() + " in VRF '" + r.vrf +
                                              "' is already routes[" + std::to_string(it->second) +
                                              "]");
            seen.emplace(std::make_pair(r.vrf, r.prefix), i);

            std::vector<std::string> kinds;
            for (auto k : {"via", "dev", "blackhole", "vtep"})
                if (m.has(k)) kinds.emplace_back(k);
            if (kinds.size() != 1)
                c_.fail(m.path(), "a route needs exactly one of via, dev, blackhole, vtep" +
                                      (kinds.empty() ? std::string(" (none given)")
                                                     : " (got " + join(kinds, " and ") + ")"));
            if (m.has("via")) gateways(m, r);
            if (m.has("dev")) {
                r.dev = m.required_str("dev");
                auto itf = std::find_if(cfg.interfaces.begin(), cfg.interfaces.end(),
                                        [&](const Interface &x) { return x.name == r.dev; });
                if (itf == cfg.interfaces.end())
                    c_.fail(m.path("dev"), "unknown interface '" + r.dev + "'");
                if (itf->vrf != r.vrf)
                    c_.fail(m.path("dev"), "interface '" + r.dev + "' is in VRF '" + itf->vrf +
                                               "', the route in VRF '" + r.vrf + "'");
            }
            if (m.has("vtep")) tunnel_route(cfg, m, r);
            for (auto k : {"router_mac", "vni"})
                if (m.has(k) && !m.has("vtep"))
                    c_.fail(m.path(k), "only a route with vtep has this");
            if (m.has("blackhole")) {
                m.flag("blackhole", r.blackhole);
                if (!r.blackhole)
                    c_.fail(m.path("blackhole"),
                            "only 'true' makes sense; give via or dev instead");
            }
            cfg.routes.push_back(r);
        }
    }

    // `via` is a list of gateways (ECMP when several); a single address is accepted as well.
    void gateways(const Map &m, Route &r) {
        const YAML::Node &n = *m.get("via");
        std::vector<std::pair<std::string, YAML::Node>> items;
        if (n.IsScalar()) {
            items.emplace_back(m.path("via"), n);
        } else if (n.IsSequence()) {
            for (size_t j = 0; j < n.size(); j++) items.emplace_back(at(m.path("via"), j), n[j]);
        } else {
            c_.fail(m.path("via"), "expected a list of gateway addresses, got " + describe(n));
        }
        if (items.empty()) c_.fail(m.path("via"), "needs at least one gateway");
        if (items.size() > kMaxEcmp)
            c_.fail(m.path("via"), std::to_string(items.size()) + " gateways, at most " +
                                       std::to_string(kMaxEcmp) + " (the ECMP width)");
        for (const auto &[path, g] : items) {
            if (!g.IsScalar()) c_.fail(path, "expected an IP address, got " + describe(g));
            auto a = IpAddr::parse(g.Scalar());
            if (!a) c_.fail(path, "'" + g.Scalar() + "' is not an IP address");
            if (a->family != r.prefix.addr.family)
                c_.fail(path, family_name(*a) + " gateway " + a->str() + " for " +
                                  family_name(r.prefix.addr) + " prefix " + r.prefix.str());
            if (a->is_unspecified()) c_.fail(path, a->str() + " is not a usable gateway");
            if (std::find(r.via.begin(), r.via.end(), *a) != r.via.end())
                c_.fail(path, a->str() + " listed twice");
            r.via.push_back(*a);
        }
    }

    MacAddr unicast_mac(const Map &m, std::string_view key) {
        std::string s = m.text(key, *m.get(key));
        auto mac = MacAddr::parse(s);
        if (!mac) c_.fail(m.path(key), "'" + s + "' is not a MAC address");
        if (mac->is_zero() || (mac->bytes[0] & 1))
            c_.fail(m.path(key), "'" + s + "' is not a unicast MAC address");
        return *mac;
    }

    IpAddr address(const std::string &path, const YAML::Node &n) {
        if (!n.IsScalar()) c_.fail(path, "expected an IP address, got " + describe(n));
        auto a = IpAddr::parse(n.Scalar());
        if (!a) c_.fail(path, "'" + n.Scalar() + "' is not an IP address");
        if (a->is_unspecified()) c_.fail(path, a->str() + " is not a usable address");
        return *a;
    }

    // A remote VTEP: reachable only from a local VTEP address of the same family.
    IpAddr vtep_address(const Config &cfg, const std::string &path, const YAML::Node &n) {
        IpAddr a = address(path, n);
        if (!cfg.vxlan) c_.fail(path, "a VXLAN tunnel needs the vxlan section (our VTEP address)");
        if (!(a.is_v4() ? cfg.vxlan->source4 : cfg.vxlan->source6))
            c_.fail(path, "remote VTEP " + a.str() + " is " + family_name(a) +
                              " but vxlan has no " + family_name(a) + " source");
        return a;
    }

    // VNIs name exactly one bridge domain or VRF.
    void claim_vni(uint32_t vni, const std::string &path, const std::string &owner) {
        if (auto it = vnis_.find(vni); it != vnis_.end())
            c_.fail(path, "VNI " + std::to_string(vni) + " is already " + it->second);
        vnis_.emplace(vni, owner);
    }

    void tunnel_route(const Config &cfg, const Map &m, Route &r) {
        r.vtep = vtep_address(cfg, m.path("vtep"), *m.get("vtep"));
        if (!m.has("router_mac"))
            c_.fail(m.path("router_mac"), "required with vtep (the remote VTEP's router MAC)");
        r.router_mac = unicast_mac(m, "router_mac");
        r.vni = cfg.vrf(r.vrf)->l3vni;
        m.num("vni", r.vni, 1, kMaxVni);
        if (r.vni == 0)
            c_.fail(m.path("vni"), "VRF '" + r.vrf + "' has no l3vni: give the route's vni");
    }

    Vxlan vxlan(const YAML::Node &n) {
        Map m(c_, n, "vxlan",
              {"source", "source6", "udp_port", "src_port_min", "src_port_max", "ttl", "df",
               "mac_aging_s", "vni_queues"});
        Vxlan v;
        for (auto [key, fam] :
             {std::pair{"source", Family::V4}, std::pair{"source6", Family::V6}}) {
            if (!m.has(key)) continue;
            IpAddr a = address(m.path(key), *m.get(key));
            if (a.family != fam)
                c_.fail(m.path(key), a.str() + " is not an " +
                                         std::string(fam == Family::V4 ? "IPv4" : "IPv6") +
                                         " address");
            (fam == Family::V4 ? v.source4 : v.source6) = a;
        }
        if (!v.source4 && !v.source6)
            c_.fail(m.path("source"), "our VTEP address is required (source and/or source6)");
        m.num("udp_port", v.udp_port, 1, UINT16_MAX);
        m.num("src_port_min", v.src_port_min, 1, UINT16_MAX);
        m.num("src_port_max", v.src_port_max, 1, UINT16_MAX);
        if (v.src_port_min > v.src_port_max)
            c_.fail(m.path("src_port_max"), std::to_string(v.src_port_max) +
                                                " is below src_port_min " +
                                                std::to_string(v.src_port_min));
        m.num("ttl", v.ttl, 1, 255);
        m.flag("df", v.df);
        m.num("mac_aging_s", v.mac_aging_s, 10, uint64_t{24} * 3600);
        YAML::Node queues = m.list("vni_queues");
        for (size_t i = 0; i < queues.size(); i++) {
            Map q(c_, queues[i], at("vxlan.vni_queues", i), {"vni", "queue"});
            uint32_t vni = 0;
            uint16_t queue = 0;
            q.num("vni", vni, 1, kMaxVni);
            if (!q.has("vni")) c_.fail(q.path("vni"), "required field is missing");
            q.num("queue", queue, 0, kMaxQueues - 1);
            if (!q.has("queue")) c_.fail(q.path("queue"), "required field is missing");
            if (!v.vni_queues.emplace(vni, queue).second)
                c_.fail(q.path("vni"), std::to_string(vni) + " is listed twice");
            queue_vnis_.emplace_back(vni, q.path("vni"));
        }
        return v;
    }

    // After the bridge domains: every VNI given a queue must be one of ours.
    void check_vni_queues() {
        for (const auto &[vni, path] : queue_vnis_)
            if (!vnis_.count(vni))
                c_.fail(path,
                        std::to_string(vni) + " is neither a bridge domain's VNI nor an l3vni");
    }

    void bridge_domains(Config &cfg, const YAML::Node &list) {
        std::map<std::pair<std::string, uint16_t>, std::string> access_owner;
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("bridge_domains", i),
                  {"vni", "vrf", "gateway_mac", "gateway_ipv4", "gateway_ipv6", "access", "flood",
                   "macs"});
            if (!cfg.vxlan) c_.fail(m.path(), "bridge domains need the vxlan section");
            BridgeDomain bd;
            bd.vni = static_cast<uint32_t>(
                Map::number(c_, m.required("vni"), m.path("vni"), 1, kMaxVni));
            claim_vni(bd.vni, m.path("vni"), "bridge_domains[" + std::to_string(i) + "]");
            m.str("vrf", bd.vrf);
            if (!cfg.vrf(bd.vrf)) c_.fail(m.path("vrf"), "unknown VRF '" + bd.vrf + "'");
            if (m.has("gateway_mac")) bd.gateway_mac = unicast_mac(m, "gateway_mac");
            bd.gateway_ipv4 = addresses(m, "gateway_ipv4", Family::V4);
            bd.gateway_ipv6 = addresses(m, "gateway_ipv6", Family::V6);
            bool has_ip = !bd.gateway_ipv4.empty() || !bd.gateway_ipv6.empty();
            if (has_ip && !bd.gateway_mac)
                c_.fail(m.path("gateway_mac"), "required with gateway addresses (the anycast MAC)");
            if (bd.gateway_mac && !has_ip)
                c_.fail(m.path("gateway_ipv4"), "a gateway needs at least one address");
            gateway_overlaps(cfg, m, bd);
            YAML::Node acc = m.list("access");
            for (size_t j = 0; j < acc.size(); j++) {
                Map a(c_, acc[j], at(m.path("access"), j), {"port", "vlan"});
                AccessPort ap;
                ap.port = a.required_str("port");
                if (!cfg.port(ap.port)) c_.fail(a.path("port"), "unknown port '" + ap.port + "'");
                a.num("vlan", ap.vlan, 0, 4094);
                if (ap.vlan == 0)
                    for (const auto &itf : cfg.interfaces)
                        if (itf.port == ap.port)
                            c_.fail(a.path("port"), "untagged frames of port '" + ap.port +
                                                        "' are routed by interface '" + itf.name +
                                                        "' (give a vlan)");
                auto key = std::make_pair(ap.port, ap.vlan);
                std::string me = "bridge_domains[" + std::to_string(i) + "]";
                if (auto it = access_owner.find(key); it != access_owner.end())
                    c_.fail(a.path("vlan"), "port '" + ap.port + "' vlan " +
                                                std::to_string(ap.vlan) + " is already in " +
                                                it->second);
                access_owner.emplace(key, me);
                bd.access.push_back(ap);
            }
            YAML::Node fl = m.list("flood");
            for (size_t j = 0; j < fl.size(); j++) {
                IpAddr a = vtep_address(cfg, at(m.path("flood"), j), fl[j]);
                if (std::find(bd.flood.begin(), bd.flood.end(), a) != bd.flood.end())
                    c_.fail(at(m.path("flood"), j), a.str() + " listed twice");
                bd.flood.push_back(a);
            }
            YAML::Node macs = m.list("macs");
            for (size_t j = 0; j < macs.size(); j++) {
                Map e(c_, macs[j], at(m.path("macs"), j), {"mac", "vtep", "ips"});
                RemoteMac rm;
                e.required("mac");
                rm.mac = unicast_mac(e, "mac");
                for (const auto &o : bd.macs)
                    if (o.mac == rm.mac) c_.fail(e.path("mac"), rm.mac.str() + " listed twice");
                rm.vtep = vtep_address(cfg, e.path("vtep"), e.required("vtep"));
                YAML::Node ips = e.list("ips");
                for (size_t k = 0; k < ips.size(); k++)
                    rm.ips.push_back(address(at(e.path("ips"), k), ips[k]));
                bd.macs.push_back(rm);
            }
            cfg.bridge_domains.push_back(bd);
        }
    }

    // A gateway subnet is a connected subnet of its VRF: it must not overlap another.
    void gateway_overlaps(const Config &cfg, const Map &m, const BridgeDomain &bd) {
        for (auto [key, addrs] : {std::pair{"gateway_ipv4", &bd.gateway_ipv4},
                                  std::pair{"gateway_ipv6", &bd.gateway_ipv6}})
            for (size_t j = 0; j < addrs->size(); j++) {
                const Prefix &p = (*addrs)[j];
                auto clash = [&](const Prefix &o) {
                    return o.addr.family == p.addr.family &&
                           (o.masked().contains(p.addr) || p.masked().contains(o.addr));
                };
                for (const auto &itf : cfg.interfaces)
                    for (const auto *os : {&itf.ipv4, &itf.ipv6})
                        for (const auto &o : *os)
                            if (itf.vrf == bd.vrf && clash(o))
                                c_.fail(at(m.path(key), j), p.str() + " overlaps " + o.str() +
                                                                " of interface '" + itf.name + "'");
                for (const auto &ob : cfg.bridge_domains)
                    for (const auto *os : {&ob.gateway_ipv4, &ob.gateway_ipv6})
                        for (const auto &o : *os)
                            if (ob.vrf == bd.vrf && clash(o))
                                c_.fail(at(m.path(key), j), p.str() + " overlaps gateway " +
                                                                o.str() + " of VNI " +
                                                                std::to_string(ob.vni));
            }
    }

    Neighbors neighbors(const YAML::Node &n) {
        Map m(c_, n, "neighbors", {"reachable_ms", "retrans_ms", "retries", "hold_packets"});
        Neighbors nb;
        m.num("reachable_ms", nb.reachable_ms, 1000, uint64_t{3600} * 1000);
        m.num("retrans_ms", nb.retrans_ms, 10, uint64_t{60} * 1000);
        m.num("retries", nb.retries, 1, 100);
        m.num("hold_packets", nb.hold_packets, 0, 256);
        return nb;
    }

    PuntPolice punt_police(const YAML::Node &n) {
        Map m(c_, n, "punt_police", {"arp_nd", "host", "bgp"});
        PuntPolice p;
        // At least 1/s: a class cannot be shut off, or resolution and BGP would stop.
        m.num("arp_nd", p.arp_nd, 1, 10'000'000);
        m.num("host", p.host, 1, 10'000'000);
        m.num("bgp", p.bgp, 1, 10'000'000);
        return p;
    }

    FibRings fib(const YAML::Node &n) {
        Map m(c_, n, "fib", {"ring_size", "backlog_limit"});
        FibRings f;
        m.num("ring_size", f.ring_size, 2, 1u << 24);
        m.num("backlog_limit", f.backlog_limit, 1, 1u << 26);
        return f;
    }

    Api api(const YAML::Node &n) {
        Map m(c_, n, "api", {"socket"});
        Api a;
        m.str("socket", a.socket);
        if (a.socket.empty() || a.socket.front() != '/')
            c_.fail("api.socket", "'" + a.socket + "' is not an absolute path");
        if (a.socket.size() >= sizeof(sockaddr_un::sun_path))
            c_.fail("api.socket", "path is longer than " +
                                      std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                      " bytes (the Unix socket limit)");
        return a;
    }

    LbLimits lb(const YAML::Node &n) {
        Map m(c_, n, "lb", {"flows_per_worker", "idle_timeout_s"});
        LbLimits l;
        m.num("flows_per_worker", l.flows_per_worker, 1024, 1u << 26);
        m.num("idle_timeout_s", l.idle_timeout_s, 1, 86400);
        return l;
    }

    IpAddr address(const Map &m, std::string_view key, const YAML::Node &n) {
        std::string s = m.text(key, n);
        auto a = IpAddr::parse(s);
        if (!a) c_.fail(m.path(key), "'" + s + "' is not an IP address");
        return *a;
    }

    void services(Config &cfg, const YAML::Node &list) {
        svc::Registry dry_run({}); // the registry's own checks: conflicts between services
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("services", i),
                  {"name", "vrf", "vip", "proto", "port", "mode", "encap_source", "table_size",
                   "announce", "health", "backends"});
            Service s;
            s.name = m.required_str("name");
            m.str("vrf", s.vrf);
            if (!cfg.vrf(s.vrf)) c_.fail(m.path("vrf"), "unknown VRF '" + s.vrf + "'");
            s.vip = address(m, "vip", m.required("vip"));
            std::string proto = "tcp";
            m.str("proto", proto);
            if (proto != "tcp" && proto != "udp")
                c_.fail(m.path("proto"), "'" + proto + "' is not tcp or udp");
            s.proto = proto == "tcp" ? 6 : 17;
            s.port = static_cast<uint16_t>(
                Map::number(c_, m.required("port"), m.path("port"), 1, 65535));
            std::string mode = "dnat";
            m.str("mode", mode);
            if (mode != "dnat" && mode != "dsr")
                c_.fail(m.path("mode"), "'" + mode + "' is not dnat or dsr");
            s.mode = mode == "dnat" ? LbMode::Dnat : LbMode::DsrIpip;
            if (auto *n = m.get("encap_source")) s.encap_source = address(m, "encap_source", *n);
            m.num("table_size", s.table_size, 0, UINT32_MAX);
            if (auto *n = m.get("announce")) {
                Map a(c_, *n, m.path("announce"), {"enabled", "communities", "local_pref"});
                a.flag("enabled", s.announce.enabled);
                a.num("local_pref", s.announce.local_pref, 0, UINT32_MAX);
                YAML::Node cs = a.list("communities");
                for (size_t j = 0; j < cs.size(); j++) {
                    auto c = cs[j].IsScalar() ? svc::parse_community(cs[j].Scalar()) : std::nullopt;
                    if (!c)
                        c_.fail(at(a.path("communities"), j),
                                describe(cs[j]) + " is not AS:value (two 16-bit numbers)");
                    s.announce.communities.push_back(*c);
                }
            }
            if (auto *n = m.get("health")) {
                Map h(c_, *n, m.path("health"),
                      {"tcp", "interval_ms", "timeout_ms", "rise", "fall"});
                h.flag("tcp", s.health.tcp);
                h.num("interval_ms", s.health.interval_ms, 100, 3600000);
                h.num("timeout_ms", s.health.timeout_ms, 10, 3600000);
                h.num("rise", s.health.rise, 1, 100);
                h.num("fall", s.health.fall, 1, 100);
            }
            YAML::Node bs = m.list("backends");
            for (size_t j = 0; j < bs.size(); j++) {
                Map b(c_, bs[j], at(m.path("backends"), j), {"ip", "port", "node", "weight", "up"});
                ServiceBackend be;
                be.addr = address(b, "ip", b.required("ip"));
                be.port = s.port;
                b.num("port", be.port, 1, 65535);
                if (auto *n = b.get("node")) be.node = address(b, "node", *n);
                b.num("weight", be.weight, 0, 65535);
                b.flag("up", be.up);
                s.backends.push_back(be);
            }
            try {
                dry_run.add(s);
            } catch (const svc::ServiceError &e) {
                c_.fail(m.path(), e.what());
            }
            cfg.services.push_back(std::move(s));
        }
    }

    // A mapping's scalars as ACL fields; the registry's checks name the field.
    acl::Fields fields(const Map &m) {
        return [this, &m](const char *key) -> std::optional<std::string> {
            auto *n = m.get(key);
            if (!n) return std::nullopt;
            if (!n->IsScalar()) c_.fail(m.path(key), "expected a value, got " + describe(*n));
            return n->Scalar();
        };
    }

    void acls(Config &cfg, const YAML::Node &list) {
        acl::Registry dry_run(
            {[](uint32_t, const acl::Policy &) { return std::vector<uint64_t>{}; }, [](uint32_t) {},
             nullptr});
        for (size_t i = 0; i < list.size(); i++) {
            Map m(c_, list[i], at("acls", i),
                  {"name", "direction", "interface", "vrf", "default", "rules"});
            acl::Policy p;
            try {
                p = acl::policy_from(fields(m));
            } catch (const acl::AclError &e) {
                c_.fail(m.path(), e.what());
            }
            if (!p.interface.empty() &&
                std::none_of(cfg.interfaces.begin(), cfg.interfaces.end(),
                             [&](const Interface &itf) { return itf.name == p.interface; }))
                c_.fail(m.path("interface"), "unknown interface '" + p.interface + "'");
            if (!p.vrf.empty() && !cfg.vrf(p.vrf))
                c_.fail(m.path("vrf"), "unknown VRF '" + p.vrf + "'");
            YAML::Node rules = m.list("rules");
            for (size_t j = 0; j < rules.size(); j++) {
                Map r(c_, rules[j], at(m.path("rules"), j),
                      {"id", "src", "dst", "family", "proto", "sport", "dport", "icmp_type",
                       "priority", "action"});
                try {
                    p.rules.push_back(acl::rule_from(fields(r)));
                } catch (const acl::AclError &e) {
                    c_.fail(r.path(), e.what());
                }
            }
            try {
                dry_run.add_policy(p);
            } catch (const acl::AclError &e) {
                c_.fail(m.path(), e.what());
            }
            cfg.acls.push_back(std::move(p));
        }
    }

    const Checker &c_;
    std::map<uint32_t, std::string> vnis_;                     // VNI -> what it is, for duplicates
    std::vector<std::pair<uint32_t, std::string>> queue_vnis_; // vxlan.vni_queues, with paths
};

} // namespace

const Port *Config::port(const std::string &name) const {
    for (const auto &p : ports)
        if (p.name == name) return &p;
    return nullptr;
}

const Vrf *Config::vrf(const std::string &name) const {
    for (const auto &v : vrfs)
        if (v.name == name) return &v;
    return nullptr;
}

Config parse(const std::string &yaml_text, const std::string &source) {
    Checker c(source);
    YAML::Node root;
    try {
        root = YAML::Load(yaml_text);
    } catch (const YAML::ParserException &e) {
        throw ConfigError(source + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                          std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    return Parser(c).run(root);
}

Config load_file(const std::string &path) {
    std::ifstream in(path);
    if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
    return parse(text.str(), path);
}

const char *embedded_default_text() {
    return kDemoYaml;
}

Config embedded_default() {
    return parse(kDemoYaml, "<embedded default>");
}

} // namespace vleaf::config
