#include "control/neigh/packets.hpp"

#include <cstring>

namespace vleaf::neigh {

namespace {

constexpr uint8_t kIcmp6 = 58;
constexpr uint8_t kNdHopLimit = 255;
constexpr uint8_t kOptSourceLl = 1;
constexpr uint8_t kOptTargetLl = 2;
constexpr size_t kNsNaLen = 24; // type, code, checksum, flags/reserved, target

uint16_t rd16(const uint8_t *p) {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

void wr16(uint8_t *p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

MacAddr mac_at(const uint8_t *p) {
    MacAddr m;
    std::memcpy(m.bytes.data(), p, 6);
    return m;
}

IpAddr v4_at(const uint8_t *p) {
    IpAddr a;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
}

uint8_t *put_eth(uint8_t *p, const MacAddr &dst, const MacAddr &src, uint16_t type) {
    std::memcpy(p, dst.bytes.data(), 6);
    std::memcpy(p + 6, src.bytes.data(), 6);
    wr16(p + 12, type);
    return p + kEthHeaderLen;
}

uint8_t *put_ipv6(uint8_t *p, const IpAddr &src, const IpAddr &dst, uint16_t payload_len) {
    p[0] = 0x60; // version 6, traffic class 0, flow label 0
    p[1] = p[2] = p[3] = 0;
    wr16(p + 4, payload_len);
    p[6] = kIcmp6;
    p[7] = kNdHopLimit;
    std::memcpy(p + 8, src.bytes.data(), 16);
    std::memcpy(p + 24, dst.bytes.data(), 16);
    return p + kIpv6HeaderLen;
}

// Frame with Ethernet + IPv6 header and an NS/NA body whose first two bytes, target and
// link-layer option are filled in; the checksum is computed last.
std::vector<uint8_t> build_nd(NdType type, uint8_t flags, const MacAddr &eth_src,
                              const MacAddr &eth_dst, const IpAddr &src, const IpAddr &dst,
                              const IpAddr &target, uint8_t ll_option) {
    size_t icmp_len = kNsNaLen + (ll_option ? 8 : 0);
    std::vector<uint8_t> f(kEthHeaderLen + kIpv6HeaderLen + icmp_len, 0);
    uint8_t *p = put_eth(f.data(), eth_dst, eth_src, kEtherIpv6);
    uint8_t *icmp = put_ipv6(p, src, dst, static_cast<uint16_t>(icmp_len));
    icmp[0] = static_cast<uint8_t>(type);
    icmp[4] = flags;
    std::memcpy(icmp + 8, target.bytes.data(), 16);
    if (ll_option) {
        icmp[24] = ll_option;
        icmp[25] = 1; // in units of 8 bytes
        std::memcpy(icmp + 26, eth_src.bytes.data(), 6);
    }
    wr16(icmp + 2, icmp6_checksum(src, dst, {icmp, icmp_len}));
    return f;
}

Parsed parse_arp(std::span<const uint8_t> f, const MacAddr &eth_dst, const MacAddr &eth_src) {
    if (f.size() < kArpFrameLen) return Bad::truncated;
    const uint8_t *p = f.data() + kEthHeaderLen;
    if (rd16(p) != 1 || rd16(p + 2) != 0x0800 || p[4] != 6 || p[5] != 4) return Bad::arp_format;
    ArpMsg m;
    m.eth_dst = eth_dst;
    m.eth_src = eth_src;
    m.op = rd16(p + 6);
    if (m.op != kArpRequest && m.op != kArpReply) return Bad::arp_opcode;
    m.sha = mac_at(p + 8);
    m.spa = v4_at(p + 14);
    m.tha = mac_at(p + 18);
    m.tpa = v4_at(p + 24);
    if (is_multicast(m.sha) || m.sha.is_zero()) return Bad::bad_sender_mac;
    return m;
}

size_t nd_min_len(uint8_t type) {
    switch (static_cast<NdType>(type)) {
    case NdType::RouterSolicit:
        return 8;
    case NdType::RouterAdvert:
        return 16;
    case NdType::NeighborSolicit:
    case NdType::NeighborAdvert:
        return kNsNaLen;
    case NdType::Redirect:
        return 40;
    }
    return 0;
}

Parsed parse_nd(std::span<const uint8_t> f, const MacAddr &eth_dst, const MacAddr &eth_src) {
    if (f.size() < kEthHeaderLen + kIpv6HeaderLen) return Bad::truncated;
    const uint8_t *ip = f.data() + kEthHeaderLen;
    if (ip[0] >> 4 != 6) return Bad::ip6_version;
    // Extension headers before ICMPv6 are legal but never used for ND; the kernel copes.
    if (ip[6] != kIcmp6) return NotNeigh{};
    size_t len = rd16(ip + 4);
    if (f.size() < kEthHeaderLen + kIpv6HeaderLen + len || len < 4) return Bad::truncated;
    const uint8_t *icmp = ip + kIpv6HeaderLen;
    uint8_t type = icmp[0];
    if (type < static_cast<uint8_t>(NdType::RouterSolicit) ||
        type > static_cast<uint8_t>(NdType::Redirect))
        return NotNeigh{};
    if (len < nd_min_len(type)) return Bad::truncated;
    NdMsg m;
    m.type = static_cast<NdType>(type);
    m.eth_dst = eth_dst;
    m.eth_src = eth_src;
    m.src = IpAddr::v6(ip + 8);
    m.dst = IpAddr::v6(ip + 24);
    // A hop limit of 255 proves the sender is on-link: routers decrement it.
    if (ip[7] != kNdHopLimit) return Bad::hop_limit;
    if (icmp6_checksum(m.src, m.dst, {icmp, len}) != 0) return Bad::icmp6_checksum;
    if (icmp[1] != 0) return Bad::nd_code;
    if (is_multicast(eth_src) || eth_src.is_zero()) return Bad::bad_sender_mac;
    if (m.type != NdType::NeighborSolicit && m.type != NdType::NeighborAdvert) return m;

    m.target = IpAddr::v6(icmp + 8);
    if (is_multicast(m.target)) return Bad::nd_target;
    uint8_t ll_type = m.type == NdType::NeighborSolicit ? kOptSourceLl : kOptTargetLl;
    for (size_t off = kNsNaLen; off < len;) {
        if (len - off < 2) return Bad::nd_option;
        size_t olen = icmp[off + 1] * size_t{8};
        if (olen == 0 || olen > len - off) return Bad::nd_option;
        if (icmp[off] == ll_type) {
            if (olen != 8) return Bad::nd_option;
            m.ll = mac_at(icmp + off + 2);
        }
        off += olen;
    }
    if (m.type == NdType::NeighborSolicit) {
        if (m.src.is_unspecified() && (m.ll || m.dst != solicited_node(m.target)))
            return Bad::nd_dad_form;
    } else {
        m.flags = icmp[4] & (kNaRouter | kNaSolicited | kNaOverride);
        if (is_multicast(m.dst) && (m.flags & kNaSolicited)) return Bad::na_solicited_to_group;
    }
    return m;
}

} // namespace

Parsed parse_frame(std::span<const uint8_t> frame) {
    if (frame.size() < kEthHeaderLen) return Bad::truncated;
    MacAddr dst = mac_at(frame.data());
    MacAddr src = mac_at(frame.data() + 6);
    switch (rd16(frame.data() + 12)) {
    case kEtherArp:
        return parse_arp(frame, dst, src);
    case kEtherIpv6:
        return parse_nd(frame, dst, src);
    default:
        return NotNeigh{};
    }
}

std::vector<uint8_t> build_arp(uint16_t op, const MacAddr &eth_dst, const MacAddr &sha,
                               const IpAddr &spa, const MacAddr &tha, const IpAddr &tpa) {
    // Most NICs pad runts themselves but virtual ports (af_packet, memif) do not.
    std::vector<uint8_t> f(kMinFrameLen, 0);
    uint8_t *p = put_eth(f.data(), eth_dst, sha, kEtherArp);
    wr16(p, 1);          // Ethernet
    wr16(p + 2, 0x0800); // IPv4
    p[4] = 6;
    p[5] = 4;
    wr16(p + 6, op);
    std::memcpy(p + 8, sha.bytes.data(), 6);
    std::memcpy(p + 14, spa.bytes.data(), 4);
    std::memcpy(p + 18, tha.bytes.data(), 6);
    std::memcpy(p + 24, tpa.bytes.data(), 4);
    return f;
}

std::vector<uint8_t> build_ns(const MacAddr &eth_src, const MacAddr &eth_dst, const IpAddr &src,
                              const IpAddr &dst, const IpAddr &target) {
    return build_nd(NdType::NeighborSolicit, 0, eth_src, eth_dst, src, dst, target,
                    src.is_unspecified() ? 0 : kOptSourceLl);
}

std::vector<uint8_t> build_na(const MacAddr &eth_src, const MacAddr &eth_dst, const IpAddr &src,
                              const IpAddr &dst, const IpAddr &target, uint8_t flags) {
    return build_nd(NdType::NeighborAdvert, flags, eth_src, eth_dst, src, dst, target,
                    kOptTargetLl);
}

std::optional<IpAddr> solicited(const Parsed &request) {
    if (auto *a = std::get_if<ArpMsg>(&request); a && a->op == kArpRequest) return a->tpa;
    if (auto *n = std::get_if<NdMsg>(&request);
        n && n->type == NdType::NeighborSolicit && !n->src.is_unspecified())
        return n->target;
    return std::nullopt;
}

std::optional<std::vector<uint8_t>> proxy_reply(const Parsed &request, const MacAddr &owner) {
    if (!solicited(request)) return std::nullopt;
    if (auto *a = std::get_if<ArpMsg>(&request)) {
        if (a->sha == owner) return std::nullopt;
        return build_arp(kArpReply, a->sha, owner, a->tpa, a->sha, a->spa);
    }
    auto &n = std::get<NdMsg>(request);
    if (n.eth_src == owner) return std::nullopt;
    return build_na(owner, n.eth_src, n.target, n.src, n.target, kNaSolicited | kNaOverride);
}

uint16_t icmp6_checksum(const IpAddr &src, const IpAddr &dst, std::span<const uint8_t> msg) {
    uint64_t sum = 0;
    for (size_t i = 0; i < 16; i += 2) sum += rd16(&src.bytes[i]) + rd16(&dst.bytes[i]);
    sum += msg.size() + kIcmp6; // upper-layer length (32 bit) and next header
    size_t n = msg.size();
    for (size_t i = 0; i + 1 < n; i += 2) sum += rd16(&msg[i]);
    if (n & 1) sum += static_cast<uint32_t>(msg[n - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

IpAddr link_local(const MacAddr &mac) {
    uint8_t b[16] = {0xfe, 0x80};
    b[8] = mac.bytes[0] ^ 0x02; // universal/local bit inverted
    b[9] = mac.bytes[1];
    b[10] = mac.bytes[2];
    b[11] = 0xff;
    b[12] = 0xfe;
    b[13] = mac.bytes[3];
    b[14] = mac.bytes[4];
    b[15] = mac.bytes[5];
    return IpAddr::v6(b);
}

IpAddr solicited_node(const IpAddr &addr) {
    uint8_t b[16] = {0xff, 0x02};
    b[11] = 0x01;
    b[12] = 0xff;
    std::memcpy(b + 13, &addr.bytes[13], 3);
    return IpAddr::v6(b);
}

MacAddr multicast_mac(const IpAddr &group) {
    MacAddr m;
    m.bytes[0] = m.bytes[1] = 0x33;
    std::memcpy(&m.bytes[2], &group.bytes[12], 4);
    return m;
}

IpAddr all_nodes() {
    uint8_t b[16] = {0xff, 0x02};
    b[15] = 1;
    return IpAddr::v6(b);
}

bool is_link_local(const IpAddr &addr) {
    return !addr.is_v4() && addr.bytes[0] == 0xfe && (addr.bytes[1] & 0xc0) == 0x80;
}

bool is_multicast(const IpAddr &addr) {
    return addr.is_v4() ? (addr.bytes[0] & 0xf0) == 0xe0 : addr.bytes[0] == 0xff;
}

} // namespace vleaf::neigh
