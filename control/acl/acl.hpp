// ACL policies in the control plane, from the configuration and the management API,
// checked here with errors that name the bad field. Every change goes to the dataplane
// through `program` (which compiles and publishes it, see dataplane/acl_tables.hpp). Rules
// keep their ids across changes, so hit counters are running totals: when a policy is
// replaced, the final counts of its old version are folded in by rule id.
#pragma once

#include "vleaf/acl.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vleaf::acl {

// what(): "<field>: <reason>", e.g. "dport: '70000' is not a port or range lo-hi".
struct AclError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// A field as text (nullopt: absent), from YAML or from API arguments.
using Fields = std::function<std::optional<std::string>(const char *key)>;

inline constexpr const char *kRuleFields[] = {"id",    "src",   "dst",       "family",   "proto",
                                              "sport", "dport", "icmp_type", "priority", "action"};
inline constexpr const char *kPolicyFields[] = {"name", "direction", "interface", "vrf", "default"};

// Throw AclError naming the field.
Rule rule_from(const Fields &f);
Policy policy_from(const Fields &f); // without rules

nlohmann::json rule_json(const Rule &r);
const char *action_name(AclAction a);
// "allow", "deny" (and "count" when count_ok); throws AclError naming `field`.
AclAction action_from(const std::string &field, const std::string &text, bool count_ok);

struct Callbacks {
    // Publishes policy `id` (new or changed). Returns the final hits of the version it
    // replaced (by its rule order, then the default's). Throws (nothing changed) if refused.
    std::function<std::vector<uint64_t>(uint32_t id, const Policy &p)> program;
    std::function<void(uint32_t id)> remove;
    std::function<std::vector<uint64_t>(uint32_t id)> hits; // live counts, same order
};

class Registry {
  public:
    explicit Registry(Callbacks cb) : cb_(std::move(cb)) {}

    // Each throws AclError (nothing changed) on a bad or conflicting request.
    void add_policy(Policy p);
    void del_policy(const std::string &name);
    void set_default(const std::string &name, AclAction a);
    uint32_t add_rule(const std::string &name, Rule r); // returns the rule's id
    void del_rule(const std::string &name, uint32_t id);

    const Policy *find(const std::string &name) const;
    size_t size() const { return policies_.size(); }
    // Policies (or the one named) with their rules and hit counts.
    nlohmann::json show(const std::string &name = "") const;

  private:
    struct Entry {
        uint32_t id;
        Policy p;
        std::map<uint32_t, uint64_t> folded; // rule id -> hits of replaced versions
        uint64_t folded_default = 0;
    };
    Entry &get(const std::string &name);
    void replace(Entry &e, Policy next);
    static void fold(Entry &e, const std::vector<uint64_t> &hits);

    Callbacks cb_;
    std::map<std::string, Entry> policies_;
    uint32_t next_id_ = 1;
};

} // namespace vleaf::acl
