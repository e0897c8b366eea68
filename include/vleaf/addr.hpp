// Addresses and prefixes shared by the control plane and the dataplane.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace vleaf {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

// An IPv4 or IPv6 address in network byte order. IPv4 lives in the first 4 bytes so
// that hashing and comparison work on the raw bytes for both families.
struct IpAddr {
    Family family = Family::V4;
    std::array<uint8_t, 16> bytes{};

    static IpAddr v4(uint32_t host_order);
    static IpAddr v6(const uint8_t b[16]);
    static std::optional<IpAddr> parse(std::string_view text);

    bool is_v4() const { return family == Family::V4; }
    uint32_t v4_host() const; // host byte order
    uint32_t v4_net() const;  // network byte order, as in a packet
    int max_len() const { return is_v4() ? 32 : 128; }
    bool is_unspecified() const;
    std::string str() const;

    auto operator<=>(const IpAddr &) const = default;
};

struct Prefix {
    IpAddr addr;
    uint8_t len = 0;

    // Rejects host bits unless allow_host_bits; "10.0.0.1/24" is an interface address,
    // "10.0.0.0/24" a route.
    static std::optional<Prefix> parse(std::string_view text, bool allow_host_bits = false);
    Prefix masked() const;
    bool contains(const IpAddr &a) const;
    std::string str() const;

    auto operator<=>(const Prefix &) const = default;
};

struct MacAddr {
    std::array<uint8_t, 6> bytes{};

    static std::optional<MacAddr> parse(std::string_view text);
    bool is_zero() const;
    std::string str() const;

    auto operator<=>(const MacAddr &) const = default;
};

} // namespace vleaf
