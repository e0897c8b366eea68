// Route distinguishers, route targets, extended communities and EVPN NLRI.
#include "control/bgp/wire.hpp"

#include <charconv>
#include <cstdio>
#include <tuple>

namespace vleaf::bgp {

namespace {

bool parse_u32(std::string_view s, uint32_t max, uint32_t &v) {
    if (s.empty()) return false;
    uint64_t x = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (ec != std::errc() || end != s.data() + s.size() || x > max) return false;
    v = uint32_t(x);
    return true;
}

// The three administrator:assigned forms shared by RDs and RTs. Returns the type.
std::optional<uint8_t> parse_admin_assigned(std::string_view text, uint32_t &admin,
                                            uint32_t &assigned) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto a = text.substr(0, colon), n = text.substr(colon + 1);
    if (a.find('.') != std::string_view::npos) {
        auto ip = IpAddr::parse(a);
        if (!ip || !ip->is_v4() || !parse_u32(n, 0xffff, assigned)) return std::nullopt;
        admin = ip->v4_host();
        return 1;
    }
    bool force4 = !a.empty() && (a.back() == 'L' || a.back() == 'l');
    if (force4) a.remove_suffix(1);
    if (!parse_u32(a, 0xffffffff, admin)) return std::nullopt;
    if (!force4 && admin <= 0xffff) {
        if (!parse_u32(n, 0xffffffff, assigned)) return std::nullopt;
        return 0;
    }
    if (!parse_u32(n, 0xffff, assigned)) return std::nullopt;
    return 2;
}

std::string format_admin_assigned(unsigned type, uint32_t admin, uint32_t assigned) {
    switch (type) {
    case 0:
        return std::to_string(admin) + ":" + std::to_string(assigned);
    case 1:
        return IpAddr::v4(admin).str() + ":" + std::to_string(assigned);
    case 2:
        return std::to_string(admin) + (admin <= 0xffff ? "L:" : ":") + std::to_string(assigned);
    default:
        return "type" + std::to_string(type) + ":" + std::to_string(admin) + ":" +
               std::to_string(assigned);
    }
}

std::string hex(ByteView b) {
    std::string s;
    char buf[3];
    for (uint8_t c : b) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        s += buf;
    }
    return s;
}

} // namespace

std::optional<RouteDistinguisher> RouteDistinguisher::parse(std::string_view text) {
    RouteDistinguisher rd;
    auto t = parse_admin_assigned(text, rd.admin, rd.assigned);
    if (!t) return std::nullopt;
    rd.type = *t;
    return rd;
}

std::string RouteDistinguisher::str() const {
    return format_admin_assigned(type, admin, assigned);
}

std::optional<RouteTarget> RouteTarget::parse(std::string_view text) {
    RouteTarget rt;
    auto t = parse_admin_assigned(text, rt.admin, rt.assigned);
    if (!t) return std::nullopt;
    rt.type = *t;
    return rt;
}

std::string RouteTarget::str() const {
    return format_admin_assigned(type, admin, assigned);
}

ExtCommunity ExtCommunity::route_target(const RouteTarget &rt) {
    uint64_t v = uint64_t(rt.type) << 56 | uint64_t(0x02) << 48;
    if (rt.type == 0)
        v |= uint64_t(rt.admin & 0xffff) << 32 | rt.assigned;
    else
        v |= uint64_t(rt.admin) << 16 | (rt.assigned & 0xffff);
    return {v};
}

ExtCommunity ExtCommunity::encapsulation(uint16_t tunnel_type) {
    return {uint64_t(0x03) << 56 | uint64_t(0x0c) << 48 | tunnel_type};
}

ExtCommunity ExtCommunity::router_mac(const MacAddr &mac) {
    uint64_t v = uint64_t(0x06) << 56 | uint64_t(0x03) << 48;
    for (int i = 0; i < 6; i++) v |= uint64_t(mac.bytes[i]) << (40 - 8 * i);
    return {v};
}

ExtCommunity ExtCommunity::mac_mobility(const MacMobility &mm) {
    return {uint64_t(0x06) << 56 | uint64_t(mm.sticky ? 1 : 0) << 40 | mm.sequence};
}

std::optional<RouteTarget> ExtCommunity::as_route_target() const {
    if (subtype() != 0x02 || type() > 0x02) return std::nullopt;
    RouteTarget rt;
    rt.type = type();
    if (rt.type == 0) {
        rt.admin = uint32_t(raw >> 32) & 0xffff;
        rt.assigned = uint32_t(raw);
    } else {
        rt.admin = uint32_t(raw >> 16);
        rt.assigned = uint32_t(raw) & 0xffff;
    }
    return rt;
}

std::optional<uint16_t> ExtCommunity::as_encapsulation() const {
    if (type() != 0x03 || subtype() != 0x0c) return std::nullopt;
    return uint16_t(raw);
}

std::optional<MacAddr> ExtCommunity::as_router_mac() const {
    if (type() != 0x06 || subtype() != 0x03) return std::nullopt;
    MacAddr m;
    for (int i = 0; i < 6; i++) m.bytes[i] = uint8_t(raw >> (40 - 8 * i));
    return m;
}

std::optional<MacMobility> ExtCommunity::as_mac_mobility() const {
    if (type() != 0x06 || subtype() != 0x00) return std::nullopt;
    return MacMobility{(raw >> 40 & 1) != 0, uint32_t(raw)};
}

std::string ExtCommunity::str() const {
    if (auto rt = as_route_target()) return "rt " + rt->str();
    if (auto e = as_encapsulation())
        return *e == kTunnelVxlan ? "encap vxlan" : "encap " + std::to_string(*e);
    if (auto m = as_router_mac()) return "rmac " + m->str();
    if (auto mm = as_mac_mobility())
        return "mm seq " + std::to_string(mm->sequence) + (mm->sticky ? " sticky" : "");
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(raw));
    return buf;
}

PmsiTunnel PmsiTunnel::ingress_replication(uint32_t vni, const IpAddr &ep) {
    PmsiTunnel t;
    t.label = vni & 0xffffff;
    t.tunnel_id.assign(ep.bytes.begin(), ep.bytes.begin() + (ep.is_v4() ? 4 : 16));
    return t;
}

std::optional<IpAddr> PmsiTunnel::endpoint() const {
    if (tunnel_type != kIngressReplication) return std::nullopt;
    if (tunnel_id.size() == 4) {
        IpAddr a;
        std::memcpy(a.bytes.data(), tunnel_id.data(), 4);
        return a;
    }
    if (tunnel_id.size() == 16) return IpAddr::v6(tunnel_id.data());
    return std::nullopt;
}

uint8_t EvpnNlri::route_type() const {
    switch (route.index()) {
    case 0:
        return 2;
    case 1:
        return 3;
    case 2:
        return 5;
    default:
        return std::get<EvpnOther>(route).type;
    }
}

bool EvpnKeyLess::operator()(const EvpnNlri &a, const EvpnNlri &b) const {
    if (a.route.index() != b.route.index()) return a.route.index() < b.route.index();
    switch (a.route.index()) {
    case 0: {
        auto &x = std::get<0>(a.route), &y = std::get<0>(b.route);
        return std::tie(x.rd, x.eth_tag, x.mac, x.ip, a.path_id) <
               std::tie(y.rd, y.eth_tag, y.mac, y.ip, b.path_id);
    }
    case 1: {
        auto &x = std::get<1>(a.route), &y = std::get<1>(b.route);
        return std::tie(x.rd, x.eth_tag, x.originator, a.path_id) <
               std::tie(y.rd, y.eth_tag, y.originator, b.path_id);
    }
    case 2: {
        auto &x = std::get<2>(a.route), &y = std::get<2>(b.route);
        return std::tie(x.rd, x.eth_tag, x.prefix, a.path_id) <
               std::tie(y.rd, y.eth_tag, y.prefix, b.path_id);
    }
    default:
        return a < b;
    }
}

std::string EvpnNlri::str() const {
    // Built by appending: GCC 12 reports a false -Wrestrict on "[" + std::string chains.
    std::string s;
    auto field = [&s](const std::string &v) {
        s += "[";
        s += v;
        s += "]";
    };
    auto ip = [&](const IpAddr &a) {
        field(std::to_string(a.max_len()));
        s += ":";
        field(a.str());
    };
    if (path_id) {
        s += "(id ";
        s += std::to_string(path_id);
        s += ") ";
    }
    if (auto *m = std::get_if<EvpnMacIp>(&route)) {
        field(m->rd.str());
        s += ":[2]:";
        field(std::to_string(m->eth_tag));
        s += ":[48]:";
        field(m->mac.str());
        if (m->ip) {
            s += ":";
            ip(*m->ip);
        }
    } else if (auto *i = std::get_if<EvpnImet>(&route)) {
        field(i->rd.str());
        s += ":[3]:";
        field(std::to_string(i->eth_tag));
        s += ":";
        ip(i->originator);
    } else if (auto *p = std::get_if<EvpnIpPrefix>(&route)) {
        field(p->rd.str());
        s += ":[5]:";
        field(std::to_string(p->eth_tag));
        s += ":";
        field(std::to_string(p->prefix.len));
        s += ":";
        field(p->prefix.addr.str());
    } else {
        auto &o = std::get<EvpnOther>(route);
        field(std::to_string(o.type));
        s += ":";
        field(hex(o.value));
    }
    return s;
}

namespace wire {

void put_rd(Bytes &o, const RouteDistinguisher &rd) {
    put16(o, rd.type);
    if (rd.type == 0) {
        put16(o, uint16_t(rd.admin));
        put32(o, rd.assigned);
    } else {
        put32(o, rd.admin);
        put16(o, uint16_t(rd.assigned));
    }
}

RouteDistinguisher read_rd(const uint8_t *p) {
    RouteDistinguisher rd;
    rd.type = uint16_t(p[0] << 8 | p[1]);
    auto be32 = [](const uint8_t *q) {
        return uint32_t(q[0]) << 24 | uint32_t(q[1]) << 16 | uint32_t(q[2]) << 8 | q[3];
    };
    if (rd.type == 0) {
        rd.admin = uint32_t(p[2] << 8 | p[3]);
        rd.assigned = be32(p + 4);
    } else {
        rd.admin = be32(p + 2);
        rd.assigned = uint32_t(p[6] << 8 | p[7]);
    }
    return rd;
}

namespace {

bool read_ip(Reader &r, uint8_t bits, IpAddr &a) {
    a = IpAddr{};
    if (bits == 32) return r.bytes(a.bytes.data(), 4);
    if (bits == 128) {
        a.family = Family::V6;
        return r.bytes(a.bytes.data(), 16);
    }
    return false;
}

} // namespace

NlriError read_evpn(Reader &outer, bool path_id, EvpnNlri &out, const char *&why) {
    out.path_id = 0;
    uint8_t type = 0, len = 0;
    ByteView body;
    if ((path_id && !outer.u32(out.path_id)) || !outer.u8(type) || !outer.u8(len) ||
        !outer.view(len, body)) {
        why = "EVPN NLRI overruns its attribute";
        return NlriError::Truncated;
    }
    Reader r(body);
    const uint8_t *rdp = r.pos();
    switch (type) {
    case 2: {
        auto &m = out.route.emplace<EvpnMacIp>();
        uint8_t mac_bits = 0, ip_bits = 0;
        if (!r.skip(8) || !r.bytes(m.esi.data(), 10) || !r.u32(m.eth_tag) || !r.u8(mac_bits) ||
            mac_bits != 48 || !r.bytes(m.mac.bytes.data(), 6) || !r.u8(ip_bits)) {
            why = "EVPN type-2 route: bad length or MAC length";
            return NlriError::Malformed;
        }
        m.rd = read_rd(rdp);
        if (ip_bits) {
            IpAddr ip;
            if (!read_ip(r, ip_bits, ip)) {
                why = "EVPN type-2 route: bad IP address length";
                return NlriError::Malformed;
            }
            m.ip = ip;
        }
        if (!r.u24(m.label1)) {
            why = "EVPN type-2 route: missing label";
            return NlriError::Malformed;
        }
        if (r.left() == 3) {
            uint32_t l2 = 0;
            r.u24(l2);
            m.label2 = l2;
        }
        if (!r.empty()) {
            why = "EVPN type-2 route: trailing bytes";
            return NlriError::Malformed;
        }
        return NlriError::None;
    }
    case 3: {
        auto &i = out.route.emplace<EvpnImet>();
        uint8_t ip_bits = 0;
        if (!r.skip(8) || !r.u32(i.eth_tag) || !r.u8(ip_bits) ||
            !read_ip(r, ip_bits, i.originator) || !r.empty()) {
            why = "EVPN type-3 route: bad length or originator address length";
            return NlriError::Malformed;
        }
        i.rd = read_rd(rdp);
        return NlriError::None;
    }
    case 5: {
        // RFC 9136 §3.1: the family follows from the route length (34 or 58 octets).
        auto &p = out.route.emplace<EvpnIpPrefix>();
        bool v6 = len == 58;
        if (len != 34 && len != 58) {
            why = "EVPN type-5 route: length is neither 34 nor 58";
            return NlriError::Malformed;
        }
        uint8_t plen = 0;
        r.skip(8);
        r.bytes(p.esi.data(), 10);
        r.u32(p.eth_tag);
        r.u8(plen);
        if (plen > (v6 ? 128 : 32)) {
            why = "EVPN type-5 route: prefix length too long";
            return NlriError::Malformed;
        }
        p.rd = read_rd(rdp);
        read_ip(r, v6 ? 128 : 32, p.prefix.addr);
        p.prefix.len = plen;
        p.prefix = p.prefix.masked();
        read_ip(r, v6 ? 128 : 32, p.gateway);
        r.u24(p.label);
        return NlriError::None;
    }
    default: {
        EvpnOther o;
        o.type = type;
        o.value.assign(body.begin(), body.end());
        out.route = std::move(o);
        return NlriError::None;
    }
    }
}

void put_evpn(Bytes &o, const EvpnNlri &e, bool path_id) {
    if (path_id) put32(o, e.path_id);
    put8(o, e.route_type());
    size_t len_at = o.size();
    put8(o, 0);
    if (auto *m = std::get_if<EvpnMacIp>(&e.route)) {
        put_rd(o, m->rd);
        put(o, m->esi);
        put32(o, m->eth_tag);
        put8(o, 48);
        put(o, m->mac.bytes);
        if (m->ip) {
            put8(o, uint8_t(m->ip->max_len()));
            put_addr(o, *m->ip);
        } else {
            put8(o, 0);
        }
        put24(o, m->label1);
        if (m->label2) put24(o, *m->label2);
    } else if (auto *i = std::get_if<EvpnImet>(&e.route)) {
        put_rd(o, i->rd);
        put32(o, i->eth_tag);
        put8(o, uint8_t(i->originator.max_len()));
        put_addr(o, i->originator);
    } else if (auto *p = std::get_if<EvpnIpPrefix>(&e.route)) {
        put_rd(o, p->rd);
        put(o, p->esi);
        put32(o, p->eth_tag);
        put8(o, p->prefix.len);
        put_addr(o, p->prefix.addr);
        // The gateway shares the prefix's family (RFC 9136 §3.1); zeros when absent.
        IpAddr gw = p->gateway;
        if (gw.family != p->prefix.addr.family) gw = IpAddr{p->prefix.addr.family, {}};
        put_addr(o, gw);
        put24(o, p->label);
    } else {
        auto &x = std::get<EvpnOther>(e.route);
        put(o, x.value);
    }
    o[len_at] = uint8_t(o.size() - len_at - 1);
}

} // namespace wire
} // namespace vleaf::bgp
