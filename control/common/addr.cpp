#include "vleaf/addr.hpp"

#include <arpa/inet.h>
#include <cstdio>

namespace vleaf {

IpAddr IpAddr::v4(uint32_t host_order) {
    IpAddr a;
    uint32_t n = htonl(host_order);
    std::memcpy(a.bytes.data(), &n, 4);
    return a;
}

IpAddr IpAddr::v6(const uint8_t b[16]) {
    IpAddr a;
    a.family = Family::V6;
    std::memcpy(a.bytes.data(), b, 16);
    return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    std::string s(text);
    IpAddr a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.family = Family::V6;
        return a;
    }
    return std::nullopt;
}

uint32_t IpAddr::v4_net() const {
    uint32_t n;
    std::memcpy(&n, bytes.data(), 4);
    return n;
}

uint32_t IpAddr::v4_host() const {
    return ntohl(v4_net());
}

bool IpAddr::is_unspecified() const {
    for (int i = 0; i < (is_v4() ? 4 : 16); i++)
        if (bytes[i]) return false;
    return true;
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<Prefix> Prefix::parse(std::string_view text, bool allow_host_bits) {
    auto slash = text.find('/');
    auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    Prefix p{*addr, static_cast<uint8_t>(addr->max_len())};
    if (slash != std::string_view::npos) {
        auto len_text = text.substr(slash + 1);
        if (len_text.empty() || len_text.size() > 3) return std::nullopt;
        int len = 0;
        for (char c : len_text) {
            if (c < '0' || c > '9') return std::nullopt;
            len = len * 10 + (c - '0');
        }
        if (len > addr->max_len()) return std::nullopt;
        p.len = static_cast<uint8_t>(len);
    }
    if (!allow_host_bits && p.masked() != p) return std::nullopt;
    return p;
}

Prefix Prefix::masked() const {
    Prefix p = *this;
    int nbytes = addr.is_v4() ? 4 : 16;
    for (int i = 0; i < nbytes; i++) {
        int bits = len - i * 8;
        if (bits >= 8) continue;
        p.addr.bytes[i] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    }
    return p;
}

bool Prefix::contains(const IpAddr &a) const {
    if (a.family != addr.family) return false;
    Prefix p{a, len};
    return p.masked().addr == masked().addr;
}

std::string Prefix::str() const {
    return addr.str() + "/" + std::to_string(len);
}

std::optional<MacAddr> MacAddr::parse(std::string_view text) {
    MacAddr m;
    unsigned v[6];
    char tail;
    std::string s(text);
    if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                    &v[5], &tail) != 6)
        return std::nullopt;
    for (int i = 0; i < 6; i++) m.bytes[i] = static_cast<uint8_t>(v[i]);
    return m;
}

bool MacAddr::is_zero() const {
    for (auto b : bytes)
        if (b) return false;
    return true;
}

std::string MacAddr::str() const {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return buf;
}

} // namespace vleaf
