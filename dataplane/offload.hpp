// rte_flow rules from the control plane's FlowSpecs (include/vleaf/offload.hpp): the
// attribute, pattern and action arrays, and the calls that validate, create, destroy and
// query them on a port. Control thread only; workers never see any of it.
#pragma once

#include "vleaf/offload.hpp"

#include <rte_flow.h>

#include <optional>
#include <string>
#include <vector>

namespace vleaf::dp {

// One rule's arrays with the specs and masks they point into (hence neither copied nor
// moved). Addresses, ports and the VNI in network byte order, as rte_flow wants them.
class FlowRule {
  public:
    explicit FlowRule(const FlowSpec &f);
    FlowRule(const FlowRule &) = delete;
    FlowRule &operator=(const FlowRule &) = delete;

    const rte_flow_attr &attr() const { return attr_; }
    const rte_flow_item *pattern() const { return items_; }     // ends with an END item
    const rte_flow_action *actions() const { return actions_; } // ends with an END action

  private:
    void item(rte_flow_item_type type, const void *spec, const void *mask);
    void action(rte_flow_action_type type, const void *conf);

    rte_flow_attr attr_{};
    rte_flow_item items_[6]{};
    rte_flow_action actions_[3]{};
    unsigned n_items_ = 0, n_actions_ = 0;
    // [0] spec, [1] mask
    rte_flow_item_ipv4 ip4_[2]{};
    rte_flow_item_ipv6 ip6_[2]{};
    rte_flow_item_tcp tcp_[2]{};
    rte_flow_item_udp udp_[2]{};
    rte_flow_item_sctp sctp_[2]{};
    rte_flow_item_icmp icmp_[2]{};
    rte_flow_item_icmp6 icmp6_[2]{};
    rte_flow_item_vxlan vxlan_[2]{};
    rte_flow_action_rss rss_{};
    std::vector<uint16_t> queues_;
    rte_flow_action_queue queue_{};
    rte_flow_action_count count_{};
};

const char *flow_error_type_name(rte_flow_error_type t);
// The calls below, for control/offload; handles are the rte_flow pointers.
FlowPort flow_port();
FlowOutcome flow_validate(uint16_t port, const FlowSpec &f);
rte_flow *flow_create(uint16_t port, const FlowSpec &f, FlowOutcome &why); // null on failure
void flow_destroy(uint16_t port, rte_flow *flow);
// Hits of a flow created with a COUNT action; nullopt when the port cannot tell.
std::optional<uint64_t> flow_hits(uint16_t port, rte_flow *flow);

} // namespace vleaf::dp
