#include "control/services/services.hpp"

#include "control/services/maglev.hpp"

#include <algorithm>
#include <charconv>
#include <netinet/in.h>

namespace vleaf {

const char *lb_mode_name(LbMode m) {
    return m == LbMode::Dnat ? "dnat" : "dsr";
}

const char *proto_name(uint8_t proto) {
    switch (proto) {
    case IPPROTO_TCP:
        return "tcp";
    case IPPROTO_UDP:
        return "udp";
    case IPPROTO_ICMP:
        return "icmp";
    case IPPROTO_ICMPV6:
        return "icmpv6";
    case IPPROTO_SCTP:
        return "sctp";
    default:
        return "other";
    }
}

} // namespace vleaf

namespace vleaf::svc {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string &field, const std::string &reason) {
    throw ServiceError(field + ": " + reason);
}

constexpr uint32_t kMaxTableSize = 1u << 24;
constexpr uint32_t kMaxWeight = 65535;

std::string endpoint(const IpAddr &a, uint16_t port) {
    std::string out;
    if (a.is_v4()) {
        out = a.str();
    } else {
        out = "[";
        out.append(a.str()).append("]");
    }
    out += ':';
    out += std::to_string(port);
    return out;
}

// vleafctl sends integers as JSON numbers and everything else as strings.
std::optional<std::string> text(const json &args, const char *key) {
    auto it = args.find(key);
    if (it == args.end()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
    bad(key, "expected a string, got " + it->dump());
}

std::optional<uint64_t> number(const json &args, const char *key, uint64_t lo, uint64_t hi) {
    auto s = text(args, key);
    if (!s) return std::nullopt;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (s->empty() || ec != std::errc() || end != s->data() + s->size() || v < lo || v > hi)
        bad(key,
            "'" + *s + "' is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
}

std::optional<bool> boolean(const json &args, const char *key) {
    auto it = args.find(key);
    if (it == args.end()) return std::nullopt;
    if (it->is_boolean()) return it->get<bool>();
    bad(key, "expected true or false, got " + it->dump());
}

IpAddr address(const json &args, const char *key) {
    auto s = text(args, key);
    if (!s) bad(key, "required");
    auto a = IpAddr::parse(*s);
    if (!a) bad(key, "'" + *s + "' is not an IP address");
    return *a;
}

void check_name(const std::string &field, const std::string &name) {
    if (name.empty()) bad(field, "must not be empty");
    if (name.size() > 32) bad(field, "'" + name + "' is longer than 32 characters");
    for (char c : name)
        if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
            bad(field, "'" + name + "' may only hold letters, digits, '_', '-' and '.'");
}

bool unicast(const IpAddr &a) {
    if (a.is_unspecified()) return false;
    if (a.is_v4()) return (a.bytes[0] >> 4) != 0xe && a.v4_host() != 0xffffffff;
    return a.bytes[0] != 0xff;
}

} // namespace

std::optional<uint32_t> parse_community(const std::string &s) {
    auto colon = s.find(':');
    if (colon == std::string::npos) return std::nullopt;
    uint32_t hi = 0, lo = 0;
    auto a = std::from_chars(s.data(), s.data() + colon, hi);
    auto b = std::from_chars(s.data() + colon + 1, s.data() + s.size(), lo);
    if (a.ec != std::errc() || a.ptr != s.data() + colon || b.ec != std::errc() ||
        b.ptr != s.data() + s.size() || hi > 65535 || lo > 65535)
        return std::nullopt;
    return hi << 16 | lo;
}

void validate(const Service &s) {
    check_name("name", s.name);
    if (!unicast(s.vip)) bad("vip", s.vip.str() + " is not a unicast address");
    if (s.proto != IPPROTO_TCP && s.proto != IPPROTO_UDP)
        bad("proto", std::string(proto_name(s.proto)) + " is not tcp or udp");
    if (s.port == 0) bad("port", "must be 1..65535");
    if (s.table_size < kDefaultTableSize || s.table_size > kMaxTableSize || !is_prime(s.table_size))
        bad("table_size", std::to_string(s.table_size) + " is not a prime in 65537..16777216");
    if (s.mode == LbMode::DsrIpip) {
        if (s.encap_source.is_unspecified())
            bad("encap_source", "required in dsr mode (the outer source, one of our addresses)");
        if (s.encap_source.family != s.vip.family)
            bad("encap_source", s.encap_source.str() + " is not of the VIP's family");
    }
    if (s.health.interval_ms < 100 || s.health.timeout_ms < 10 ||
        s.health.timeout_ms >= s.health.interval_ms)
        bad("health", "needs interval_ms >= 100 and 10 <= timeout_ms < interval_ms");
    for (size_t i = 0; i < s.backends.size(); i++) {
        const ServiceBackend &b = s.backends[i];
        std::string at = "backends[" + std::to_string(i) + "].";
        if (!unicast(b.addr)) bad(at + "ip", b.addr.str() + " is not a unicast address");
        if (b.addr.family != s.vip.family)
            bad(at + "ip", b.addr.str() + " is not of the VIP's family (no NAT46/64)");
        if (b.port == 0) bad(at + "port", "must be 1..65535");
        if (s.mode == LbMode::DsrIpip && b.port != s.port)
            bad(at + "port",
                "dsr cannot change the port: must be the VIP's " + std::to_string(s.port));
        if (!b.node.is_unspecified() && (!unicast(b.node) || b.node.family != s.vip.family))
            bad(at + "node", b.node.str() + " is not a unicast address of the VIP's family");
        if (b.weight > kMaxWeight) bad(at + "weight", "at most " + std::to_string(kMaxWeight));
        for (size_t j = 0; j < i; j++)
            if (s.backends[j].addr == b.addr && s.backends[j].port == b.port)
                bad(at + "ip",
                    endpoint(b.addr, b.port) + " is already backends[" + std::to_string(j) + "]");
    }
}

Service service_from_args(const json &args) {
    static const std::vector<std::string> known{
        "name",         "vrf",        "vip",      "proto",       "port",       "mode",
        "encap_source", "table_size", "announce", "communities", "local_pref", "health_check",
        "interval_ms",  "timeout_ms", "rise",     "fall"};
    for (const auto &[k, v] : args.items())
        if (std::find(known.begin(), known.end(), k) == known.end())
            bad(k, "unknown argument (expected one of: name, vrf, vip, proto, port, mode, "
                   "encap_source, table_size, announce, communities, local_pref, health_check, "
                   "interval_ms, timeout_ms, rise, fall)");
    Service s;
    s.name = text(args, "name").value_or("");
    if (auto v = text(args, "vrf")) s.vrf = *v;
    s.vip = address(args, "vip");
    std::string proto = text(args, "proto").value_or("tcp");
    if (proto == "tcp")
        s.proto = IPPROTO_TCP;
    else if (proto == "udp")
        s.proto = IPPROTO_UDP;
    else
        bad("proto", "'" + proto + "' is not tcp or udp");
    auto port = number(args, "port", 1, 65535);
    if (!port) bad("port", "required");
    s.port = static_cast<uint16_t>(*port);
    std::string mode = text(args, "mode").value_or("dnat");
    if (mode == "dnat")
        s.mode = LbMode::Dnat;
    else if (mode == "dsr")
        s.mode = LbMode::DsrIpip;
    else
        bad("mode", "'" + mode + "' is not dnat or dsr");
    if (args.contains("encap_source")) s.encap_source = address(args, "encap_source");
    if (auto v = number(args, "table_size", 0, UINT32_MAX)) s.table_size = uint32_t(*v);
    if (auto v = boolean(args, "announce")) s.announce.enabled = *v;
    if (auto v = number(args, "local_pref", 0, UINT32_MAX)) s.announce.local_pref = uint32_t(*v);
    if (auto v = text(args, "communities")) {
        for (size_t at = 0; at <= v->size();) {
            size_t end = std::min(v->find(',', at), v->size());
            std::string c = v->substr(at, end - at);
            auto packed = parse_community(c);
            if (!packed) bad("communities", "'" + c + "' is not AS:value (two 16-bit numbers)");
            s.announce.communities.push_back(*packed);
            at = end + 1;
        }
    }
    if (auto v = boolean(args, "health_check")) s.health.tcp = *v;
    if (auto v = number(args, "interval_ms", 0, 3600000)) s.health.interval_ms = uint32_t(*v);
    if (auto v = number(args, "timeout_ms", 0, 3600000)) s.health.timeout_ms = uint32_t(*v);
    if (auto v = number(args, "rise", 1, 100)) s.health.rise = uint32_t(*v);
    if (auto v = number(args, "fall", 1, 100)) s.health.fall = uint32_t(*v);
    validate(s);
    return s;
}

ServiceBackend backend_from_args(const json &args, const Service &s) {
    for (const auto &[k, v] : args.items())
        if (k != "service" && k != "ip" && k != "port" && k != "node" && k != "weight")
            bad(k, "unknown argument (expected one of: service, ip, port, node, weight)");
    ServiceBackend b;
    b.addr = address(args, "ip");
    b.port = static_cast<uint16_t>(number(args, "port", 1, 65535).value_or(s.port));
    if (args.contains("node")) b.node = address(args, "node");
    if (auto w = number(args, "weight", 0, kMaxWeight)) b.weight = uint32_t(*w);
    return b;
}

const Service *Registry::find(const std::string &name) const {
    auto it = services_.find(name);
    return it == services_.end() ? nullptr : &it->second;
}

Service &Registry::get(const std::string &name) {
    auto it = services_.find(name);
    if (it == services_.end()) bad("service", "no service named '" + name + "'");
    return it->second;
}

ServiceBackend &Registry::backend(Service &s, const IpAddr &addr, uint16_t port) {
    for (auto &b : s.backends)
        if (b.addr == addr && b.port == port) return b;
    bad("ip", "service '" + s.name + "' has no backend " + endpoint(addr, port));
}

// Two services must not claim one VIP:port, and a DNAT backend may serve one service only:
// replies are reverse-NATed by their source, which must name a single VIP.
void Registry::check_conflicts(const Service &s) const {
    for (const auto &[name, o] : services_) {
        if (name == s.name) continue;
        if (o.vrf == s.vrf && o.vip == s.vip && o.proto == s.proto && o.port == s.port)
            bad("vip", endpoint(s.vip, s.port) + "/" + proto_name(s.proto) +
                           " is already service '" + name + "'");
        if (o.mode != LbMode::Dnat || s.mode != LbMode::Dnat || o.proto != s.proto) continue;
        for (size_t i = 0; i < s.backends.size(); i++)
            for (const auto &ob : o.backends)
                if (ob.addr == s.backends[i].addr && ob.port == s.backends[i].port)
                    bad("backends[" + std::to_string(i) + "].ip",
                        endpoint(ob.addr, ob.port) + " already serves DNAT service '" + name +
                            "' (replies could not be told apart)");
    }
}

void Registry::publish(const Service &s) {
    std::vector<Backend> mb;
    for (const auto &b : s.backends) mb.push_back({b.addr, b.port, b.usable() ? b.weight : 0});
    std::vector<uint32_t> table = build(s.table_size, mb);
    uint32_t id = ids_.at(s.name);
    if (cb_.program) cb_.program(id, s, table);
    bool usable = std::any_of(s.backends.begin(), s.backends.end(),
                              [](const ServiceBackend &b) { return b.usable(); });
    announced_[s.name] = usable;
    announce_vip(s.vrf, s.vip);
}

void Registry::announce_vip(const std::string &vrf, const IpAddr &vip) {
    std::optional<Announce> how;
    for (const auto &[name, s] : services_) {
        if (s.vrf != vrf || s.vip != vip || !s.announce.enabled || !announced_.at(name)) continue;
        if (!how) {
            how = s.announce;
            continue;
        }
        how->local_pref = std::max(how->local_pref, s.announce.local_pref);
        for (uint32_t c : s.announce.communities)
            if (std::find(how->communities.begin(), how->communities.end(), c) ==
                how->communities.end())
                how->communities.push_back(c);
    }
    auto key = std::make_pair(vrf, vip);
    auto it = vips_.find(key);
    if (how ? it != vips_.end() && it->second == *how : it == vips_.end()) return;
    if (how)
        vips_[key] = *how;
    else
        vips_.erase(it);
    if (cb_.announce) cb_.announce(vrf, vip, how ? &*how : nullptr);
}

void Registry::add(Service s) {
    validate(s);
    if (services_.count(s.name)) bad("name", "service '" + s.name + "' already exists");
    check_conflicts(s);
    std::string name = s.name;
    ids_[name] = next_id_++;
    announced_[name] = false;
    auto &stored = services_.emplace(name, std::move(s)).first->second;
    publish(stored);
}

void Registry::del(const std::string &name) {
    Service &s = get(name);
    if (cb_.remove) cb_.remove(ids_.at(name));
    std::erase_if(streaks_, [&](const auto &e) { return std::get<0>(e.first) == name; });
    std::string vrf = s.vrf;
    IpAddr vip = s.vip;
    services_.erase(name);
    ids_.erase(name);
    announced_.erase(name);
    announce_vip(vrf, vip);
}

void Registry::add_backend(const std::string &service, ServiceBackend b) {
    Service next = get(service);
    next.backends.push_back(b);
    try {
        validate(next);
        check_conflicts(next);
    } catch (const ServiceError &e) {
        // Name the request's fields, not the position the backend would have had.
        std::string what = e.what();
        auto dot = what.find("].");
        throw ServiceError(dot != std::string::npos && what.rfind("backends[", 0) == 0
                               ? what.substr(dot + 2)
                               : what);
    }
    Service &s = services_.at(service);
    s = std::move(next);
    publish(s);
}

void Registry::del_backend(const std::string &service, const IpAddr &addr, uint16_t port) {
    Service &s = get(service);
    backend(s, addr, port);
    std::erase_if(s.backends,
                  [&](const ServiceBackend &b) { return b.addr == addr && b.port == port; });
    streaks_.erase({service, addr, port});
    publish(s);
}

void Registry::set_up(const std::string &service, const IpAddr &addr, uint16_t port, bool up) {
    Service &s = get(service);
    ServiceBackend &b = backend(s, addr, port);
    if (b.up == up) return;
    b.up = up;
    publish(s);
}

void Registry::health_result(const std::string &service, const IpAddr &addr, uint16_t port,
                             bool ok) {
    auto it = services_.find(service);
    if (it == services_.end()) return; // deleted while the check ran
    Service &s = it->second;
    auto bi = std::find_if(s.backends.begin(), s.backends.end(), [&](const ServiceBackend &b) {
        return b.addr == addr && b.port == port;
    });
    if (bi == s.backends.end()) return;
    Streak &st = streaks_[{service, addr, port}];
    (ok ? st.ok : st.fail)++;
    (ok ? st.fail : st.ok) = 0;
    bool healthy = bi->healthy;
    if (!healthy && st.ok >= s.health.rise) healthy = true;
    if (healthy && st.fail >= s.health.fall) healthy = false;
    if (healthy == bi->healthy) return;
    bi->healthy = healthy;
    publish(s);
}

json Registry::show(const std::string &name) const {
    json out = json::array();
    for (const auto &[n, s] : services_) {
        if (!name.empty() && n != name) continue;
        json backends = json::array();
        for (const auto &b : s.backends)
            backends.push_back({{"ip", b.addr.str()},
                                {"port", b.port},
                                {"node", b.node.is_unspecified() ? "" : b.node.str()},
                                {"weight", b.weight},
                                {"up", b.up},
                                {"healthy", b.healthy}});
        json communities = json::array();
        for (uint32_t c : s.announce.communities)
            communities.push_back(std::to_string(c >> 16) + ":" + std::to_string(c & 0xffff));
        out.push_back(
            {{"name", n},
             {"id", ids_.at(n)},
             {"vrf", s.vrf},
             {"vip", s.vip.str()},
             {"proto", proto_name(s.proto)},
             {"port", s.port},
             {"mode", lb_mode_name(s.mode)},
             {"encap_source", s.encap_source.is_unspecified() ? "" : s.encap_source.str()},
             {"table_size", s.table_size},
             {"announced", announced_.at(n)},
             {"communities", communities},
             {"local_pref", s.announce.local_pref},
             {"health_check", s.health.tcp},
             {"backends", backends}});
    }
    if (!name.empty() && out.empty()) bad("name", "no service named '" + name + "'");
    return out;
}

} // namespace vleaf::svc
