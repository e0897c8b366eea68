// rte_flow offload vocabulary shared by the control plane, which decides what to offload
// (control/offload), and the dataplane, which turns it into rte_flow pattern and action
// arrays and talks to the port (dataplane/offload). Free of DPDK types so that the
// decisions build and test without DPDK.
#pragma once

#include "vleaf/addr.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace vleaf {

// What one rte_flow rule matches, in host byte order. Items: ETH, then IPV4 or IPV6 (the
// family of `src`), then TCP/UDP/SCTP when a port or `vni` is matched, ICMP/ICMP6 when
// `icmp_type` is, then VXLAN when `vni` is.
struct FlowMatch {
    Prefix src, dst;                    // one family; length 0 matches any address
    std::optional<uint8_t> proto;       // the IP protocol (IPv6: the first next header)
    uint16_t sport = 0, sport_mask = 0; // mask 0: any port
    uint16_t dport = 0, dport_mask = 0;
    std::optional<uint8_t> icmp_type;
    std::optional<uint32_t> vni; // VXLAN (proto udp, dport the VXLAN port)

    bool operator==(const FlowMatch &) const = default;
};

enum class FlowAction : uint8_t {
    Drop,
    Rss,  // RSS on the inner headers (encapsulation level 2) over queues [0, queue)
    Queue // to RX queue `queue`
};

struct FlowSpec {
    FlowMatch match;
    FlowAction action = FlowAction::Drop;
    uint16_t queue = 0;
    bool count = false;    // with a COUNT action (hits readable with rte_flow_query)
    uint32_t priority = 0; // rte_flow attribute: lower is matched first

    bool operator==(const FlowSpec &) const = default;
};

// A port's answer to a validate or create: rc 0 accepted, else a negative errno, with
// the rte_flow error type ("item", "action_conf", ...) and the PMD's message.
struct FlowOutcome {
    int rc = 0;
    std::string type;
    std::string message;
};

// How the control plane reaches the ports' rte_flow (dataplane/offload.hpp: flow_port()).
struct FlowPort {
    std::function<FlowOutcome(uint16_t port, const FlowSpec &f)> validate;
    // A handle (never 0), or 0 with `why` filled.
    std::function<uint64_t(uint16_t port, const FlowSpec &f, FlowOutcome &why)> create;
    std::function<void(uint16_t port, uint64_t handle)> destroy;
    // Packets a flow with a COUNT action matched; nullopt when the port cannot tell.
    std::function<std::optional<uint64_t>(uint16_t port, uint64_t handle)> hits;
};

} // namespace vleaf
