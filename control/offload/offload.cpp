#include "control/offload/offload.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vleaf::offload {

using nlohmann::json;

namespace {

constexpr const char *kFallbackNames[] = {
#define X(name) #name,
    VLEAF_OFFLOAD_FALLBACKS(X)
#undef X
};

bool starts_with(const std::string &s, const char *p) {
    return s.rfind(p, 0) == 0;
}

Fallback classify(const FlowOutcome &o) {
    if (o.rc == -ENOSYS) return Fallback::no_flow_api;
    if (starts_with(o.type, "item")) return Fallback::pattern;
    if (starts_with(o.type, "action")) return Fallback::action;
    if (starts_with(o.type, "attr")) return Fallback::attr;
    return Fallback::validate;
}

std::string describe(const char *what, const FlowOutcome &o) {
    std::string s = std::string(what) + ": " + std::strerror(-o.rc);
    if (!o.type.empty()) s += ", " + o.type;
    if (!o.message.empty()) s += ": " + o.message;
    return s;
}

} // namespace

Offload::Offload(FlowPort cb, std::vector<Port> ports, Vtep vtep)
    : cb_(std::move(cb)), vtep_(vtep) {
    for (auto &p : ports) ports_.push_back(PortState{std::move(p), {}, {}});
}

const Offload::Policy *Offload::ingress_policy(const Port &p) const {
    const Policy *by_vrf = nullptr;
    for (const auto &[id, pol] : policies_) {
        if (pol.where.port && pol.where.id == p.id) return &pol;
        if (!pol.where.port && pol.where.id == p.vrf) by_vrf = &pol;
    }
    return by_vrf;
}

void Offload::set_acl(uint32_t id, const AclAttach &where, const acl::Policy &p) {
    if (where.dir != AclDirection::In) {
        del_acl(id);
        return;
    }
    policies_[id] = Policy{where, plan_acl(p, vtep_)};
    for (auto &ps : ports_) sync(ps);
}

void Offload::del_acl(uint32_t id) {
    if (policies_.erase(id))
        for (auto &ps : ports_) sync(ps);
}

void Offload::set_vxlan(std::vector<uint32_t> vnis, std::map<uint32_t, uint16_t> queues) {
    vnis_ = std::move(vnis);
    queues_ = std::move(queues);
    for (auto &ps : ports_) sync(ps);
}

void Offload::clear() {
    for (auto &ps : ports_) {
        for (auto &[key, r] : ps.rules) uninstall(ps, r);
        ps.rules.clear();
    }
}

// Keeps the rules that did not change (installed flows stay), removes the others first,
// then offers the new ones.
void Offload::sync(PortState &ps) {
    std::map<Key, Want> want;
    if (const Policy *pol = ingress_policy(ps.cfg))
        for (Want w : pol->wants) {
            if (ps.cfg.bridges && w.unfit.empty())
                w.unfit = "the port also bridges frames, which the ACL does not filter";
            want[{w.kind, w.owner, w.id}] = std::move(w);
        }
    if (!ps.cfg.bridges_untagged)
        for (Want &w : plan_vxlan(vtep_, vnis_, queues_, ps.cfg.rx_queues))
            want[{w.kind, w.owner, w.id}] = std::move(w);
    for (auto it = ps.rules.begin(); it != ps.rules.end();) {
        auto w = want.find(it->first);
        if (w != want.end() && w->second == it->second.want) {
            want.erase(w);
            ++it;
            continue;
        }
        uninstall(ps, it->second);
        it = ps.rules.erase(it);
    }
    for (auto &[key, w] : want) install(ps, ps.rules[key] = Rule{std::move(w), {}, false, {}, {}});
}

void Offload::install(PortState &ps, Rule &r) {
    if (!ps.cfg.enabled) {
        r.why = Fallback::disabled;
        r.reason = "offload is off on this port";
    } else if (!r.want.unfit.empty()) {
        r.why = Fallback::rule;
        r.reason = r.want.unfit;
    } else {
        ps.counters.attempts++;
        bool count = std::any_of(r.want.flows.begin(), r.want.flows.end(),
                                 [](const FlowSpec &f) { return f.count; });
        if (try_flows(ps, r, count)) return;
    }
    ps.counters.fallbacks[size_t(r.why)]++;
}

// Validates every flow, then creates them all or none. A port that refuses the COUNT
// action gets the rule without it: its drops are then counted nowhere, which `show
// offload` tells (counted: false).
bool Offload::try_flows(PortState &ps, Rule &r, bool count) {
    for (const FlowSpec &want : r.want.flows) {
        FlowSpec f = want;
        f.count = count;
        FlowOutcome o = cb_.validate(ps.cfg.id, f);
        if (o.rc == 0) continue;
        if (count && starts_with(o.type, "action")) return try_flows(ps, r, false);
        r.why = classify(o);
        r.reason = describe("validate", o);
        return false;
    }
    for (const FlowSpec &want : r.want.flows) {
        FlowSpec f = want;
        f.count = count;
        FlowOutcome o;
        uint64_t h = cb_.create(ps.cfg.id, f, o);
        if (h == 0) {
            for (uint64_t made : r.handles) cb_.destroy(ps.cfg.id, made);
            r.handles.clear();
            r.why = Fallback::create;
            r.reason = describe("create", o);
            return false;
        }
        r.handles.push_back(h);
    }
    r.counted = count;
    ps.counters.offloaded++;
    return true;
}

void Offload::uninstall(PortState &ps, Rule &r) {
    for (uint64_t h : r.handles) cb_.destroy(ps.cfg.id, h);
    if (!r.handles.empty()) ps.counters.removed++;
    r.handles.clear();
}

const Counters &Offload::counters(uint16_t port) const {
    for (const auto &ps : ports_)
        if (ps.cfg.id == port) return ps.counters;
    throw std::out_of_range("no port " + std::to_string(port));
}

json Offload::show() const {
    json out = json::array();
    for (const auto &ps : ports_) {
        json rules = json::array();
        for (const auto &[key, r] : ps.rules) {
            json o = {{"kind", kind_name(r.want.kind)},
                      {"owner", r.want.owner},
                      {"id", r.want.id},
                      {"flows", r.want.flows.size()},
                      {"state", r.handles.empty() ? "software" : "offloaded"},
                      {"reason", r.handles.empty() ? r.reason : ""}};
            if (!r.handles.empty()) o["counted"] = r.counted;
            if (!r.handles.empty() && r.counted) {
                uint64_t sum = 0;
                bool known = true;
                for (uint64_t h : r.handles) {
                    auto n = cb_.hits ? cb_.hits(ps.cfg.id, h) : std::nullopt;
                    known = known && n.has_value();
                    sum += n.value_or(0);
                }
                o["hw_hits"] = known ? json(sum) : json(nullptr);
            }
            rules.push_back(o);
        }
        json fallbacks = json::object();
        for (size_t k = 0; k < size_t(Fallback::count); k++)
            fallbacks[kFallbackNames[k]] = ps.counters.fallbacks[k];
        out.push_back({{"port", ps.cfg.name},
                       {"port_id", ps.cfg.id},
                       {"offload", ps.cfg.enabled ? "on" : "off"},
                       {"attempts", ps.counters.attempts},
                       {"offloaded", ps.counters.offloaded},
                       {"removed", ps.counters.removed},
                       {"fallbacks", fallbacks},
                       {"rules", rules}});
    }
    return out;
}

} // namespace vleaf::offload
