#include "dataplane/offload.hpp"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include <cstring>

namespace vleaf::dp {

namespace {

// The first `len` bits of 4 or 16 bytes set.
void prefix_mask(uint8_t *out, size_t bytes, unsigned len) {
    for (size_t k = 0; k < bytes; k++) {
        unsigned bits = len >= 8 * (k + 1) ? 8 : len > 8 * k ? len - 8 * k : 0;
        out[k] = uint8_t(0xff00 >> bits);
    }
}

void address(uint8_t *spec, uint8_t *mask, size_t bytes, const Prefix &p) {
    prefix_mask(mask, bytes, p.len);
    for (size_t k = 0; k < bytes; k++) spec[k] = p.addr.bytes[k] & mask[k];
}

} // namespace

void FlowRule::item(rte_flow_item_type type, const void *spec, const void *mask) {
    items_[n_items_++] = rte_flow_item{type, spec, nullptr, mask};
}

void FlowRule::action(rte_flow_action_type type, const void *conf) {
    actions_[n_actions_++] = rte_flow_action{type, conf};
}

FlowRule::FlowRule(const FlowSpec &f) {
    const FlowMatch &m = f.match;
    attr_.ingress = 1;
    attr_.priority = f.priority;
    item(RTE_FLOW_ITEM_TYPE_ETH, nullptr, nullptr); // any Ethernet frame of the IP family
    const uint8_t proto = m.proto.value_or(0), proto_mask = m.proto ? 0xff : 0;
    if (m.src.addr.is_v4()) {
        address(reinterpret_cast<uint8_t *>(&ip4_[0].hdr.src_addr),
                reinterpret_cast<uint8_t *>(&ip4_[1].hdr.src_addr), 4, m.src);
        address(reinterpret_cast<uint8_t *>(&ip4_[0].hdr.dst_addr),
                reinterpret_cast<uint8_t *>(&ip4_[1].hdr.dst_addr), 4, m.dst);
        ip4_[0].hdr.next_proto_id = proto;
        ip4_[1].hdr.next_proto_id = proto_mask;
        item(RTE_FLOW_ITEM_TYPE_IPV4, &ip4_[0], &ip4_[1]);
    } else {
        address(ip6_[0].hdr.src_addr, ip6_[1].hdr.src_addr, 16, m.src);
        address(ip6_[0].hdr.dst_addr, ip6_[1].hdr.dst_addr, 16, m.dst);
        ip6_[0].hdr.proto = proto;
        ip6_[1].hdr.proto = proto_mask;
        item(RTE_FLOW_ITEM_TYPE_IPV6, &ip6_[0], &ip6_[1]);
    }
    const bool ports = m.sport_mask || m.dport_mask || m.vni;
    auto set_ports = [&m](auto &spec, auto &mask) {
        spec.hdr.src_port = rte_cpu_to_be_16(m.sport & m.sport_mask);
        mask.hdr.src_port = rte_cpu_to_be_16(m.sport_mask);
        spec.hdr.dst_port = rte_cpu_to_be_16(m.dport & m.dport_mask);
        mask.hdr.dst_port = rte_cpu_to_be_16(m.dport_mask);
    };
    if (ports && proto == IPPROTO_TCP) {
        set_ports(tcp_[0], tcp_[1]);
        item(RTE_FLOW_ITEM_TYPE_TCP, &tcp_[0], &tcp_[1]);
    } else if (ports && proto == IPPROTO_UDP) {
        set_ports(udp_[0], udp_[1]);
        item(RTE_FLOW_ITEM_TYPE_UDP, &udp_[0], &udp_[1]);
    } else if (ports && proto == IPPROTO_SCTP) {
        set_ports(sctp_[0], sctp_[1]);
        item(RTE_FLOW_ITEM_TYPE_SCTP, &sctp_[0], &sctp_[1]);
    } else if (m.icmp_type && proto == IPPROTO_ICMP) {
        icmp_[0].hdr.icmp_type = *m.icmp_type;
        icmp_[1].hdr.icmp_type = 0xff;
        item(RTE_FLOW_ITEM_TYPE_ICMP, &icmp_[0], &icmp_[1]);
    } else if (m.icmp_type && proto == IPPROTO_ICMPV6) {
        icmp6_[0].type = *m.icmp_type;
        icmp6_[1].type = 0xff;
        item(RTE_FLOW_ITEM_TYPE_ICMP6, &icmp6_[0], &icmp6_[1]);
    }
    if (m.vni) {
        for (int k = 0; k < 3; k++) {
            vxlan_[0].vni[k] = uint8_t(*m.vni >> (16 - 8 * k));
            vxlan_[1].vni[k] = 0xff;
        }
        item(RTE_FLOW_ITEM_TYPE_VXLAN, &vxlan_[0], &vxlan_[1]);
    }
    item(RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr);

    switch (f.action) {
    case FlowAction::Drop:
        action(RTE_FLOW_ACTION_TYPE_DROP, nullptr);
        break;
    case FlowAction::Rss:
        for (uint16_t q = 0; q < f.queue; q++) queues_.push_back(q);
        rss_.func = RTE_ETH_HASH_FUNCTION_DEFAULT;
        rss_.level = 2; // the first inner level: the frame inside the VXLAN header
        rss_.types = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
        rss_.queue_num = uint32_t(queues_.size());
        rss_.queue = queues_.data();
        action(RTE_FLOW_ACTION_TYPE_RSS, &rss_);
        break;
    case FlowAction::Queue:
        queue_.index = f.queue;
        action(RTE_FLOW_ACTION_TYPE_QUEUE, &queue_);
        break;
    }
    if (f.count) action(RTE_FLOW_ACTION_TYPE_COUNT, &count_);
    action(RTE_FLOW_ACTION_TYPE_END, nullptr);
}

const char *flow_error_type_name(rte_flow_error_type t) {
    switch (t) {
    case RTE_FLOW_ERROR_TYPE_NONE:
        return "none";
    case RTE_FLOW_ERROR_TYPE_UNSPECIFIED:
        return "unspecified";
    case RTE_FLOW_ERROR_TYPE_HANDLE:
        return "handle";
    case RTE_FLOW_ERROR_TYPE_ATTR_GROUP:
        return "attr_group";
    case RTE_FLOW_ERROR_TYPE_ATTR_PRIORITY:
        return "attr_priority";
    case RTE_FLOW_ERROR_TYPE_ATTR_INGRESS:
        return "attr_ingress";
    case RTE_FLOW_ERROR_TYPE_ATTR_EGRESS:
        return "attr_egress";
    case RTE_FLOW_ERROR_TYPE_ATTR_TRANSFER:
        return "attr_transfer";
    case RTE_FLOW_ERROR_TYPE_ATTR:
        return "attr";
    case RTE_FLOW_ERROR_TYPE_ITEM_NUM:
        return "item_num";
    case RTE_FLOW_ERROR_TYPE_ITEM_SPEC:
        return "item_spec";
    case RTE_FLOW_ERROR_TYPE_ITEM_LAST:
        return "item_last";
    case RTE_FLOW_ERROR_TYPE_ITEM_MASK:
        return "item_mask";
    case RTE_FLOW_ERROR_TYPE_ITEM:
        return "item";
    case RTE_FLOW_ERROR_TYPE_ACTION_NUM:
        return "action_num";
    case RTE_FLOW_ERROR_TYPE_ACTION_CONF:
        return "action_conf";
    case RTE_FLOW_ERROR_TYPE_ACTION:
        return "action";
    case RTE_FLOW_ERROR_TYPE_STATE:
        return "state";
    }
    return "unknown";
}

namespace {
FlowOutcome outcome(int rc, const rte_flow_error &e) {
    return {rc, rc ? flow_error_type_name(e.type) : "", rc && e.message ? e.message : ""};
}
} // namespace

FlowOutcome flow_validate(uint16_t port, const FlowSpec &f) {
    FlowRule r(f);
    rte_flow_error e{};
    int rc = rte_flow_validate(port, &r.attr(), r.pattern(), r.actions(), &e);
    return outcome(rc, e);
}

rte_flow *flow_create(uint16_t port, const FlowSpec &f, FlowOutcome &why) {
    FlowRule r(f);
    rte_flow_error e{};
    rte_flow *flow = rte_flow_create(port, &r.attr(), r.pattern(), r.actions(), &e);
    if (!flow) why = outcome(rte_errno ? -rte_errno : -EINVAL, e);
    return flow;
}

void flow_destroy(uint16_t port, rte_flow *flow) {
    rte_flow_error e{};
    rte_flow_destroy(port, flow, &e);
}

std::optional<uint64_t> flow_hits(uint16_t port, rte_flow *flow) {
    rte_flow_action count{RTE_FLOW_ACTION_TYPE_COUNT, nullptr};
    rte_flow_query_count q{};
    rte_flow_error e{};
    if (rte_flow_query(port, flow, &count, &q, &e) != 0 || !q.hits_set) return std::nullopt;
    return q.hits;
}

FlowPort flow_port() {
    FlowPort p;
    p.validate = flow_validate;
    p.create = [](uint16_t port, const FlowSpec &f, FlowOutcome &why) {
        return reinterpret_cast<uint64_t>(flow_create(port, f, why));
    };
    p.destroy = [](uint16_t port, uint64_t h) {
        flow_destroy(port, reinterpret_cast<rte_flow *>(h));
    };
    p.hits = [](uint16_t port, uint64_t h) {
        return flow_hits(port, reinterpret_cast<rte_flow *>(h));
    };
    return p;
}

} // namespace vleaf::dp
