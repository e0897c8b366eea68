// UPDATE messages: decoding with RFC 7606 outcomes, encoding, and packing many routes
// into few messages.
#include "control/bgp/wire.hpp"

#include <bitset>

namespace vleaf::bgp {

using namespace wire;

namespace {

constexpr uint8_t kMpFlags = attr::kOptional;

bool bad_ipv6_next_hop(const IpAddr &a) {
    return a.is_unspecified() || a.bytes[0] == 0xff;
}

// Next-hop field lengths accepted per family (RFC 4760, 2545, 8950, 7432).
bool read_next_hop(RouteFamily f, ByteView nh, NextHop &out) {
    out.link_local.reset();
    out.addr = IpAddr{};
    switch (nh.size()) {
    case 4:
        if (f == RouteFamily::Ipv6Unicast) return false;
        std::memcpy(out.addr.bytes.data(), nh.data(), 4);
        return true;
    case 16:
        out.addr = IpAddr::v6(nh.data());
        return true;
    case 32:
        out.addr = IpAddr::v6(nh.data());
        out.link_local = IpAddr::v6(nh.data() + 16);
        return true;
    default:
        return false;
    }
}

struct MpParser {
    const CodecContext &ctx;
    UpdateResult &out;
    Verdict &v;

    void disable(AfiSafi fam, ByteView whole, std::string why) {
        if (out.action >= UpdateAction::AfiSafiDisable) return;
        v.raise(UpdateAction::AfiSafiDisable, err::kOptionalAttrError, whole, std::move(why));
        out.family = fam;
    }

    // Returns false when the NLRI could not be parsed completely.
    bool nlri(RouteFamily f, AfiSafi fam, Reader &r, ByteView whole, std::vector<PrefixNlri> &pfx,
              std::vector<EvpnNlri> &evpn, const char *attr) {
        const bool id = ctx.add_path_rx[size_t(f)];
        if (f == RouteFamily::Evpn) {
            evpn.reserve(r.left() / 20);
            while (!r.empty()) {
                const char *why = "";
                auto res = read_evpn(r, id, evpn.emplace_back(), why);
                if (res != NlriError::None) evpn.pop_back();
                if (res == NlriError::Truncated) {
                    disable(fam, whole, std::string(attr) + ": " + why);
                    return false;
                }
                if (res == NlriError::Malformed)
                    v.raise(UpdateAction::TreatAsWithdraw, err::kOptionalAttrError, whole,
                            std::string(attr) + ": " + why);
            }
            return true;
        }
        Family af = f == RouteFamily::Ipv4Unicast ? Family::V4 : Family::V6;
        pfx.reserve(r.left() / (af == Family::V4 ? 4 : 9));
        while (!r.empty()) {
            pfx.emplace_back();
            if (!read_prefix(r, af, id, pfx.back())) {
                pfx.pop_back();
                disable(fam, whole,
                        std::string(attr) + ": invalid prefix length or prefix overrun");
                return false;
            }
        }
        return true;
    }

    // Family of the attribute if this codec handles it and it was negotiated.
    std::optional<RouteFamily> family(Reader &r, ByteView whole, const char *attr, AfiSafi &fam) {
        uint8_t safi = 0;
        if (!r.u16(fam.afi) || !r.u8(safi)) {
            v.raise(UpdateAction::SessionReset, err::kOptionalAttrError, whole,
                    std::string(attr) + ": too short to name an AFI/SAFI");
            return std::nullopt;
        }
        fam.safi = safi;
        auto f = to_route_family(fam);
        if (!f || !ctx.families[size_t(*f)]) return std::nullopt; // RFC 4760 §7: ignore
        return f;
    }

    void reach(ByteView value, ByteView whole) {
        Reader r(value);
        AfiSafi fam;
        auto f = family(r, whole, "MP_REACH_NLRI", fam);
        if (!f) return;
        MpReach m;
        m.family = fam;
        uint8_t nh_len = 0, reserved = 0;
        ByteView nh;
        if (!r.u8(nh_len) || !r.view(nh_len, nh) || !r.u8(reserved) ||
            !read_next_hop(*f, nh, m.next_hop)) {
            disable(fam, whole,
                    "MP_REACH_NLRI: next hop length " + std::to_string(nh_len) + " invalid for " +
                        fam.str());
            return;
        }
        bool bad_nh = m.next_hop.addr.is_v4()
                          ? (m.next_hop.addr.is_unspecified() || m.next_hop.addr.bytes[0] >= 224)
                          : bad_ipv6_next_hop(m.next_hop.addr);
        if (bad_nh)
            v.raise(UpdateAction::TreatAsWithdraw, err::kInvalidNextHop, whole,
                    "MP_REACH_NLRI: next hop " + m.next_hop.addr.str() +
                        " is not a unicast address");
        if (!nlri(*f, fam, r, whole, m.prefixes, m.evpn, "MP_REACH_NLRI")) return;
        out.update.mp_reach = std::move(m);
    }

    void unreach(ByteView value, ByteView whole) {
        Reader r(value);
        AfiSafi fam;
        auto f = family(r, whole, "MP_UNREACH_NLRI", fam);
        if (!f) return;
        MpUnreach m;
        m.family = fam;
        if (!nlri(*f, fam, r, whole, m.prefixes, m.evpn, "MP_UNREACH_NLRI")) return;
        out.update.mp_unreach = std::move(m);
    }
};

bool parse_v4_field(ByteView field, bool id, std::vector<PrefixNlri> &dst) {
    Reader r(field);
    dst.reserve(field.size() / 4);
    while (!r.empty()) {
        dst.emplace_back();
        if (!read_prefix(r, Family::V4, id, dst.back())) {
            dst.pop_back();
            return false;
        }
    }
    return true;
}

} // namespace

void decode_update(ByteView body, const CodecContext &ctx, UpdateResult &out) {
    out.action = UpdateAction::Ok;
    out.update.clear();
    out.notification.reset();
    out.family = {};
    out.discarded.clear();
    out.reason.clear();
    Verdict v{out};
    Update &u = out.update;

    Reader r(body);
    uint16_t wlen = 0, alen = 0;
    ByteView withdrawn, attrs;
    if (!r.u16(wlen) || !r.view(wlen, withdrawn) || !r.u16(alen) || !r.view(alen, attrs)) {
        v.raise(UpdateAction::SessionReset, err::kMalformedAttrList, {},
                "withdrawn routes or path attribute length overruns the message");
        return;
    }
    ByteView nlri = r.rest();
    const bool v4_id = ctx.add_path_rx[size_t(RouteFamily::Ipv4Unicast)];
    if (!parse_v4_field(withdrawn, v4_id, u.withdrawn)) {
        v.raise(UpdateAction::SessionReset, err::kInvalidNetworkField, {},
                "withdrawn routes: invalid prefix length or prefix overrun");
        return;
    }
    if (!parse_v4_field(nlri, v4_id, u.nlri)) {
        v.raise(UpdateAction::SessionReset, err::kInvalidNetworkField, {},
                "NLRI: invalid prefix length or prefix overrun");
        return;
    }

    MpParser mp{ctx, out, v};
    As4Attrs as4;
    std::bitset<256> seen;
    Reader ar(attrs);
    while (!ar.empty()) {
        const uint8_t *start = ar.pos();
        uint8_t flags = 0, type = 0, len8 = 0;
        uint16_t len = 0;
        ByteView value;
        bool ok = ar.u8(flags) && ar.u8(type) &&
                  ((flags & attr::kExtendedLength) ? ar.u16(len)
                                                   : (ar.u8(len8) && ((len = len8), true))) &&
                  ar.view(len, value);
        if (!ok) {
            // RFC 7606 §4: treat-as-withdraw. When neither NLRI nor an MP attribute was
            // found, the unparsed tail may hold the MP attribute whose routes it concerns,
            // and withdrawing "nothing" would leave them stale: reset instead.
            bool located = !u.nlri.empty() || seen[attr::kMpReach] || seen[attr::kMpUnreach];
            v.raise(located ? UpdateAction::TreatAsWithdraw : UpdateAction::SessionReset,
                    err::kMalformedAttrList, {},
                    "path attribute at offset " + std::to_string(start - attrs.data()) +
                        " overruns the attribute list");
            break;
        }
        ByteView whole(start, size_t(ar.pos() - start));
        if (seen[type]) {
            if (type == attr::kMpReach || type == attr::kMpUnreach) {
                v.raise(UpdateAction::SessionReset, err::kMalformedAttrList, {},
                        "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice");
                return;
            }
            v.discard(type, "attribute type " + std::to_string(type) +
                                " repeated, later copies discarded");
            continue;
        }
        seen.set(type);
        if (type == attr::kMpReach || type == attr::kMpUnreach) {
            if ((flags & (attr::kOptional | attr::kTransitive)) != kMpFlags)
                v.raise(UpdateAction::TreatAsWithdraw, err::kAttrFlagsError, whole,
                        "MP_(UN)REACH_NLRI: Optional/Transitive flags conflict with the attribute "
                        "type");
            if (type == attr::kMpReach)
                mp.reach(value, whole);
            else
                mp.unreach(value, whole);
        } else {
            decode_attr(flags, type, value, whole, ctx, u.attrs, as4, v);
        }
        if (out.action == UpdateAction::SessionReset) return;
    }

    // RFC 7606 §3 d: missing well-known attributes matter only when routes are announced.
    bool announces = !u.nlri.empty() ||
                     (u.mp_reach && (!u.mp_reach->prefixes.empty() || !u.mp_reach->evpn.empty()));
    if (announces) {
        auto missing = [&](uint8_t type, const char *name) {
            v.raise(UpdateAction::TreatAsWithdraw, err::kMissingWellKnown, Bytes{type},
                    std::string("missing well-known attribute ") + name);
        };
        if (!seen[attr::kOrigin]) missing(attr::kOrigin, "ORIGIN");
        if (!seen[attr::kAsPath]) missing(attr::kAsPath, "AS_PATH");
        if (!u.nlri.empty() && !seen[attr::kNextHop]) missing(attr::kNextHop, "NEXT_HOP");
    }
    if (!ctx.four_octet_as) merge_as4(u.attrs, as4);
}

UpdateResult decode_update(ByteView body, const CodecContext &ctx) {
    UpdateResult r;
    decode_update(body, ctx, r);
    return r;
}

std::optional<AfiSafi> end_of_rib(const Update &u) {
    if (!u.withdrawn.empty() || !u.nlri.empty() || u.mp_reach || !(u.attrs == PathAttrs{}))
        return std::nullopt;
    if (!u.mp_unreach) return to_afi_safi(RouteFamily::Ipv4Unicast);
    if (u.mp_unreach->prefixes.empty() && u.mp_unreach->evpn.empty()) return u.mp_unreach->family;
    return std::nullopt;
}

namespace {

bool tx_id(const CodecContext &ctx, AfiSafi fam) {
    auto f = to_route_family(fam);
    return f && ctx.add_path_tx[size_t(*f)];
}

void put_next_hop(Bytes &o, const NextHop &nh) {
    put8(o, uint8_t(addr_len(nh.addr) + (nh.link_local ? 16 : 0)));
    put_addr(o, nh.addr);
    if (nh.link_local) put_addr(o, *nh.link_local);
    put8(o, 0); // reserved
}

void put_nlri(Bytes &o, const PrefixNlri &p, bool id) {
    put_prefix(o, p, id);
}
void put_nlri(Bytes &o, const EvpnNlri &e, bool id) {
    put_evpn(o, e, id);
}

// Fills messages with routes until each is full: append a route, and if the message got
// too long take it back and start the next one. `open` writes a message's fixed part and
// returns where its variable attribute starts; `close` finishes it.
template <class Route, class Open, class Close>
size_t pack(std::span<const Route> routes, bool id, Bytes &out, Open open, Close close) {
    size_t count = 0, i = 0;
    while (i < routes.size()) {
        size_t start = out.size();
        auto state = open(out);
        size_t first = i;
        for (; i < routes.size(); i++) {
            size_t before = out.size();
            put_nlri(out, routes[i], id);
            if (close.fits(out, start, state)) continue;
            out.resize(before);
            break;
        }
        if (i == first) { // not even one route fits next to the attributes
            out.resize(start);
            return count;
        }
        close(out, start, state);
        count++;
    }
    return count;
}

struct MpState {
    size_t attr_len_at, mp_at;
};

// Closes an UPDATE whose routes sit in an MP_(UN)REACH attribute followed by `tail`.
struct MpClose {
    ByteView tail;
    size_t max;
    bool fits(const Bytes &o, size_t start, const MpState &) const {
        return o.size() - start + tail.size() <= max;
    }
    void operator()(Bytes &o, size_t start, const MpState &s) const {
        end_attr(o, s.mp_at);
        put(o, tail);
        set16(o, s.attr_len_at, uint16_t(o.size() - s.attr_len_at - 2));
        finish_message(o, start);
    }
};

template <class Route>
size_t pack_mp(uint8_t type, AfiSafi fam, const NextHop *nh, ByteView tail,
               std::span<const Route> routes, const CodecContext &ctx, Bytes &out) {
    size_t max = ctx.max_message_len();
    auto open = [&](Bytes &o) {
        begin_message(o, MsgType::Update);
        put16(o, 0); // withdrawn routes length
        MpState s;
        s.attr_len_at = o.size();
        put16(o, 0);
        s.mp_at = begin_attr(o, kMpFlags, type);
        put16(o, fam.afi);
        put8(o, fam.safi);
        if (nh) put_next_hop(o, *nh);
        return s;
    };
    return pack(routes, tx_id(ctx, fam), out, open, MpClose{tail, max});
}

} // namespace

bool encode_update(const Update &u, const CodecContext &ctx, Bytes &out) {
    size_t start = begin_message(out, MsgType::Update);
    const bool v4_id = ctx.add_path_tx[size_t(RouteFamily::Ipv4Unicast)];
    size_t at = out.size();
    put16(out, 0);
    for (auto &p : u.withdrawn) put_prefix(out, p, v4_id);
    set16(out, at, uint16_t(out.size() - at - 2));
    at = out.size();
    put16(out, 0);
    if (u.mp_unreach) {
        size_t a = begin_attr(out, kMpFlags, attr::kMpUnreach);
        put16(out, u.mp_unreach->family.afi);
        put8(out, u.mp_unreach->family.safi);
        bool id = tx_id(ctx, u.mp_unreach->family);
        for (auto &p : u.mp_unreach->prefixes) put_prefix(out, p, id);
        for (auto &e : u.mp_unreach->evpn) put_evpn(out, e, id);
        end_attr(out, a);
    }
    if (u.mp_reach) {
        size_t a = begin_attr(out, kMpFlags, attr::kMpReach);
        put16(out, u.mp_reach->family.afi);
        put8(out, u.mp_reach->family.safi);
        put_next_hop(out, u.mp_reach->next_hop);
        bool id = tx_id(ctx, u.mp_reach->family);
        for (auto &p : u.mp_reach->prefixes) put_prefix(out, p, id);
        for (auto &e : u.mp_reach->evpn) put_evpn(out, e, id);
        end_attr(out, a);
    }
    encode_attrs(u.attrs, u.attrs.next_hop, ctx, out);
    size_t attr_len = out.size() - at - 2;
    for (auto &p : u.nlri) put_prefix(out, p, v4_id);
    if (out.size() - start > ctx.max_message_len()) {
        out.resize(start);
        return false;
    }
    set16(out, at, uint16_t(attr_len));
    finish_message(out, start);
    return true;
}

size_t encode_announce(RouteFamily family, const PathAttrs &attrs, const NextHop &nh,
                       std::span<const PrefixNlri> routes, const CodecContext &ctx, Bytes &out) {
    Bytes tail;
    if (family == RouteFamily::Ipv4Unicast && nh.addr.is_v4()) {
        encode_attrs(attrs, nh.addr.v4_host(), ctx, tail);
        size_t max = ctx.max_message_len();
        struct Close {
            size_t max;
            bool fits(const Bytes &o, size_t start, size_t) const {
                return o.size() - start <= max;
            }
            void operator()(Bytes &o, size_t start, size_t) const { finish_message(o, start); }
        };
        auto open = [&](Bytes &o) {
            begin_message(o, MsgType::Update);
            put16(o, 0);
            put16(o, uint16_t(tail.size()));
            put(o, tail);
            return size_t(0);
        };
        return pack(routes, ctx.add_path_tx[0], out, open, Close{max});
    }
    encode_attrs(attrs, std::nullopt, ctx, tail);
    return pack_mp(attr::kMpReach, to_afi_safi(family), &nh, tail, routes, ctx, out);
}

size_t encode_announce(const PathAttrs &attrs, const NextHop &nh, std::span<const EvpnNlri> routes,
                       const CodecContext &ctx, Bytes &out) {
    Bytes tail;
    encode_attrs(attrs, std::nullopt, ctx, tail);
    return pack_mp(attr::kMpReach, to_afi_safi(RouteFamily::Evpn), &nh, tail, routes, ctx, out);
}

size_t encode_withdraw(RouteFamily family, std::span<const PrefixNlri> routes,
                       const CodecContext &ctx, Bytes &out) {
    if (family != RouteFamily::Ipv4Unicast)
        return pack_mp(attr::kMpUnreach, to_afi_safi(family), nullptr, {}, routes, ctx, out);
    size_t max = ctx.max_message_len();
    struct Close {
        size_t max;
        bool fits(const Bytes &o, size_t start, size_t) const {
            return o.size() - start + 2 <= max;
        }
        void operator()(Bytes &o, size_t start, size_t) const {
            set16(o, start + kHeaderLen, uint16_t(o.size() - start - kHeaderLen - 2));
            put16(o, 0); // path attribute length
            finish_message(o, start);
        }
    };
    auto open = [](Bytes &o) {
        begin_message(o, MsgType::Update);
        put16(o, 0);
        return size_t(0);
    };
    return pack(routes, ctx.add_path_tx[0], out, open, Close{max});
}

size_t encode_withdraw(std::span<const EvpnNlri> routes, const CodecContext &ctx, Bytes &out) {
    return pack_mp(attr::kMpUnreach, to_afi_safi(RouteFamily::Evpn), nullptr, {}, routes, ctx, out);
}

void encode_end_of_rib(RouteFamily family, Bytes &out) {
    size_t start = begin_message(out, MsgType::Update);
    put16(out, 0);
    if (family == RouteFamily::Ipv4Unicast) {
        put16(out, 0);
    } else {
        AfiSafi fam = to_afi_safi(family);
        put16(out, 6);
        put8(out, kMpFlags);
        put8(out, attr::kMpUnreach);
        put8(out, 3);
        put16(out, fam.afi);
        put8(out, fam.safi);
    }
    finish_message(out, start);
}

} // namespace vleaf::bgp
