// rte_flow offload in the control plane: per port, the rules planned (plan.hpp) for the
// ingress ACL policy that filters it and for VXLAN steering, each validated by the port
// first and created when valid; anything the port refuses stays in software, which is
// authoritative anyway (it still filters whatever reaches it), and the reason is counted.
// Rules follow the ACL as it changes and are destroyed with it, and all of them on
// clear() or destruction: nothing is left on the port.
//
// The ports are reached through a FlowPort (dataplane/offload in vleafd), so that the
// decisions build and test without DPDK.
#pragma once

#include "control/offload/plan.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <tuple>

namespace vleaf::offload {

struct Port {
    uint16_t id = 0;
    std::string name;
    bool enabled = true;  // the port's `offload` knob
    uint32_t vrf = 0;     // whose ingress ACL policy filters it when it has none of its own
    bool bridges = false; // has bridge domain access: the ACL does not see all of it
    bool bridges_untagged = false; // its untagged frames are bridged, never decapsulated
    uint16_t rx_queues = 1;
};

// Why a rule stays in software, as counted per port.
#define VLEAF_OFFLOAD_FALLBACKS(X)                                                                 \
    X(disabled)    /* offload is off on the port */                                                \
    X(rule)        /* the rule cannot be offloaded as it is (plan.hpp) */                          \
    X(no_flow_api) /* the port has no rte_flow support at all */                                   \
    X(pattern)     /* the port refuses an item of the pattern */                                   \
    X(action)      /* ... an action */                                                             \
    X(attr)        /* ... an attribute (priority, group, direction) */                             \
    X(validate)    /* ... for another reason */                                                    \
    X(create)      /* validated, but creating it failed */

enum class Fallback : uint8_t {
#define X(name) name,
    VLEAF_OFFLOAD_FALLBACKS(X)
#undef X
        count
};

struct Counters {
    uint64_t attempts = 0;  // rules offered to the port
    uint64_t offloaded = 0; // rules installed
    uint64_t removed = 0;   // installed rules destroyed again
    uint64_t fallbacks[size_t(Fallback::count)] = {};
};

class Offload {
  public:
    Offload(FlowPort port, std::vector<Port> ports, Vtep vtep);
    ~Offload() { clear(); }
    Offload(const Offload &) = delete;
    Offload &operator=(const Offload &) = delete;

    // ACL policy `id` (new or changed) now filters `where`; egress policies are not
    // offloaded. Re-syncs the ports whose ingress policy it is or was.
    void set_acl(uint32_t id, const AclAttach &where, const acl::Policy &p);
    void del_acl(uint32_t id);
    // VXLAN steering for these VNIs (queues: VNI -> RX queue, the others spread by RSS).
    void set_vxlan(std::vector<uint32_t> vnis, std::map<uint32_t, uint16_t> queues);
    // Destroys every installed flow (before the ports stop).
    void clear();

    // Per port: the knob, counters and every rule with its state.
    nlohmann::json show() const;
    const Counters &counters(uint16_t port) const;

  private:
    using Key = std::tuple<Kind, std::string, uint32_t>;
    struct Rule {
        Want want;
        std::vector<uint64_t> handles; // installed flows; empty: in software
        bool counted = false;          // installed with COUNT actions
        Fallback why = Fallback::rule; // when in software
        std::string reason;
    };
    struct PortState {
        Port cfg;
        std::map<Key, Rule> rules;
        Counters counters;
    };
    struct Policy {
        AclAttach where;
        std::vector<Want> wants;
    };

    const Policy *ingress_policy(const Port &p) const;
    void sync(PortState &ps);
    void install(PortState &ps, Rule &r);
    bool try_flows(PortState &ps, Rule &r, bool count);
    void uninstall(PortState &ps, Rule &r);

    FlowPort cb_;
    std::vector<PortState> ports_;
    Vtep vtep_;
    std::map<uint32_t, Policy> policies_;
    std::vector<uint32_t> vnis_;
    std::map<uint32_t, uint16_t> queues_;
};

} // namespace vleaf::offload
