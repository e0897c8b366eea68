#include "control/acl/acl.hpp"

#include <algorithm>
#include <charconv>

namespace vleaf::acl {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string &field, const std::string &reason) {
    throw AclError(field + ": " + reason);
}

std::optional<uint64_t> number(const Fields &f, const char *key, uint64_t lo, uint64_t hi) {
    auto s = f(key);
    if (!s) return std::nullopt;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (s->empty() || ec != std::errc() || end != s->data() + s->size() || v < lo || v > hi)
        bad(key,
            "'" + *s + "' is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
}

// "80" or "1000-2000".
void port_range(const Fields &f, const char *key, uint16_t &lo, uint16_t &hi) {
    auto s = f(key);
    if (!s) return;
    auto dash = s->find('-');
    std::string a = s->substr(0, dash), b = dash == std::string::npos ? a : s->substr(dash + 1);
    auto parse = [&](const std::string &t, uint16_t &out) {
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        return !t.empty() && ec == std::errc() && end == t.data() + t.size();
    };
    if (!parse(a, lo) || !parse(b, hi))
        bad(key, "'" + *s + "' is not a port (0..65535) or a range lo-hi");
    if (lo > hi) bad(key, "'" + *s + "' is an empty range");
}

std::optional<Prefix> prefix(const Fields &f, const char *key) {
    auto s = f(key);
    if (!s || *s == "any") return std::nullopt;
    if (s->find('/') == std::string::npos) {
        auto a = IpAddr::parse(*s);
        if (!a) bad(key, "'" + *s + "' is not an address or prefix");
        return Prefix{*a, uint8_t(a->max_len())};
    }
    auto p = Prefix::parse(*s);
    if (!p) {
        if (Prefix::parse(*s, true)) bad(key, "'" + *s + "' has host bits set");
        bad(key, "'" + *s + "' is not an address or prefix");
    }
    return p;
}

struct Named {
    const char *name;
    uint8_t value;
};
constexpr Named kProtos[] = {{"tcp", IPPROTO_TCP},
                             {"udp", IPPROTO_UDP},
                             {"sctp", IPPROTO_SCTP},
                             {"icmp", IPPROTO_ICMP},
                             {"icmpv6", IPPROTO_ICMPV6}};

void check_name(const std::string &field, const std::string &name) {
    if (name.empty()) bad(field, "must not be empty");
    if (name.size() > 32) bad(field, "'" + name + "' is longer than 32 characters");
    for (char c : name)
        if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
            bad(field, "'" + name + "' may only hold letters, digits, '_', '-' and '.'");
}

std::string range_str(uint16_t lo, uint16_t hi) {
    if (lo == 0 && hi == 65535) return "any";
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

} // namespace

AclAction action_from(const std::string &field, const std::string &s, bool count_ok) {
    if (s == "allow") return AclAction::Allow;
    if (s == "deny") return AclAction::Deny;
    if (s == "count" && count_ok) return AclAction::Count;
    bad(field, "'" + s + "' is not " + (count_ok ? "allow, deny or count" : "allow or deny"));
}

const char *action_name(AclAction a) {
    return a == AclAction::Allow ? "allow" : a == AclAction::Deny ? "deny" : "count";
}

Rule rule_from(const Fields &f) {
    Rule out;
    out.id = static_cast<uint32_t>(number(f, "id", 1, UINT32_MAX).value_or(0));
    AclRule &r = out.rule;
    if (auto p = f("proto"); p && *p != "any") {
        auto it = std::find_if(std::begin(kProtos), std::end(kProtos),
                               [&](const Named &n) { return *p == n.name; });
        r.proto =
            it != std::end(kProtos) ? it->value : static_cast<uint8_t>(*number(f, "proto", 0, 255));
    }
    auto src = prefix(f, "src"), dst = prefix(f, "dst");
    std::optional<Family> fam;
    if (auto s = f("family")) {
        if (*s != "ipv4" && *s != "ipv6") bad("family", "'" + *s + "' is not ipv4 or ipv6");
        fam = *s == "ipv4" ? Family::V4 : Family::V6;
    }
    for (auto [key, p] : {std::pair{"src", &src}, std::pair{"dst", &dst}})
        if (*p && fam && (*p)->addr.family != *fam) bad(key, "not of family " + *f("family"));
    if (!fam && src) fam = src->addr.family;
    if (!fam && dst) fam = dst->addr.family;
    if (!fam && r.proto == IPPROTO_ICMPV6) fam = Family::V6;
    if (!fam && r.proto == IPPROTO_ICMP) fam = Family::V4;
    if (!fam) bad("family", "required when neither src nor dst is given (ipv4 or ipv6)");
    IpAddr any = *fam == Family::V4 ? IpAddr::v4(0) : *IpAddr::parse("::");
    r.src = src.value_or(Prefix{any, 0});
    r.dst = dst.value_or(Prefix{any, 0});
    port_range(f, "sport", r.sport_lo, r.sport_hi);
    port_range(f, "dport", r.dport_lo, r.dport_hi);
    if (auto t = number(f, "icmp_type", 0, 255)) r.icmp_type = static_cast<uint8_t>(*t);
    r.priority = static_cast<int32_t>(number(f, "priority", 0, INT32_MAX).value_or(0));
    auto a = f("action");
    if (!a) bad("action", "required (allow, deny or count)");
    r.action = action_from("action", *a, true);
    if (std::string e = acl_rule_error(r); !e.empty()) throw AclError(e);
    return out;
}

Policy policy_from(const Fields &f) {
    Policy p;
    p.name = f("name").value_or("");
    check_name("name", p.name);
    if (auto d = f("direction")) {
        if (*d != "in" && *d != "out") bad("direction", "'" + *d + "' is not in or out");
        p.dir = *d == "in" ? AclDirection::In : AclDirection::Out;
    }
    p.interface = f("interface").value_or("");
    p.vrf = f("vrf").value_or("");
    if (p.interface.empty() == p.vrf.empty())
        bad("interface", "give exactly one of interface and vrf (where the policy filters)");
    if (auto d = f("default")) p.default_action = action_from("default", *d, false);
    return p;
}

json rule_json(const Rule &r) {
    const AclRule &a = r.rule;
    return {{"id", r.id},
            {"priority", a.priority},
            {"action", action_name(a.action)},
            {"src", a.src.str()},
            {"dst", a.dst.str()},
            {"proto", a.proto ? json(*a.proto) : json("any")},
            {"sport", range_str(a.sport_lo, a.sport_hi)},
            {"dport", range_str(a.dport_lo, a.dport_hi)},
            {"icmp_type", a.icmp_type ? json(*a.icmp_type) : json("any")}};
}

Registry::Entry &Registry::get(const std::string &name) {
    auto it = policies_.find(name);
    if (it == policies_.end()) bad("policy", "no ACL policy named '" + name + "'");
    return it->second;
}

const Policy *Registry::find(const std::string &name) const {
    auto it = policies_.find(name);
    return it == policies_.end() ? nullptr : &it->second.p;
}

void Registry::fold(Entry &e, const std::vector<uint64_t> &hits) {
    if (hits.empty()) return;
    for (size_t k = 0; k + 1 < hits.size() && k < e.p.rules.size(); k++)
        e.folded[e.p.rules[k].id] += hits[k];
    e.folded_default += hits.back();
}

// The dataplane first (it may refuse), then our copy; the old version's counts are folded
// by the ids of its own rules.
void Registry::replace(Entry &e, Policy next) {
    std::vector<uint64_t> old;
    try {
        old = cb_.program(e.id, next);
    } catch (const AclError &) {
        throw;
    } catch (const std::exception &x) {
        bad("policy", x.what());
    }
    fold(e, old);
    e.p = std::move(next);
    for (auto it = e.folded.begin(); it != e.folded.end();) // drop counts of deleted rules
        it = std::any_of(e.p.rules.begin(), e.p.rules.end(),
                         [&](const Rule &r) { return r.id == it->first; })
                 ? std::next(it)
                 : e.folded.erase(it);
}

void Registry::add_policy(Policy p) {
    check_name("name", p.name);
    if (policies_.count(p.name)) bad("name", "ACL policy '" + p.name + "' already exists");
    for (const auto &[n, e] : policies_)
        if (e.p.dir == p.dir && e.p.interface == p.interface && e.p.vrf == p.vrf)
            bad(p.interface.empty() ? "vrf" : "interface",
                "'" + (p.interface.empty() ? p.vrf : p.interface) + "' already has policy '" + n +
                    "' in direction " + (p.dir == AclDirection::In ? "in" : "out"));
    uint32_t next = 1;
    for (size_t k = 0; k < p.rules.size(); k++) {
        Rule &r = p.rules[k];
        if (r.id == 0) r.id = next;
        for (size_t j = 0; j < k; j++)
            if (p.rules[j].id == r.id)
                bad("rules[" + std::to_string(k) + "].id", std::to_string(r.id) + " given twice");
        next = std::max(next, r.id + 1);
        if (std::string e = acl_rule_error(r.rule); !e.empty())
            throw AclError("rules[" + std::to_string(k) + "]." + e);
    }
    Entry e{next_id_, {}, {}, 0};
    e.p.name = p.name;
    replace(e, std::move(p));
    next_id_++;
    policies_.emplace(e.p.name, std::move(e));
}

void Registry::del_policy(const std::string &name) {
    cb_.remove(get(name).id);
    policies_.erase(name);
}

void Registry::set_default(const std::string &name, AclAction a) {
    Entry &e = get(name);
    Policy next = e.p;
    next.default_action = a;
    replace(e, std::move(next));
}

uint32_t Registry::add_rule(const std::string &name, Rule r) {
    Entry &e = get(name);
    if (std::string err = acl_rule_error(r.rule); !err.empty()) throw AclError(err);
    uint32_t next = 1;
    for (const Rule &o : e.p.rules) {
        if (o.id == r.id) bad("id", std::to_string(r.id) + " is already a rule of '" + name + "'");
        next = std::max(next, o.id + 1);
    }
    if (r.id == 0) {
        if (next == 0) bad("id", "no free rule id: give one");
        r.id = next;
    }
    Policy p = e.p;
    p.rules.push_back(r);
    replace(e, std::move(p));
    return r.id;
}

void Registry::del_rule(const std::string &name, uint32_t id) {
    Entry &e = get(name);
    Policy p = e.p;
    auto it =
        std::find_if(p.rules.begin(), p.rules.end(), [id](const Rule &r) { return r.id == id; });
    if (it == p.rules.end()) bad("id", "policy '" + name + "' has no rule " + std::to_string(id));
    p.rules.erase(it);
    replace(e, std::move(p));
}

json Registry::show(const std::string &name) const {
    if (!name.empty() && !policies_.count(name))
        bad("policy", "no ACL policy named '" + name + "'");
    json out = json::array();
    for (const auto &[n, e] : policies_) {
        if (!name.empty() && n != name) continue;
        std::vector<uint64_t> live = cb_.hits ? cb_.hits(e.id) : std::vector<uint64_t>{};
        auto hits_of = [&](size_t k) { return k < live.size() ? live[k] : 0; };
        json rules = json::array();
        for (size_t k = 0; k < e.p.rules.size(); k++) {
            json r = rule_json(e.p.rules[k]);
            auto f = e.folded.find(e.p.rules[k].id);
            r["hits"] = hits_of(k) + (f == e.folded.end() ? 0 : f->second);
            rules.push_back(r);
        }
        json o = {{"name", n},
                  {"direction", e.p.dir == AclDirection::In ? "in" : "out"},
                  {"default", action_name(e.p.default_action)},
                  {"default_hits", hits_of(e.p.rules.size()) + e.folded_default},
                  {"rules", rules}};
        if (!e.p.interface.empty())
            o["interface"] = e.p.interface;
        else
            o["vrf"] = e.p.vrf;
        out.push_back(o);
    }
    return out;
}

} // namespace vleaf::acl
