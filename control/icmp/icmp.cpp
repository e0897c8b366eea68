#include "control/icmp/icmp.hpp"

#include "control/neigh/packets.hpp"

#include <algorithm>
#include <cstring>

namespace vleaf::icmp {

namespace {

constexpr size_t kEth = 14, kIp4 = 20, kIp6 = 40, kIcmpHeader = 8;
constexpr uint8_t kProtoIcmp = 1, kProtoIcmp6 = 58, kTtl = 64;
constexpr uint8_t kTosInternetControl = 0xc0; // RFC 1812 4.3.2.5: precedence 6
constexpr size_t kMaxError4 = 576, kMaxError6 = 1280;

uint16_t rd16(const uint8_t *p) {
    return uint16_t(p[0] << 8 | p[1]);
}

void wr16(uint8_t *p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}

uint16_t checksum(const uint8_t *p, size_t n) {
    uint32_t sum = 0;
    for (size_t k = 0; k + 1 < n; k += 2) sum += rd16(p + k);
    if (n & 1) sum += uint32_t(p[n - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

IpAddr v4_at(const uint8_t *p) {
    IpAddr a;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
}

// The IP packet of a frame, without Ethernet padding; empty if it is not one.
struct Ip {
    bool v6 = false;
    const uint8_t *hdr = nullptr;
    size_t hlen = 0, len = 0; // header and whole packet
};

Ip ip_of(std::span<const uint8_t> f) {
    Ip ip;
    if (f.size() < kEth + kIp4) return ip;
    const uint8_t *p = f.data() + kEth;
    uint16_t type = rd16(f.data() + 12);
    if (type == 0x0800 && (p[0] >> 4) == 4) {
        size_t hlen = size_t(p[0] & 0xf) * 4, total = rd16(p + 2);
        if (hlen < kIp4 || total < hlen || f.size() < kEth + hlen) return ip;
        ip.hdr = p;
        ip.hlen = hlen;
        ip.len = std::min(total, f.size() - kEth);
    } else if (type == neigh::kEtherIpv6 && (p[0] >> 4) == 6 && f.size() >= kEth + kIp6) {
        ip.v6 = true;
        ip.hdr = p;
        ip.hlen = kIp6;
        ip.len = std::min(kIp6 + rd16(p + 4), f.size() - kEth);
    }
    return ip;
}

bool usable_source4(const uint8_t *a) {
    uint32_t v = uint32_t(a[0]) << 24 | a[1] << 16 | a[2] << 8 | a[3];
    return v != 0 && (v >> 28) < 0xe && (v >> 24) != 127;
}

bool is_error4(const Ip &ip) {
    if (ip.hdr[9] != kProtoIcmp || ip.len < ip.hlen + 1) return false;
    uint8_t type = ip.hdr[ip.hlen];
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

std::vector<uint8_t> frame(const MacAddr &dst, const MacAddr &src, uint16_t type, size_t len) {
    std::vector<uint8_t> f(kEth + len, 0);
    std::memcpy(f.data(), dst.bytes.data(), 6);
    std::memcpy(f.data() + 6, src.bytes.data(), 6);
    wr16(f.data() + 12, type);
    return f;
}

void put_ipv4(uint8_t *p, uint16_t total, const uint8_t *src, const uint8_t *dst) {
    p[0] = 0x45;
    p[1] = kTosInternetControl;
    wr16(p + 2, total);
    p[8] = kTtl;
    p[9] = kProtoIcmp;
    std::memcpy(p + 12, src, 4);
    std::memcpy(p + 16, dst, 4);
    wr16(p + 10, checksum(p, kIp4));
}

void put_ipv6(uint8_t *p, uint16_t payload, const uint8_t *src, const uint8_t *dst) {
    p[0] = 0x60;
    wr16(p + 4, payload);
    p[6] = kProtoIcmp6;
    p[7] = kTtl;
    std::memcpy(p + 8, src, 16);
    std::memcpy(p + 24, dst, 16);
}

std::optional<std::vector<uint8_t>> too_big4(const Ip &ip, const IpAddr &src, uint16_t mtu,
                                             bool forwarded, const MacAddr &eth_dst,
                                             const MacAddr &eth_src) {
    const uint8_t *h = ip.hdr;
    bool df = h[6] & 0x40;
    bool later_fragment = (rd16(h + 6) & 0x1fff) != 0;
    uint32_t dst = uint32_t(h[16]) << 24 | h[17] << 16 | h[18] << 8 | h[19];
    if (!df || later_fragment || !usable_source4(h + 12) || (dst >> 28) == 0xe ||
        dst == 0xffffffff || is_error4(ip))
        return std::nullopt;
    size_t quote = std::min(ip.len, kMaxError4 - kIp4 - kIcmpHeader);
    size_t len = kIp4 + kIcmpHeader + quote;
    auto f = frame(eth_dst, eth_src, 0x0800, len);
    uint8_t *p = f.data() + kEth, *msg = p + kIp4;
    put_ipv4(p, uint16_t(len), src.bytes.data(), h + 12);
    msg[0] = 3; // destination unreachable
    msg[1] = 4; // fragmentation needed and DF set
    wr16(msg + 6, mtu);
    uint8_t *q = msg + kIcmpHeader;
    std::memcpy(q, h, quote);
    if (forwarded) {
        q[8]++;
        wr16(q + 10, 0);
        wr16(q + 10, checksum(q, ip.hlen));
    }
    wr16(msg + 2, checksum(msg, kIcmpHeader + quote));
    return f;
}

std::optional<std::vector<uint8_t>> too_big6(const Ip &ip, const IpAddr &src, uint16_t mtu,
                                             bool forwarded, const MacAddr &eth_dst,
                                             const MacAddr &eth_src) {
    const uint8_t *h = ip.hdr;
    IpAddr to = IpAddr::v6(h + 8);
    if (to.is_unspecified() || neigh::is_multicast(to)) return std::nullopt;
    if (h[6] == kProtoIcmp6 && ip.len > kIp6 && h[kIp6] < 128) return std::nullopt;
    size_t quote = std::min(ip.len, kMaxError6 - kIp6 - kIcmpHeader);
    size_t len = kIp6 + kIcmpHeader + quote;
    auto f = frame(eth_dst, eth_src, neigh::kEtherIpv6, len);
    uint8_t *p = f.data() + kEth, *msg = p + kIp6;
    put_ipv6(p, uint16_t(kIcmpHeader + quote), src.bytes.data(), h + 8);
    msg[0] = 2; // packet too big
    wr16(msg + 6, mtu);
    std::memcpy(msg + kIcmpHeader, h, quote);
    if (forwarded) msg[kIcmpHeader + 7]++;
    wr16(msg + 2, neigh::icmp6_checksum(src, to, {msg, kIcmpHeader + quote}));
    return f;
}

} // namespace

std::optional<IpAddr> source_of(std::span<const uint8_t> f) {
    Ip ip = ip_of(f);
    if (!ip.hdr) return std::nullopt;
    return ip.v6 ? IpAddr::v6(ip.hdr + 8) : v4_at(ip.hdr + 12);
}

std::optional<IpAddr> destination_of(std::span<const uint8_t> f) {
    Ip ip = ip_of(f);
    if (!ip.hdr) return std::nullopt;
    return ip.v6 ? IpAddr::v6(ip.hdr + 24) : v4_at(ip.hdr + 16);
}

std::optional<std::vector<uint8_t>> too_big(std::span<const uint8_t> offending, const IpAddr &src,
                                            uint16_t mtu, bool forwarded, const MacAddr &eth_dst,
                                            const MacAddr &eth_src) {
    Ip ip = ip_of(offending);
    if (!ip.hdr || ip.v6 == src.is_v4()) return std::nullopt;
    return ip.v6 ? too_big6(ip, src, mtu, forwarded, eth_dst, eth_src)
                 : too_big4(ip, src, mtu, forwarded, eth_dst, eth_src);
}

std::optional<std::vector<uint8_t>> echo_reply(std::span<const uint8_t> request) {
    Ip ip = ip_of(request);
    if (!ip.hdr || ip.len < ip.hlen + kIcmpHeader) return std::nullopt;
    const uint8_t *h = ip.hdr;
    if (ip.v6 ? (h[6] != kProtoIcmp6 || h[kIp6] != 128)
              : (h[9] != kProtoIcmp || h[ip.hlen] != 8 || (rd16(h + 6) & 0x3fff) != 0))
        return std::nullopt;
    std::vector<uint8_t> f(request.begin(), request.begin() + long(kEth + ip.len));
    std::swap_ranges(f.begin(), f.begin() + 6, f.begin() + 6);
    uint8_t *p = f.data() + kEth, *msg = p + ip.hlen;
    size_t msg_len = ip.len - ip.hlen;
    wr16(msg + 2, 0);
    if (ip.v6) {
        std::swap_ranges(p + 8, p + 24, p + 24);
        p[7] = kTtl;
        msg[0] = 129;
        wr16(msg + 2, neigh::icmp6_checksum(IpAddr::v6(p + 8), IpAddr::v6(p + 24), {msg, msg_len}));
        return f;
    }
    std::swap_ranges(p + 12, p + 16, p + 16);
    p[8] = kTtl;
    wr16(p + 10, 0);
    wr16(p + 10, checksum(p, ip.hlen));
    msg[0] = 0;
    wr16(msg + 2, checksum(msg, msg_len));
    return f;
}

std::optional<IpAddr> source_for(const std::vector<Prefix> &ours, const IpAddr &to) {
    std::optional<IpAddr> first;
    for (const Prefix &p : ours) {
        if (p.addr.family != to.family) continue;
        if (p.contains(to)) return p.addr;
        if (!first) first = p.addr;
    }
    return first;
}

} // namespace vleaf::icmp
