// ICMP and ICMPv6 messages the control thread answers with in the dataplane's place:
// "fragmentation needed" / "packet too big" for packets too large for a tunnel
// (RFC 1191, RFC 8201), and echo replies for addresses that have no kernel behind them
// (the anycast gateways). Frames in, frames out: Ethernet II, untagged; no DPDK.
#pragma once

#include "vleaf/addr.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vleaf::icmp {

// Source and destination of an IPv4 or IPv6 frame, if it is one.
std::optional<IpAddr> source_of(std::span<const uint8_t> frame);
std::optional<IpAddr> destination_of(std::span<const uint8_t> frame);

// ICMPv4 type 3 code 4 with next-hop MTU `mtu` (IPv4 with DF set), or ICMPv6 type 2
// (IPv6), from `src` to the source of `offending`, quoting as much of it as fits in 576
// (IPv4) or 1280 (IPv6) bytes. `forwarded`: its TTL or hop limit was decremented already;
// the quote carries the value it arrived with. Nothing for what must not get an error
// (RFC 1812 4.3.2.7, RFC 4443 2.4): ICMP errors, fragments after the first, IPv4 without
// DF, multicast or broadcast destinations, unspecified or multicast sources.
std::optional<std::vector<uint8_t>> too_big(std::span<const uint8_t> offending, const IpAddr &src,
                                            uint16_t mtu, bool forwarded, const MacAddr &eth_dst,
                                            const MacAddr &eth_src);

// The echo reply to an ICMP or ICMPv6 echo request (Ethernet addresses swapped), or
// nothing if `request` is not one.
std::optional<std::vector<uint8_t>> echo_reply(std::span<const uint8_t> request);

// Which of our addresses an ICMP message to `to` comes from: the one whose subnet holds
// `to`, else the first of its family.
std::optional<IpAddr> source_for(const std::vector<Prefix> &ours, const IpAddr &to);

} // namespace vleaf::icmp
