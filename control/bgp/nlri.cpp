// Address families and IPv4/IPv6 prefix NLRI.
#include "control/bgp/wire.hpp"

namespace vleaf::bgp {

std::string AfiSafi::str() const {
    if (auto f = to_route_family(*this)) return family_name(*f);
    return std::to_string(afi) + "/" + std::to_string(safi);
}

AfiSafi to_afi_safi(RouteFamily f) {
    switch (f) {
    case RouteFamily::Ipv4Unicast:
        return {uint16_t(Afi::Ipv4), uint8_t(Safi::Unicast)};
    case RouteFamily::Ipv6Unicast:
        return {uint16_t(Afi::Ipv6), uint8_t(Safi::Unicast)};
    case RouteFamily::Evpn:
        return {uint16_t(Afi::L2vpn), uint8_t(Safi::Evpn)};
    }
    return {};
}

std::optional<RouteFamily> to_route_family(AfiSafi as) {
    if (as.afi == uint16_t(Afi::Ipv4) && as.safi == uint8_t(Safi::Unicast))
        return RouteFamily::Ipv4Unicast;
    if (as.afi == uint16_t(Afi::Ipv6) && as.safi == uint8_t(Safi::Unicast))
        return RouteFamily::Ipv6Unicast;
    if (as.afi == uint16_t(Afi::L2vpn) && as.safi == uint8_t(Safi::Evpn)) return RouteFamily::Evpn;
    return std::nullopt;
}

const char *family_name(RouteFamily f) {
    switch (f) {
    case RouteFamily::Ipv4Unicast:
        return "ipv4-unicast";
    case RouteFamily::Ipv6Unicast:
        return "ipv6-unicast";
    case RouteFamily::Evpn:
        return "l2vpn-evpn";
    }
    return "?";
}

void Update::clear() {
    withdrawn.clear();
    nlri.clear();
    attrs.origin.reset();
    attrs.as_path.reset();
    attrs.next_hop.reset();
    attrs.med.reset();
    attrs.local_pref.reset();
    attrs.atomic_aggregate = false;
    attrs.aggregator.reset();
    attrs.communities.clear();
    attrs.originator_id.reset();
    attrs.cluster_list.clear();
    attrs.ext_communities.clear();
    attrs.large_communities.clear();
    attrs.pmsi_tunnel.reset();
    attrs.tunnel_encap.reset();
    attrs.unknown.clear();
    mp_reach.reset();
    mp_unreach.reset();
}

namespace wire {

bool read_prefix(Reader &r, Family fam, bool path_id, PrefixNlri &out) {
    out.path_id = 0;
    if (path_id && !r.u32(out.path_id)) return false;
    uint8_t len = 0;
    if (!r.u8(len)) return false;
    int max = fam == Family::V4 ? 32 : 128;
    if (len > max) return false;
    size_t n = (len + 7u) / 8u;
    out.prefix.addr.family = fam;
    out.prefix.addr.bytes = {};
    if (!r.bytes(out.prefix.addr.bytes.data(), n)) return false;
    out.prefix.len = len;
    // Trailing bits are irrelevant (RFC 4271 §4.3); clear them so equal routes compare equal.
    if (len % 8) out.prefix.addr.bytes[n - 1] &= uint8_t(0xff << (8 - len % 8));
    return true;
}

size_t prefix_wire_len(const PrefixNlri &p, bool path_id) {
    return (path_id ? 4 : 0) + 1 + (p.prefix.len + 7u) / 8u;
}

void put_prefix(Bytes &o, const PrefixNlri &p, bool path_id) {
    if (path_id) put32(o, p.path_id);
    put8(o, p.prefix.len);
    size_t n = (p.prefix.len + 7u) / 8u;
    size_t at = o.size();
    o.insert(o.end(), p.prefix.addr.bytes.begin(), p.prefix.addr.bytes.begin() + n);
    if (p.prefix.len % 8) o[at + n - 1] &= uint8_t(0xff << (8 - p.prefix.len % 8));
}

} // namespace wire
} // namespace vleaf::bgp
