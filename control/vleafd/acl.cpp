// ACLs in vleafd: the registry (control/acl) programs the ACL stage's tables
// (dataplane/acl_tables), and the ports' rte_flow drops through control/offload, and
// answers `acl ...` requests.
#include "control/acl/acl.hpp"
#include "control/vleafd/daemon.hpp"

#include <algorithm>
#include <span>

namespace vleaf {

using nlohmann::json;

namespace {

// vleafctl sends integers as JSON numbers and everything else as strings.
acl::Fields json_fields(const json &args) {
    return [&args](const char *key) -> std::optional<std::string> {
        auto it = args.find(key);
        if (it == args.end()) return std::nullopt;
        if (it->is_string()) return it->get<std::string>();
        if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
        throw acl::AclError(std::string(key) + ": expected a value, got " + it->dump());
    };
}

bool among(const std::string &k, std::span<const char *const> names) {
    return std::find(names.begin(), names.end(), k) != names.end();
}

std::string policy_arg(const json &a) {
    auto it = a.find("policy");
    if (it == a.end() || !it->is_string() || it->get<std::string>().empty())
        throw acl::AclError("policy: required (the policy's name)");
    return *it;
}

} // namespace

void Daemon::program_acls() {
    acl::Callbacks cb;
    cb.program = [this](uint32_t id, const acl::Policy &p) {
        AclAttach where{p.dir, !p.interface.empty(), 0};
        if (where.port) {
            auto &ifs = dp_->interfaces();
            auto it = std::find_if(ifs.begin(), ifs.end(),
                                   [&](const dp::Interface &i) { return i.name == p.interface; });
            if (it == ifs.end())
                throw acl::AclError("interface: unknown interface '" + p.interface + "'");
            where.id = it->port;
        } else {
            const config::Vrf *v = cfg_.vrf(p.vrf);
            if (!v) throw acl::AclError("vrf: unknown VRF '" + p.vrf + "'");
            where.id = v->id;
        }
        AclPolicy compiled;
        compiled.default_action = p.default_action;
        for (const auto &r : p.rules) compiled.rules.push_back(r.rule);
        auto replaced = dp_->acl().set(id, where, compiled);
        // After the software set is live: a flow the new version no longer wants may drop
        // until this returns, as workers may still finish a burst with the old set.
        offload_->set_acl(id, where, p);
        return replaced;
    };
    cb.remove = [this](uint32_t id) {
        dp_->acl().del(id);
        offload_->del_acl(id);
    };
    cb.hits = [this](uint32_t id) { return dp_->acl().hits(id); };
    acls_ = std::make_unique<acl::Registry>(cb);
    for (size_t k = 0; k < cfg_.acls.size(); k++) {
        try {
            acls_->add_policy(cfg_.acls[k]);
        } catch (const std::exception &e) {
            throw std::runtime_error(cfg_.source + ": acls[" + std::to_string(k) +
                                     "]: " + e.what());
        }
    }
}

void Daemon::register_acls() {
    // acl add policy=P [direction= interface=|vrf= default=] [rule fields, with action]:
    // makes the policy if it is new, changes its default, adds a rule when `action` is given.
    api_->add("acl add", [this](const json &a) {
        std::string name = policy_arg(a);
        json rule_args = json::object(), policy_args = {{"name", name}};
        for (const auto &[k, v] : a.items()) {
            if (k == "policy") continue;
            if (k == "name" || !(among(k, acl::kRuleFields) || among(k, acl::kPolicyFields)))
                throw acl::AclError(k + ": not an argument of 'acl add'");
            (among(k, acl::kRuleFields) ? rule_args : policy_args)[k] = v;
        }
        std::optional<acl::Rule> rule;
        if (!rule_args.empty()) rule = acl::rule_from(json_fields(rule_args));
        if (!acls_->find(name)) {
            acls_->add_policy(acl::policy_from(json_fields(policy_args)));
        } else {
            for (const char *k : {"direction", "interface", "vrf"})
                if (policy_args.contains(k))
                    throw acl::AclError(std::string(k) + ": policy '" + name +
                                        "' exists (delete it to attach it elsewhere)");
            if (auto d = json_fields(policy_args)("default"))
                acls_->set_default(name, acl::action_from("default", *d, false));
        }
        json out = json::object();
        if (rule) out["id"] = acls_->add_rule(name, *rule);
        out["policy"] = acls_->show(name)[0];
        return out;
    });
    api_->add("acl del", [this](const json &a) {
        std::string name = policy_arg(a);
        for (const auto &[k, v] : a.items())
            if (k != "policy" && k != "id")
                throw acl::AclError(k + ": not an argument of 'acl del' (policy, id)");
        auto id = a.find("id");
        if (id == a.end()) {
            acls_->del_policy(name);
        } else {
            if (!id->is_number_integer() || *id < 1 || *id > int64_t(UINT32_MAX))
                throw acl::AclError("id: " + id->dump() + " is not a rule id");
            acls_->del_rule(name, id->get<uint32_t>());
        }
        return json::object();
    });
    api_->add("acl show", [this](const json &a) {
        std::string name = a.value("policy", a.value("arg", ""));
        return acls_->show(name);
    });
}

} // namespace vleaf
