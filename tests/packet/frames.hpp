// Builders for test frames, written independently of the dataplane's parsers so that a
// test compares the pipeline against a second implementation.
#pragma once

#include "vleaf/addr.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace vleaf::test {

using Frame = std::vector<uint8_t>;

inline void put16(Frame &f, size_t at, uint16_t v) {
    f[at] = uint8_t(v >> 8);
    f[at + 1] = uint8_t(v);
}

inline uint16_t checksum(const uint8_t *p, size_t n, uint32_t sum = 0) {
    for (size_t k = 0; k + 1 < n; k += 2) sum += uint32_t(p[k] << 8 | p[k + 1]);
    if (n & 1) sum += uint32_t(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

inline Frame ether(const MacAddr &dst, const MacAddr &src, uint16_t type) {
    Frame f(dst.bytes.begin(), dst.bytes.end());
    f.insert(f.end(), src.bytes.begin(), src.bytes.end());
    f.push_back(uint8_t(type >> 8));
    f.push_back(uint8_t(type));
    return f;
}

struct V4 {
    std::string src = "10.0.1.2", dst = "10.0.2.2";
    uint8_t ttl = 64, proto = 17;
    uint16_t sport = 1000, dport = 2000, payload = 18, frag = 0;
};

inline Frame ipv4(const MacAddr &dst_mac, const MacAddr &src_mac, const V4 &v) {
    Frame f = ether(dst_mac, src_mac, 0x0800);
    size_t ip = f.size();
    f.resize(ip + 20 + 8 + v.payload, 0xab);
    uint16_t total = uint16_t(20 + 8 + v.payload);
    f[ip] = 0x45;
    f[ip + 1] = 0;
    put16(f, ip + 2, total);
    put16(f, ip + 4, 0x1234);
    put16(f, ip + 6, v.frag);
    f[ip + 8] = v.ttl;
    f[ip + 9] = v.proto;
    put16(f, ip + 10, 0);
    auto s = IpAddr::parse(v.src)->bytes, d = IpAddr::parse(v.dst)->bytes;
    std::copy(s.begin(), s.begin() + 4, f.begin() + long(ip + 12));
    std::copy(d.begin(), d.begin() + 4, f.begin() + long(ip + 16));
    put16(f, ip + 10, checksum(&f[ip], 20));
    put16(f, ip + 20, v.sport);
    put16(f, ip + 22, v.dport);
    put16(f, ip + 24, uint16_t(8 + v.payload));
    put16(f, ip + 26, 0); // UDP checksum optional over IPv4
    return f;
}

struct V6 {
    std::string src = "fd00:1::2", dst = "fd00:2::2";
    uint8_t hops = 64, next = 17;
    uint16_t sport = 1000, dport = 2000, payload = 18;
};

inline Frame ipv6(const MacAddr &dst_mac, const MacAddr &src_mac, const V6 &v) {
    Frame f = ether(dst_mac, src_mac, 0x86dd);
    size_t ip = f.size();
    f.resize(ip + 40 + 8 + v.payload, 0xcd);
    f[ip] = 0x60;
    f[ip + 1] = f[ip + 2] = f[ip + 3] = 0;
    put16(f, ip + 4, uint16_t(8 + v.payload));
    f[ip + 6] = v.next;
    f[ip + 7] = v.hops;
    auto s = IpAddr::parse(v.src)->bytes, d = IpAddr::parse(v.dst)->bytes;
    std::copy(s.begin(), s.end(), f.begin() + long(ip + 8));
    std::copy(d.begin(), d.end(), f.begin() + long(ip + 24));
    put16(f, ip + 40, v.sport);
    put16(f, ip + 42, v.dport);
    put16(f, ip + 44, uint16_t(8 + v.payload));
    put16(f, ip + 46, 0x5555);                       // not verified by a router
    if (v.next == 58) f[ip + 40] = uint8_t(v.sport); // ICMPv6 type in the first byte
    return f;
}

// What a router must emit for `in`: new MACs, TTL/hop limit minus one, IPv4 checksum
// recomputed from scratch (not incrementally, as the dataplane does).
inline Frame routed(Frame in, const MacAddr &dst, const MacAddr &src) {
    std::copy(dst.bytes.begin(), dst.bytes.end(), in.begin());
    std::copy(src.bytes.begin(), src.bytes.end(), in.begin() + 6);
    if (in[12] == 0x08) {
        in[14 + 8]--;
        put16(in, 14 + 10, 0);
        put16(in, 14 + 10, checksum(&in[14], 20));
    } else {
        in[14 + 7]--;
    }
    return in;
}

// An Ethernet frame with `payload` bytes of filler after the header.
inline Frame l2(const MacAddr &dst, const MacAddr &src, uint16_t type, size_t payload = 46) {
    Frame f = ether(dst, src, type);
    f.resize(f.size() + payload, 0x5a);
    return f;
}

// The same frame with an 802.1Q tag after the MAC addresses.
inline Frame tagged(Frame f, uint16_t vlan) {
    uint8_t tag[4] = {0x81, 0x00, uint8_t(vlan >> 8), uint8_t(vlan)};
    f.insert(f.begin() + 12, tag, tag + 4);
    return f;
}

// An ICMPv4 message (type, code, the 4 bytes after the checksum, body) in an IPv4 packet
// with TTL 64, ID 0, no DF, precedence 6 when `control` (RFC 1812 4.3.2.5).
inline Frame icmp4(const MacAddr &dst_mac, const MacAddr &src_mac, const std::string &src,
                   const std::string &dst, uint8_t type, uint8_t code, uint32_t rest,
                   const Frame &body, bool control = false) {
    Frame f = ether(dst_mac, src_mac, 0x0800);
    size_t ip = f.size(), msg = ip + 20;
    f.resize(msg + 8, 0);
    f.insert(f.end(), body.begin(), body.end());
    f[ip] = 0x45;
    f[ip + 1] = control ? 0xc0 : 0;
    put16(f, ip + 2, uint16_t(f.size() - ip));
    f[ip + 8] = 64;
    f[ip + 9] = 1;
    auto s = IpAddr::parse(src)->bytes, d = IpAddr::parse(dst)->bytes;
    std::copy(s.begin(), s.begin() + 4, f.begin() + long(ip + 12));
    std::copy(d.begin(), d.begin() + 4, f.begin() + long(ip + 16));
    put16(f, ip + 10, checksum(&f[ip], 20));
    f[msg] = type;
    f[msg + 1] = code;
    put16(f, msg + 4, uint16_t(rest >> 16));
    put16(f, msg + 6, uint16_t(rest));
    put16(f, msg + 2, checksum(&f[msg], f.size() - msg));
    return f;
}

// The same for ICMPv6 (hop limit 64), checksummed over the RFC 8200 8.1 pseudo-header.
inline Frame icmp6(const MacAddr &dst_mac, const MacAddr &src_mac, const std::string &src,
                   const std::string &dst, uint8_t type, uint8_t code, uint32_t rest,
                   const Frame &body, uint8_t hops = 64) {
    Frame f = ether(dst_mac, src_mac, 0x86dd);
    size_t ip = f.size(), msg = ip + 40;
    f.resize(msg + 8, 0);
    f.insert(f.end(), body.begin(), body.end());
    uint16_t len = uint16_t(f.size() - msg);
    f[ip] = 0x60;
    put16(f, ip + 4, len);
    f[ip + 6] = 58;
    f[ip + 7] = hops;
    auto s = IpAddr::parse(src)->bytes, d = IpAddr::parse(dst)->bytes;
    std::copy(s.begin(), s.end(), f.begin() + long(ip + 8));
    std::copy(d.begin(), d.end(), f.begin() + long(ip + 24));
    f[msg] = type;
    f[msg + 1] = code;
    put16(f, msg + 4, uint16_t(rest >> 16));
    put16(f, msg + 6, uint16_t(rest));
    Frame pseudo(f.begin() + long(ip + 8), f.begin() + long(ip + 40));
    pseudo.insert(pseudo.end(), {0, 0, uint8_t(len >> 8), uint8_t(len), 0, 0, 0, 58});
    pseudo.insert(pseudo.end(), f.begin() + long(msg), f.end());
    put16(f, msg + 2, checksum(pseudo.data(), pseudo.size()));
    return f;
}

// The first `n` bytes of the IP packet in `frame`.
inline Frame ip_part(const Frame &frame, size_t n) {
    return Frame(frame.begin() + 14, frame.begin() + long(14 + std::min(n, frame.size() - 14)));
}

// Outer headers of a VXLAN frame (RFC 7348), built field by field.
struct Outer {
    MacAddr dst, src;
    std::string sip, dip; // IPv4 or IPv6 by their form
    uint16_t sport = 50000, dport = 4789;
    uint32_t vni = 0;
    uint8_t ttl = 64;
    bool df = true;
    uint8_t flags = 0x08;
};

inline Frame vxlan(const Outer &o, const Frame &inner) {
    bool v6 = o.sip.find(':') != std::string::npos;
    Frame f = ether(o.dst, o.src, v6 ? 0x86dd : 0x0800);
    size_t ip = f.size(), iphl = v6 ? 40 : 20, udp = ip + iphl;
    f.resize(udp + 16, 0);
    f.insert(f.end(), inner.begin(), inner.end());
    uint16_t udp_len = uint16_t(16 + inner.size());
    auto s = IpAddr::parse(o.sip)->bytes, d = IpAddr::parse(o.dip)->bytes;
    if (!v6) {
        f[ip] = 0x45;
        put16(f, ip + 2, uint16_t(20 + udp_len));
        put16(f, ip + 6, o.df ? 0x4000 : 0);
        f[ip + 8] = o.ttl;
        f[ip + 9] = 17;
        std::copy(s.begin(), s.begin() + 4, f.begin() + long(ip + 12));
        std::copy(d.begin(), d.begin() + 4, f.begin() + long(ip + 16));
        put16(f, ip + 10, checksum(&f[ip], 20));
    } else {
        f[ip] = 0x60;
        put16(f, ip + 4, udp_len);
        f[ip + 6] = 17;
        f[ip + 7] = o.ttl;
        std::copy(s.begin(), s.end(), f.begin() + long(ip + 8));
        std::copy(d.begin(), d.end(), f.begin() + long(ip + 24));
    }
    put16(f, udp, o.sport);
    put16(f, udp + 2, o.dport);
    put16(f, udp + 4, udp_len);
    f[udp + 8] = o.flags;
    f[udp + 12] = uint8_t(o.vni >> 16);
    f[udp + 13] = uint8_t(o.vni >> 8);
    f[udp + 14] = uint8_t(o.vni);
    if (v6) { // RFC 8200 8.1 pseudo-header: addresses, upper-layer length, next header
        Frame pseudo(f.begin() + long(ip + 8), f.begin() + long(ip + 40));
        pseudo.insert(pseudo.end(), {0, 0, uint8_t(udp_len >> 8), uint8_t(udp_len), 0, 0, 0, 17});
        pseudo.insert(pseudo.end(), f.begin() + long(udp), f.end());
        uint16_t c = checksum(pseudo.data(), pseudo.size());
        put16(f, udp + 6, c == 0 ? 0xffff : c);
    }
    return f;
}

} // namespace vleaf::test
