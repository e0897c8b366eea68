// ARP and IPv6 Neighbor Discovery frames: parse with full validation, and build the
// frames the resolver sends. Untagged Ethernet II only; pure byte work, no DPDK.
#pragma once

#include "vleaf/addr.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

namespace vleaf::neigh {

inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;
inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kArpFrameLen = kEthHeaderLen + 28;
inline constexpr size_t kMinFrameLen = 60; // Ethernet minimum without FCS
inline constexpr size_t kIpv6HeaderLen = 40;

enum class NdType : uint8_t {
    RouterSolicit = 133,
    RouterAdvert = 134,
    NeighborSolicit = 135,
    NeighborAdvert = 136,
    Redirect = 137,
};

// Neighbor Advertisement flags, in the first byte after the ICMPv6 checksum.
inline constexpr uint8_t kNaRouter = 0x80;
inline constexpr uint8_t kNaSolicited = 0x40;
inline constexpr uint8_t kNaOverride = 0x20;

// Why a frame was rejected; each has a counter.
#define VLEAF_NEIGH_BAD_REASONS(X)                                                                 \
    X(truncated)             /* shorter than its headers or its IPv6 payload length */             \
    X(arp_format)            /* htype/ptype/hlen/plen not Ethernet + IPv4 */                       \
    X(arp_opcode)            /* neither request nor reply */                                       \
    X(bad_sender_mac)        /* multicast, broadcast or zero sender hardware address */            \
    X(ip6_version)           /* IPv6 ethertype but version nibble is not 6 */                      \
    X(hop_limit)             /* ND message with hop limit other than 255 (RFC 4861 6.1/7.1) */     \
    X(icmp6_checksum)        /* checksum over pseudo-header and message is wrong */                \
    X(nd_code)               /* ICMPv6 code not 0 */                                               \
    X(nd_option)             /* option of length 0, running past the end, or bad LLA length */     \
    X(nd_target)             /* NS/NA target is a multicast address */                             \
    X(nd_dad_form)           /* NS from :: with an SLLA option or not to solicited-node */         \
    X(na_solicited_to_group) /* NA to a multicast destination with the Solicited flag */

enum class Bad : uint8_t {
#define X(name) name,
    VLEAF_NEIGH_BAD_REASONS(X)
#undef X
        count
};

inline constexpr const char *bad_names[] = {
#define X(name) #name,
    VLEAF_NEIGH_BAD_REASONS(X)
#undef X
};

struct ArpMsg {
    MacAddr eth_dst, eth_src;
    uint16_t op = 0;
    MacAddr sha, tha;
    IpAddr spa, tpa;
};

struct NdMsg {
    NdType type = NdType::NeighborSolicit;
    MacAddr eth_dst, eth_src;
    IpAddr src, dst;
    IpAddr target;             // NS/NA only
    uint8_t flags = 0;         // NA only: kNaRouter | kNaSolicited | kNaOverride
    std::optional<MacAddr> ll; // NS: source link-layer option; NA: target link-layer option
};

// Neither ARP nor one of ICMPv6 types 133-137 directly after the IPv6 header.
struct NotNeigh {};

using Parsed = std::variant<ArpMsg, NdMsg, NotNeigh, Bad>;

// Validates everything RFC 826 / RFC 4861 ask a receiver to check. Trailing Ethernet
// padding after the ARP body or the IPv6 payload is ignored.
Parsed parse_frame(std::span<const uint8_t> frame);

// ARP frame, padded to 60 bytes; the Ethernet source is `sha`.
std::vector<uint8_t> build_arp(uint16_t op, const MacAddr &eth_dst, const MacAddr &sha,
                               const IpAddr &spa, const MacAddr &tha, const IpAddr &tpa);

// Neighbor Solicitation with hop limit 255; carries a source link-layer option (our MAC)
// unless `src` is unspecified (DAD form, RFC 4861 4.3).
std::vector<uint8_t> build_ns(const MacAddr &eth_src, const MacAddr &eth_dst, const IpAddr &src,
                              const IpAddr &dst, const IpAddr &target);

// Neighbor Advertisement with hop limit 255 and a target link-layer option (`eth_src`).
std::vector<uint8_t> build_na(const MacAddr &eth_src, const MacAddr &eth_dst, const IpAddr &src,
                              const IpAddr &dst, const IpAddr &target, uint8_t flags);

// ARP/ND suppression: the reply to an ARP request or neighbor solicitation (not DAD)
// given on behalf of `owner`, the host that has the address asked for; nothing if
// `request` is neither or comes from `owner` itself.
std::optional<IpAddr> solicited(const Parsed &request); // the address asked for
std::optional<std::vector<uint8_t>> proxy_reply(const Parsed &request, const MacAddr &owner);

// Internet checksum of an ICMPv6 message over the RFC 8200 8.1 pseudo-header. With the
// message's checksum field filled in, a valid message sums to 0.
uint16_t icmp6_checksum(const IpAddr &src, const IpAddr &dst, std::span<const uint8_t> msg);

// fe80::/64 address with the modified EUI-64 interface id of `mac` (RFC 4291 app. A).
IpAddr link_local(const MacAddr &mac);
// ff02::1:ffXX:XXXX for the low 24 bits of `addr` (RFC 4291 2.7.1).
IpAddr solicited_node(const IpAddr &addr);
// 33:33 + the low 32 bits of an IPv6 multicast address (RFC 2464 7).
MacAddr multicast_mac(const IpAddr &group);
IpAddr all_nodes();
bool is_link_local(const IpAddr &addr);
bool is_multicast(const IpAddr &addr);
inline bool is_multicast(const MacAddr &mac) {
    return mac.bytes[0] & 1;
}

} // namespace vleaf::neigh
