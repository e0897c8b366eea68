// Path attributes (RFC 4271 §5, 1997, 4360, 4456, 6514, 6793, 8092, 9012) with the
// per-attribute error handling of RFC 7606 §7.
#include "control/bgp/wire.hpp"

#include <algorithm>

namespace vleaf::bgp::wire {

void Verdict::raise(UpdateAction a, uint8_t subcode, ByteView data, std::string why) {
    if (a <= res.action) return;
    res.action = a;
    res.notification = Notification{err::kUpdate, subcode, Bytes(data.begin(), data.end())};
    res.reason = std::move(why);
}

void Verdict::discard(uint8_t type, std::string why) {
    res.discarded.push_back(type);
    if (res.action < UpdateAction::AttributeDiscard) {
        res.action = UpdateAction::AttributeDiscard;
        res.reason = std::move(why);
    }
}

namespace {

constexpr uint8_t kWellKnown = attr::kTransitive;
constexpr uint8_t kOptNonTrans = attr::kOptional;
constexpr uint8_t kOptTrans = attr::kOptional | attr::kTransitive;

// Expected Optional/Transitive bits of the attributes this codec knows; 0xff: unknown.
uint8_t expected_flags(uint8_t type) {
    switch (type) {
    case attr::kOrigin:
    case attr::kAsPath:
    case attr::kNextHop:
    case attr::kLocalPref:
    case attr::kAtomicAggregate:
        return kWellKnown;
    case attr::kMed:
    case attr::kOriginatorId:
    case attr::kClusterList:
    case attr::kMpReach:
    case attr::kMpUnreach:
        return kOptNonTrans;
    case attr::kAggregator:
    case attr::kCommunities:
    case attr::kExtCommunities:
    case attr::kAs4Path:
    case attr::kAs4Aggregator:
    case attr::kPmsiTunnel:
    case attr::kTunnelEncap:
    case attr::kLargeCommunities:
        return kOptTrans;
    }
    return 0xff;
}

const char *attr_name(uint8_t type) {
    switch (type) {
    case attr::kOrigin:
        return "ORIGIN";
    case attr::kAsPath:
        return "AS_PATH";
    case attr::kNextHop:
        return "NEXT_HOP";
    case attr::kMed:
        return "MULTI_EXIT_DISC";
    case attr::kLocalPref:
        return "LOCAL_PREF";
    case attr::kAtomicAggregate:
        return "ATOMIC_AGGREGATE";
    case attr::kAggregator:
        return "AGGREGATOR";
    case attr::kCommunities:
        return "COMMUNITIES";
    case attr::kOriginatorId:
        return "ORIGINATOR_ID";
    case attr::kClusterList:
        return "CLUSTER_LIST";
    case attr::kMpReach:
        return "MP_REACH_NLRI";
    case attr::kMpUnreach:
        return "MP_UNREACH_NLRI";
    case attr::kExtCommunities:
        return "EXTENDED_COMMUNITIES";
    case attr::kAs4Path:
        return "AS4_PATH";
    case attr::kAs4Aggregator:
        return "AS4_AGGREGATOR";
    case attr::kPmsiTunnel:
        return "PMSI_TUNNEL";
    case attr::kTunnelEncap:
        return "TUNNEL_ENCAPSULATION";
    case attr::kLargeCommunities:
        return "LARGE_COMMUNITY";
    }
    return "unknown";
}

// Returns an error text, or nullptr. RFC 7606 §7.2: zero-length segments, unknown
// segment types, overruns and one-octet underruns are all malformations.
const char *parse_as_path(ByteView v, size_t as_size, bool allow_confed, AsPath &path) {
    Reader r(v);
    path.segments.clear();
    while (!r.empty()) {
        uint8_t type = 0, count = 0;
        if (!r.u8(type) || !r.u8(count)) return "segment header underrun";
        if (type < 1 || type > 4) return "unknown segment type";
        if (!allow_confed && type >= 3) return "confederation segment from an external peer";
        if (count == 0) return "zero-length segment";
        if (r.left() < count * as_size) return "segment overruns the attribute";
        AsSegment seg;
        seg.type = SegmentType(type);
        seg.asns.resize(count);
        for (auto &asn : seg.asns) {
            if (as_size == 4) {
                r.u32(asn);
            } else {
                uint16_t a16 = 0;
                r.u16(a16);
                asn = a16;
            }
        }
        path.segments.push_back(std::move(seg));
    }
    return nullptr;
}

// RFC 9012 §2-3: every TLV and sub-TLV must end exactly where its container does.
const char *parse_tunnel_encap(ByteView v, TunnelEncap &te) {
    Reader r(v);
    while (!r.empty()) {
        TunnelEncap::Tunnel t;
        uint16_t len = 0;
        ByteView tv;
        if (!r.u16(t.type) || !r.u16(len) || !r.view(len, tv))
            return "tunnel TLV overruns the attribute";
        Reader s(tv);
        while (!s.empty()) {
            TunnelEncap::SubTlv sub;
            uint16_t slen = 0;
            ByteView sv;
            if (!s.u8(sub.type)) return "sub-TLV header underrun";
            if (sub.type < 128) {
                uint8_t l8 = 0;
                if (!s.u8(l8)) return "sub-TLV header underrun";
                slen = l8;
            } else if (!s.u16(slen)) {
                return "sub-TLV header underrun";
            }
            if (!s.view(slen, sv)) return "sub-TLV overruns its tunnel TLV";
            switch (sub.type) {
            case TunnelEncap::SubTlv::kEgressEndpoint: {
                if (slen < 6) return "tunnel egress endpoint sub-TLV too short";
                uint16_t afi = uint16_t(sv[4] << 8 | sv[5]);
                size_t want = afi == 1 ? 10 : afi == 2 ? 22 : afi == 0 ? 6 : slen;
                if (slen != want) return "tunnel egress endpoint length disagrees with its AFI";
                break;
            }
            case TunnelEncap::SubTlv::kProtocolType:
            case TunnelEncap::SubTlv::kUdpDestPort:
                if (slen != 2) return "protocol type / UDP port sub-TLV length is not 2";
                break;
            case TunnelEncap::SubTlv::kColor:
                if (slen != 8) return "color sub-TLV length is not 8";
                break;
            default:
                break;
            }
            sub.value.assign(sv.begin(), sv.end());
            t.sub_tlvs.push_back(std::move(sub));
        }
        te.tunnels.push_back(std::move(t));
    }
    return nullptr;
}

uint32_t be32(ByteView v, size_t at) {
    return uint32_t(v[at]) << 24 | uint32_t(v[at + 1]) << 16 | uint32_t(v[at + 2]) << 8 | v[at + 3];
}

bool bad_ipv4_next_hop(uint32_t nh) {
    return nh == 0 || nh == 0xffffffff || (nh >> 28) == 0xe; // unspecified, broadcast, multicast
}

} // namespace

void decode_attr(uint8_t flags, uint8_t type, ByteView v, ByteView whole, const CodecContext &ctx,
                 PathAttrs &a, As4Attrs &as4, Verdict &verdict) {
    const std::string name = attr_name(type);
    auto withdraw = [&](uint8_t sub, const char *why) {
        verdict.raise(UpdateAction::TreatAsWithdraw, sub, whole, name + ": " + why);
    };
    auto length_error = [&] { withdraw(err::kAttrLengthError, "bad length"); };
    auto discard = [&](const char *why) {
        verdict.discard(type, name + ": " + why + ", discarded");
    };

    uint8_t want = expected_flags(type);
    if (want == 0xff) {
        if (!(flags & attr::kOptional)) {
            verdict.raise(UpdateAction::SessionReset, err::kUnrecognizedWellKnown, whole,
                          "unrecognized well-known attribute type " + std::to_string(type));
            return;
        }
        if (flags & attr::kTransitive) {
            RawAttr raw{uint8_t((flags | attr::kPartial) & ~attr::kExtendedLength), type,
                        Bytes(v.begin(), v.end())};
            auto at = std::lower_bound(a.unknown.begin(), a.unknown.end(), type,
                                       [](const RawAttr &x, uint8_t t) { return x.type < t; });
            a.unknown.insert(at, std::move(raw));
        }
        return;
    }
    if ((flags & kOptTrans) != want) {
        withdraw(err::kAttrFlagsError,
                 "Optional/Transitive flags conflict with the attribute type");
        return;
    }
    const size_t as_size = ctx.four_octet_as ? 4 : 2;
    switch (type) {
    case attr::kOrigin:
        if (v.size() != 1) return length_error();
        if (v[0] > 2) return withdraw(err::kInvalidOrigin, "value is not IGP, EGP or INCOMPLETE");
        a.origin = Origin(v[0]);
        return;
    case attr::kAsPath: {
        AsPath path;
        if (auto why = parse_as_path(v, as_size, !ctx.ebgp, path))
            return withdraw(err::kMalformedAsPath, why);
        a.as_path = std::move(path);
        return;
    }
    case attr::kNextHop: {
        if (v.size() != 4) return length_error();
        uint32_t nh = be32(v, 0);
        if (bad_ipv4_next_hop(nh)) return withdraw(err::kInvalidNextHop, "not a unicast address");
        a.next_hop = nh;
        return;
    }
    case attr::kMed:
        if (v.size() != 4) return length_error();
        a.med = be32(v, 0);
        return;
    case attr::kLocalPref:
        if (ctx.ebgp) return discard("received from an external peer");
        if (v.size() != 4) return length_error();
        a.local_pref = be32(v, 0);
        return;
    case attr::kAtomicAggregate:
        if (!v.empty()) return discard("non-zero length");
        a.atomic_aggregate = true;
        return;
    case attr::kAggregator: {
        if (v.size() != as_size + 4) return discard("bad length");
        Aggregator ag;
        ag.asn = as_size == 4 ? be32(v, 0) : uint32_t(v[0] << 8 | v[1]);
        ag.address = be32(v, as_size);
        a.aggregator = ag;
        return;
    }
    case attr::kCommunities:
        if (v.empty() || v.size() % 4) return length_error();
        a.communities.resize(v.size() / 4);
        for (size_t i = 0; i < a.communities.size(); i++) a.communities[i] = be32(v, 4 * i);
        return;
    case attr::kOriginatorId:
        if (ctx.ebgp) return discard("received from an external peer");
        if (v.size() != 4) return length_error();
        a.originator_id = be32(v, 0);
        return;
    case attr::kClusterList:
        if (ctx.ebgp) return discard("received from an external peer");
        if (v.empty() || v.size() % 4) return length_error();
        a.cluster_list.resize(v.size() / 4);
        for (size_t i = 0; i < a.cluster_list.size(); i++) a.cluster_list[i] = be32(v, 4 * i);
        return;
    case attr::kExtCommunities:
        if (v.empty() || v.size() % 8) return length_error();
        a.ext_communities.resize(v.size() / 8);
        for (size_t i = 0; i < a.ext_communities.size(); i++)
            a.ext_communities[i].raw = uint64_t(be32(v, 8 * i)) << 32 | be32(v, 8 * i + 4);
        return;
    case attr::kAs4Path: {
        // RFC 6793 §6: between two 4-octet speakers it must not appear; malformed: discard.
        if (ctx.four_octet_as) return discard("received from a 4-octet AS speaker");
        AsPath path;
        if (parse_as_path(v, 4, false, path)) return discard("malformed");
        as4.path = std::move(path);
        return;
    }
    case attr::kAs4Aggregator:
        if (ctx.four_octet_as) return discard("received from a 4-octet AS speaker");
        if (v.size() != 8) return discard("bad length");
        as4.aggregator = Aggregator{be32(v, 0), be32(v, 4)};
        return;
    case attr::kPmsiTunnel: {
        if (v.size() < 5) return length_error();
        PmsiTunnel t;
        t.flags = v[0];
        t.tunnel_type = v[1];
        t.label = uint32_t(v[2]) << 16 | uint32_t(v[3]) << 8 | v[4];
        t.tunnel_id.assign(v.begin() + 5, v.end());
        if (t.tunnel_type == PmsiTunnel::kIngressReplication && t.tunnel_id.size() != 4 &&
            t.tunnel_id.size() != 16)
            return withdraw(err::kOptionalAttrError,
                            "ingress replication endpoint is not an address");
        a.pmsi_tunnel = std::move(t);
        return;
    }
    case attr::kTunnelEncap: {
        TunnelEncap te;
        if (auto why = parse_tunnel_encap(v, te)) return withdraw(err::kOptionalAttrError, why);
        a.tunnel_encap = std::move(te);
        return;
    }
    case attr::kLargeCommunities:
        if (v.empty() || v.size() % 12) return length_error();
        a.large_communities.resize(v.size() / 12);
        for (size_t i = 0; i < a.large_communities.size(); i++)
            a.large_communities[i] = {be32(v, 12 * i), be32(v, 12 * i + 4), be32(v, 12 * i + 8)};
        return;
    }
}

namespace {

size_t as_count(const AsSegment &s) {
    switch (s.type) {
    case SegmentType::AsSequence:
        return s.asns.size();
    case SegmentType::AsSet:
        return 1;
    default:
        return 0;
    }
}

} // namespace

void merge_as4(PathAttrs &a, As4Attrs &as4) {
    // RFC 6793 §4.2.3: an AGGREGATOR from an OLD speaker that is not AS_TRANS means the
    // AS4 attributes are stale: ignore both.
    if (a.aggregator && a.aggregator->asn != kAsTrans) {
        as4 = {};
        return;
    }
    if (a.aggregator && as4.aggregator) a.aggregator = as4.aggregator;
    if (!as4.path || !a.as_path) return;
    size_t n2 = a.as_path->length(), n4 = as4.path->length();
    if (n2 < n4) return;
    AsPath merged;
    size_t need = n2 - n4;
    for (auto &seg : a.as_path->segments) {
        if (need == 0 && as_count(seg) != 0) break;
        if (seg.type == SegmentType::AsSequence && seg.asns.size() > need) {
            merged.segments.push_back(
                {seg.type, {seg.asns.begin(), seg.asns.begin() + long(need)}});
            need = 0;
            break;
        }
        need -= std::min(need, as_count(seg));
        merged.segments.push_back(seg);
    }
    for (auto &seg : as4.path->segments) {
        if (!merged.segments.empty() && merged.segments.back().type == SegmentType::AsSequence &&
            seg.type == SegmentType::AsSequence) {
            auto &back = merged.segments.back().asns;
            back.insert(back.end(), seg.asns.begin(), seg.asns.end());
        } else {
            merged.segments.push_back(seg);
        }
    }
    a.as_path = std::move(merged);
}

size_t begin_attr(Bytes &o, uint8_t flags, uint8_t type) {
    size_t at = o.size();
    put8(o, flags | attr::kExtendedLength);
    put8(o, type);
    put16(o, 0);
    return at;
}

void end_attr(Bytes &o, size_t at) {
    size_t len = o.size() - at - 4;
    if (len <= 255) {
        o[at] &= uint8_t(~attr::kExtendedLength);
        o[at + 2] = uint8_t(len);
        o.erase(o.begin() + long(at) + 3);
    } else {
        set16(o, at + 2, uint16_t(len));
    }
}

namespace {

// Segments longer than 255 ASes are split (RFC 4271 §4.3 b: 1-octet segment length).
void put_as_path(Bytes &o, const AsPath &p, bool four, bool skip_confed) {
    for (auto &seg : p.segments) {
        if (skip_confed &&
            (seg.type == SegmentType::ConfedSequence || seg.type == SegmentType::ConfedSet))
            continue;
        for (size_t i = 0; i < seg.asns.size(); i += 255) {
            size_t n = std::min<size_t>(255, seg.asns.size() - i);
            put8(o, uint8_t(seg.type));
            put8(o, uint8_t(n));
            for (size_t j = i; j < i + n; j++) {
                if (four)
                    put32(o, seg.asns[j]);
                else
                    put16(o, seg.asns[j] > 0xffff ? kAsTrans : uint16_t(seg.asns[j]));
            }
        }
    }
}

bool needs_as4(const AsPath &p) {
    for (auto &seg : p.segments)
        for (uint32_t asn : seg.asns)
            if (asn > 0xffff) return true;
    return false;
}

} // namespace

void encode_attrs(const PathAttrs &a, std::optional<uint32_t> next_hop, const CodecContext &ctx,
                  Bytes &o) {
    const bool four = ctx.four_octet_as;
    size_t at;
    if (a.origin) {
        at = begin_attr(o, kWellKnown, attr::kOrigin);
        put8(o, uint8_t(*a.origin));
        end_attr(o, at);
    }
    if (a.as_path) {
        at = begin_attr(o, kWellKnown, attr::kAsPath);
        put_as_path(o, *a.as_path, four, false);
        end_attr(o, at);
    }
    if (next_hop) {
        at = begin_attr(o, kWellKnown, attr::kNextHop);
        put32(o, *next_hop);
        end_attr(o, at);
    }
    if (a.med) {
        at = begin_attr(o, kOptNonTrans, attr::kMed);
        put32(o, *a.med);
        end_attr(o, at);
    }
    if (a.local_pref) {
        at = begin_attr(o, kWellKnown, attr::kLocalPref);
        put32(o, *a.local_pref);
        end_attr(o, at);
    }
    if (a.atomic_aggregate) end_attr(o, begin_attr(o, kWellKnown, attr::kAtomicAggregate));
    if (a.aggregator) {
        at = begin_attr(o, kOptTrans, attr::kAggregator);
        if (four)
            put32(o, a.aggregator->asn);
        else
            put16(o, a.aggregator->asn > 0xffff ? kAsTrans : uint16_t(a.aggregator->asn));
        put32(o, a.aggregator->address);
        end_attr(o, at);
    }
    if (!a.communities.empty()) {
        at = begin_attr(o, kOptTrans, attr::kCommunities);
        for (uint32_t c : a.communities) put32(o, c);
        end_attr(o, at);
    }
    if (a.originator_id) {
        at = begin_attr(o, kOptNonTrans, attr::kOriginatorId);
        put32(o, *a.originator_id);
        end_attr(o, at);
    }
    if (!a.cluster_list.empty()) {
        at = begin_attr(o, kOptNonTrans, attr::kClusterList);
        for (uint32_t c : a.cluster_list) put32(o, c);
        end_attr(o, at);
    }
    if (!a.ext_communities.empty()) {
        at = begin_attr(o, kOptTrans, attr::kExtCommunities);
        for (auto &c : a.ext_communities) put64(o, c.raw);
        end_attr(o, at);
    }
    if (!four && a.as_path && needs_as4(*a.as_path)) {
        at = begin_attr(o, kOptTrans, attr::kAs4Path);
        put_as_path(o, *a.as_path, true, true);
        end_attr(o, at);
    }
    if (!four && a.aggregator && a.aggregator->asn > 0xffff) {
        at = begin_attr(o, kOptTrans, attr::kAs4Aggregator);
        put32(o, a.aggregator->asn);
        put32(o, a.aggregator->address);
        end_attr(o, at);
    }
    if (a.pmsi_tunnel) {
        at = begin_attr(o, kOptTrans, attr::kPmsiTunnel);
        put8(o, a.pmsi_tunnel->flags);
        put8(o, a.pmsi_tunnel->tunnel_type);
        put24(o, a.pmsi_tunnel->label);
        put(o, a.pmsi_tunnel->tunnel_id);
        end_attr(o, at);
    }
    if (a.tunnel_encap) {
        at = begin_attr(o, kOptTrans, attr::kTunnelEncap);
        for (auto &t : a.tunnel_encap->tunnels) {
            put16(o, t.type);
            size_t len_at = o.size();
            put16(o, 0);
            for (auto &s : t.sub_tlvs) {
                put8(o, s.type);
                if (s.type < 128)
                    put8(o, uint8_t(s.value.size()));
                else
                    put16(o, uint16_t(s.value.size()));
                put(o, s.value);
            }
            set16(o, len_at, uint16_t(o.size() - len_at - 2));
        }
        end_attr(o, at);
    }
    if (!a.large_communities.empty()) {
        at = begin_attr(o, kOptTrans, attr::kLargeCommunities);
        for (auto &c : a.large_communities)
            put32(o, c.global), put32(o, c.local1), put32(o, c.local2);
        end_attr(o, at);
    }
    for (auto &u : a.unknown) {
        at = begin_attr(o, u.flags, u.type);
        put(o, u.value);
        end_attr(o, at);
    }
}

} // namespace vleaf::bgp::wire

namespace vleaf::bgp {

size_t AsPath::length() const {
    size_t n = 0;
    for (auto &s : segments)
        n += s.type == SegmentType::AsSequence ? s.asns.size()
             : s.type == SegmentType::AsSet    ? 1
                                               : 0;
    return n;
}

bool AsPath::contains(uint32_t asn) const {
    for (auto &s : segments)
        if (std::find(s.asns.begin(), s.asns.end(), asn) != s.asns.end()) return true;
    return false;
}

std::optional<uint32_t> AsPath::first_as() const {
    if (segments.empty() || segments[0].type != SegmentType::AsSequence || segments[0].asns.empty())
        return std::nullopt;
    return segments[0].asns[0];
}

std::string AsPath::str() const {
    std::string s;
    for (auto &seg : segments) {
        if (!s.empty()) s += ' ';
        const char *open = "", *close = "", *sep = " ";
        switch (seg.type) {
        case SegmentType::AsSet:
            open = "{", close = "}", sep = ",";
            break;
        case SegmentType::ConfedSequence:
            open = "(", close = ")";
            break;
        case SegmentType::ConfedSet:
            open = "[", close = "]", sep = ",";
            break;
        default:
            break;
        }
        s += open;
        for (size_t i = 0; i < seg.asns.size(); i++) {
            if (i) s += sep;
            s += std::to_string(seg.asns[i]);
        }
        s += close;
    }
    return s;
}

} // namespace vleaf::bgp
