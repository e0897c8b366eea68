// OPEN message, capabilities (RFC 5492) and what two OPENs negotiate.
#include "control/bgp/wire.hpp"

#include <algorithm>

namespace vleaf::bgp {

using namespace wire;

namespace {

constexpr uint8_t kParamCapabilities = 2;
constexpr uint8_t kParamExtendedLength = 255; // RFC 9072

Notification open_error(uint8_t sub, Bytes data = {}) {
    return Notification{err::kOpen, sub, std::move(data)};
}

// Returns false if a known capability has the wrong shape.
bool parse_capability(uint8_t code, ByteView v, Capabilities &c) {
    Reader r(v);
    switch (code) {
    case cap::kMultiprotocol: {
        uint16_t afi = 0;
        uint8_t res = 0, safi = 0;
        if (v.size() != 4) return false;
        r.u16(afi), r.u8(res), r.u8(safi);
        AfiSafi as{afi, safi};
        if (std::find(c.multiprotocol.begin(), c.multiprotocol.end(), as) == c.multiprotocol.end())
            c.multiprotocol.push_back(as);
        return true;
    }
    case cap::kRouteRefresh:
        c.route_refresh = true;
        return v.empty();
    case cap::kEnhancedRouteRefresh:
        c.enhanced_route_refresh = true;
        return v.empty();
    case cap::kExtendedMessage:
        c.extended_message = true;
        return v.empty();
    case cap::kExtendedNextHop:
        if (v.size() % 6) return false;
        while (!r.empty()) {
            ExtendedNextHopCap e;
            r.u16(e.nlri_afi), r.u16(e.nlri_safi), r.u16(e.nexthop_afi);
            c.extended_nexthop.push_back(e);
        }
        return true;
    case cap::kFourOctetAs: {
        uint32_t asn = 0;
        if (v.size() != 4) return false;
        r.u32(asn);
        c.four_octet_as = asn;
        return true;
    }
    case cap::kGracefulRestart: {
        uint16_t flags_time = 0;
        if (v.size() < 2 || (v.size() - 2) % 4) return false;
        GracefulRestartCap gr;
        r.u16(flags_time);
        gr.restarting = flags_time & 0x8000;
        gr.notification = flags_time & 0x4000;
        gr.restart_time = flags_time & 0x0fff;
        while (!r.empty()) {
            GracefulRestartCap::Family f;
            uint8_t flags = 0;
            r.u16(f.family.afi), r.u8(f.family.safi), r.u8(flags);
            f.forwarding_preserved = flags & 0x80;
            gr.families.push_back(f);
        }
        c.graceful_restart = std::move(gr);
        return true;
    }
    case cap::kAddPath:
        if (v.size() % 4) return false;
        while (!r.empty()) {
            AddPathCap a;
            r.u16(a.family.afi), r.u8(a.family.safi), r.u8(a.mode);
            if (a.mode < AddPathCap::Receive || a.mode > AddPathCap::Both) return false;
            c.add_path.push_back(a);
        }
        return true;
    default:
        c.unknown.push_back(RawCapability{code, Bytes(v.begin(), v.end())});
        return true;
    }
}

std::optional<Notification> parse_capabilities(ByteView v, Capabilities &c) {
    Reader r(v);
    while (!r.empty()) {
        uint8_t code = 0, len = 0;
        ByteView value;
        if (!r.u8(code) || !r.u8(len) || !r.view(len, value))
            return open_error(err::kUnspecific); // capability overruns its parameter
        if (!parse_capability(code, value, c)) return open_error(err::kUnspecific);
    }
    return std::nullopt;
}

void put_cap(Bytes &o, uint8_t code, ByteView v) {
    put8(o, code);
    put8(o, uint8_t(v.size()));
    put(o, v);
}

Bytes encode_capabilities(const Capabilities &c) {
    Bytes o, v;
    for (auto &as : c.multiprotocol) {
        v.clear();
        put16(v, as.afi), put8(v, 0), put8(v, as.safi);
        put_cap(o, cap::kMultiprotocol, v);
    }
    if (c.route_refresh) put_cap(o, cap::kRouteRefresh, {});
    if (c.enhanced_route_refresh) put_cap(o, cap::kEnhancedRouteRefresh, {});
    if (c.extended_message) put_cap(o, cap::kExtendedMessage, {});
    // A capability value holds at most 255 octets: long lists go in several capabilities.
    for (size_t i = 0; i < c.extended_nexthop.size(); i += 42) {
        v.clear();
        for (size_t j = i; j < std::min(i + 42, c.extended_nexthop.size()); j++) {
            auto &e = c.extended_nexthop[j];
            put16(v, e.nlri_afi), put16(v, e.nlri_safi), put16(v, e.nexthop_afi);
        }
        put_cap(o, cap::kExtendedNextHop, v);
    }
    if (c.graceful_restart) {
        auto &gr = *c.graceful_restart;
        v.clear();
        put16(v, uint16_t((gr.restarting ? 0x8000 : 0) | (gr.notification ? 0x4000 : 0) |
                          (gr.restart_time & 0x0fff)));
        // One capability (a second would replace the first) of at most 63 families.
        for (size_t i = 0; i < std::min<size_t>(63, gr.families.size()); i++) {
            auto &f = gr.families[i];
            put16(v, f.family.afi), put8(v, f.family.safi);
            put8(v, f.forwarding_preserved ? 0x80 : 0);
        }
        put_cap(o, cap::kGracefulRestart, v);
    }
    if (c.four_octet_as) {
        v.clear();
        put32(v, *c.four_octet_as);
        put_cap(o, cap::kFourOctetAs, v);
    }
    for (size_t i = 0; i < c.add_path.size(); i += 63) {
        v.clear();
        for (size_t j = i; j < std::min(i + 63, c.add_path.size()); j++) {
            auto &a = c.add_path[j];
            put16(v, a.family.afi), put8(v, a.family.safi), put8(v, a.mode);
        }
        put_cap(o, cap::kAddPath, v);
    }
    for (auto &u : c.unknown) put_cap(o, u.code, u.value);
    return o;
}

} // namespace

OpenResult decode_open(ByteView body) {
    OpenResult res;
    Open &o = res.open;
    Reader r(body);
    uint8_t opt_len = 0;
    if (!r.u8(o.version) || !r.u16(o.my_as) || !r.u16(o.hold_time) || !r.u32(o.bgp_id) ||
        !r.u8(opt_len)) {
        res.error = Notification{
            err::kHeader,
            err::kBadMessageLength,
            {uint8_t((body.size() + kHeaderLen) >> 8), uint8_t(body.size() + kHeaderLen)}};
        return res;
    }
    if (o.version != 4) {
        res.error = open_error(err::kUnsupportedVersion, {0, 4});
        return res;
    }
    // RFC 9072: a first parameter of type 255 announces 2-octet lengths throughout.
    bool ext = opt_len == 255 && r.left() >= 1 && r.rest()[0] == kParamExtendedLength;
    size_t params_len = opt_len;
    if (ext) {
        uint16_t ext_len = 0;
        r.skip(1);
        if (!r.u16(ext_len)) {
            res.error = open_error(err::kUnspecific);
            return res;
        }
        params_len = ext_len;
        o.extended_params = true;
    }
    if (r.left() != params_len) {
        res.error = open_error(err::kUnspecific); // parameter length disagrees with the message
        return res;
    }
    while (!r.empty()) {
        uint8_t type = 0;
        uint16_t len = 0;
        uint8_t len8 = 0;
        ByteView value;
        bool ok = r.u8(type) && (ext ? r.u16(len) : (r.u8(len8) && ((len = len8), true))) &&
                  r.view(len, value);
        if (!ok) {
            res.error = open_error(err::kUnspecific); // parameter overruns the parameters
            return res;
        }
        if (type != kParamCapabilities) {
            res.error = open_error(err::kUnsupportedOptParam);
            return res;
        }
        if (auto e = parse_capabilities(value, o.caps)) {
            res.error = std::move(e);
            return res;
        }
    }
    if (o.hold_time == 1 || o.hold_time == 2) {
        res.error = open_error(err::kUnacceptableHoldTime);
        return res;
    }
    if (o.bgp_id == 0) {
        res.error = open_error(err::kBadBgpId);
        return res;
    }
    return res;
}

void encode_open(const Open &open, Bytes &out) {
    size_t start = begin_message(out, MsgType::Open);
    put8(out, open.version);
    put16(out, open.my_as);
    put16(out, open.hold_time);
    put32(out, open.bgp_id);
    Bytes caps = encode_capabilities(open.caps);
    if (caps.empty() && !open.extended_params) {
        put8(out, 0);
    } else if (!open.extended_params && caps.size() + 2 <= 255) {
        put8(out, uint8_t(caps.size() + 2));
        put8(out, kParamCapabilities);
        put8(out, uint8_t(caps.size()));
        put(out, caps);
    } else {
        put8(out, 255);
        put8(out, kParamExtendedLength);
        put16(out, uint16_t(caps.size() + 3));
        put8(out, kParamCapabilities);
        put16(out, uint16_t(caps.size()));
        put(out, caps);
    }
    finish_message(out, start);
}

Open make_open(uint32_t asn, uint16_t hold_time, uint32_t bgp_id, Capabilities caps) {
    Open o;
    o.my_as = asn > 0xffff ? kAsTrans : uint16_t(asn);
    o.hold_time = hold_time;
    o.bgp_id = bgp_id;
    o.caps = std::move(caps);
    o.caps.four_octet_as = asn;
    return o;
}

CodecContext negotiate(const Open &local, const Open &remote, bool ebgp) {
    CodecContext c;
    c.ebgp = ebgp;
    c.four_octet_as = local.caps.four_octet_as && remote.caps.four_octet_as;
    c.extended_message = local.caps.extended_message && remote.caps.extended_message;
    auto has_family = [](const Open &o, AfiSafi as) {
        if (o.caps.multiprotocol.empty()) return as == to_afi_safi(RouteFamily::Ipv4Unicast);
        return std::find(o.caps.multiprotocol.begin(), o.caps.multiprotocol.end(), as) !=
               o.caps.multiprotocol.end();
    };
    auto add_path_mode = [](const Open &o, AfiSafi as) -> uint8_t {
        for (auto &a : o.caps.add_path)
            if (a.family == as) return a.mode;
        return 0;
    };
    for (size_t i = 0; i < kRouteFamilies; i++) {
        AfiSafi as = to_afi_safi(RouteFamily(i));
        c.families[i] = has_family(local, as) && has_family(remote, as);
        uint8_t lm = add_path_mode(local, as), rm = add_path_mode(remote, as);
        c.add_path_rx[i] = c.families[i] && (lm & AddPathCap::Receive) && (rm & AddPathCap::Send);
        c.add_path_tx[i] = c.families[i] && (lm & AddPathCap::Send) && (rm & AddPathCap::Receive);
    }
    for (auto &e : remote.caps.extended_nexthop)
        if (e.nlri_afi == uint16_t(Afi::Ipv4) && e.nlri_safi == uint8_t(Safi::Unicast) &&
            e.nexthop_afi == uint16_t(Afi::Ipv6))
            c.extended_nexthop_ipv4 = true;
    return c;
}

} // namespace vleaf::bgp
