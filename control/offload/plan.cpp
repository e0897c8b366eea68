#include "control/offload/plan.hpp"

namespace vleaf::offload {

namespace {

bool prefixes_overlap(const Prefix &a, const Prefix &b) {
    if (a.addr.family != b.addr.family) return false;
    return a.len <= b.len ? a.masked().contains(b.addr) : b.masked().contains(a.addr);
}

bool ranges_overlap(uint16_t alo, uint16_t ahi, uint16_t blo, uint16_t bhi) {
    return alo <= bhi && blo <= ahi;
}

std::string range_text(uint16_t lo, uint16_t hi) {
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

IpAddr any_of(Family f) {
    static const uint8_t zero[16] = {};
    return f == Family::V4 ? IpAddr::v4(0) : IpAddr::v6(zero);
}

// Why the hardware could drop a packet of `d` (rule k of p) that the software ACL would
// not, or miss counting one; empty when it cannot.
// `others`: the indexes of p's Allow and Count rules, the only ones that can conflict.
std::string semantic_conflict(const acl::Policy &p, size_t k, const std::vector<size_t> &others,
                              const Vtep &vtep) {
    const AclRule &d = p.rules[k].rule;
    for (size_t j : others) {
        const AclRule &o = p.rules[j].rule;
        if (!overlap(o, d)) continue;
        bool first = o.priority < d.priority || (o.priority == d.priority && j < k);
        if (o.action == AclAction::Allow && first)
            return "allow rule " + std::to_string(p.rules[j].id) +
                   " takes precedence over part of its match";
        if (o.action == AclAction::Count)
            return "count rule " + std::to_string(p.rules[j].id) + " counts packets it matches";
    }
    const bool v4 = d.src.addr.is_v4();
    const std::optional<IpAddr> &ours = v4 ? vtep.v4 : vtep.v6;
    if (ours && d.dst.masked().contains(*ours) && (!d.proto || *d.proto == IPPROTO_UDP) &&
        d.dport_lo <= vtep.udp_port && vtep.udp_port <= d.dport_hi)
        return "could match VXLAN to our VTEP, which the ACL filters decapsulated";
    if (!v4) {
        bool icmp6 = !d.proto || *d.proto == IPPROTO_ICMPV6;
        if (icmp6 && (!d.icmp_type || (*d.icmp_type >= 133 && *d.icmp_type <= 137)))
            return "could match IPv6 neighbor discovery, which goes to the host unfiltered";
        if (prefixes_overlap(d.dst, *Prefix::parse("fe80::/10")) ||
            prefixes_overlap(d.dst, *Prefix::parse("ff00::/8")))
            return "could match IPv6 link-local or multicast traffic, which goes to the host "
                   "unfiltered";
    }
    return "";
}

} // namespace

const char *kind_name(Kind k) {
    switch (k) {
    case Kind::AclDrop:
        return "acl-drop";
    case Kind::VxlanRss:
        return "vxlan-rss";
    case Kind::VxlanQueue:
        return "vxlan-queue";
    }
    return "?";
}

std::vector<std::pair<uint16_t, uint16_t>> port_blocks(uint16_t lo, uint16_t hi) {
    std::vector<std::pair<uint16_t, uint16_t>> out;
    uint32_t at = lo;
    while (at <= hi) {
        uint32_t size = at ? at & -at : 0x10000; // the largest block aligned at `at`
        while (at + size - 1 > hi) size >>= 1;
        out.emplace_back(uint16_t(at), uint16_t(~(size - 1)));
        at += size;
    }
    return out;
}

bool overlap(const AclRule &a, const AclRule &b) {
    if (!prefixes_overlap(a.src, b.src) || !prefixes_overlap(a.dst, b.dst)) return false;
    if (a.proto && b.proto && *a.proto != *b.proto) return false;
    if (a.icmp_type && b.icmp_type && *a.icmp_type != *b.icmp_type) return false;
    return ranges_overlap(a.sport_lo, a.sport_hi, b.sport_lo, b.sport_hi) &&
           ranges_overlap(a.dport_lo, a.dport_hi, b.dport_lo, b.dport_hi);
}

std::vector<Want> plan_acl(const acl::Policy &p, const Vtep &vtep) {
    std::vector<Want> out;
    if (p.dir != AclDirection::In) return out;
    std::vector<size_t> others;
    for (size_t k = 0; k < p.rules.size(); k++)
        if (p.rules[k].rule.action != AclAction::Deny) others.push_back(k);
    for (size_t k = 0; k < p.rules.size(); k++) {
        const AclRule &r = p.rules[k].rule;
        if (r.action != AclAction::Deny) continue;
        Want w{Kind::AclDrop, p.name, p.rules[k].id, {}, semantic_conflict(p, k, others, vtep)};
        auto sports = port_blocks(r.sport_lo, r.sport_hi);
        auto dports = port_blocks(r.dport_lo, r.dport_hi);
        if (w.unfit.empty() && sports.size() * dports.size() > kMaxFlowsPerRule)
            w.unfit = "sport " + range_text(r.sport_lo, r.sport_hi) + " and dport " +
                      range_text(r.dport_lo, r.dport_hi) + " need " +
                      std::to_string(sports.size() * dports.size()) +
                      " value/mask blocks (at most " + std::to_string(kMaxFlowsPerRule) + ")";
        if (w.unfit.empty())
            for (auto [sv, sm] : sports)
                for (auto [dv, dm] : dports) {
                    FlowSpec f;
                    f.match = {r.src.masked(), r.dst.masked(), r.proto, sv, sm, dv, dm,
                               r.icmp_type,    std::nullopt};
                    f.count = true;
                    f.priority = kAclPriority;
                    w.flows.push_back(f);
                }
        out.push_back(std::move(w));
    }
    return out;
}

std::vector<Want> plan_vxlan(const Vtep &vtep, const std::vector<uint32_t> &vnis,
                             const std::map<uint32_t, uint16_t> &queues, uint16_t rx_queues) {
    std::vector<Want> out;
    if (!vtep.v4 && !vtep.v6) return out;
    for (uint32_t vni : vnis) {
        auto q = queues.find(vni);
        Want w{q == queues.end() ? Kind::VxlanRss : Kind::VxlanQueue, "vxlan", vni, {}, ""};
        if (q != queues.end() && q->second >= rx_queues)
            w.unfit = "queue " + std::to_string(q->second) + ": the port has " +
                      std::to_string(rx_queues) + " RX queue(s)";
        else if (q == queues.end() && rx_queues < 2)
            w.unfit = "one RX queue: nothing to spread";
        for (const auto *addr : {&vtep.v4, &vtep.v6}) {
            if (!*addr || !w.unfit.empty()) continue;
            const IpAddr &a = **addr;
            FlowSpec f;
            f.match.src = Prefix{any_of(a.family), 0};
            f.match.dst = Prefix{a, uint8_t(a.max_len())};
            f.match.proto = IPPROTO_UDP;
            f.match.dport = vtep.udp_port;
            f.match.dport_mask = 0xffff;
            f.match.vni = vni;
            f.action = q == queues.end() ? FlowAction::Rss : FlowAction::Queue;
            f.queue = q == queues.end() ? rx_queues : q->second;
            f.priority = kVxlanPriority;
            w.flows.push_back(f);
        }
        out.push_back(std::move(w));
    }
    return out;
}

} // namespace vleaf::offload
