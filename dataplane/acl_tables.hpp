// Tables of the ACL stage (dataplane/acl.hpp): which compiled policy (AclSet) filters each
// port and each VRF in each direction.
//
// The control thread compiles a policy (rte_acl, possibly seconds for 10k rules) into a new
// immutable AclSet, then publishes a new AclState with one atomic pointer swap and frees
// the state and set it replaced after an RCU grace period, when no worker can still be
// classifying with them. The replaced set's hit counters are final then and handed back,
// so that the control plane can keep running totals across changes. With no policy at all
// the state is null and the stages cost one load and one branch per burst.
#pragma once

#include "dataplane/acl_set.hpp"

#include <rte_config.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <map>
#include <memory>
#include <vector>

namespace vleaf::dp {

inline constexpr unsigned kAclVrfs = 256; // Burst::vrf is a byte

struct AclState {
    // By direction (AclDirection): the policy of a port, else the one of the packet's VRF;
    // null: nothing to do.
    const AclSet *port[2][RTE_MAX_ETHPORTS] = {};
    const AclSet *vrf[2][kAclVrfs] = {};
    bool any[2] = {};
    // The direction's policy when it is the only one attached in that direction (every
    // packet is filtered by it or by none), else null: plain4 can then hash the packets for
    // it before it knows their egress ports.
    const AclSet *only[2] = {};
};

class Acl {
  public:
    Acl(rte_rcu_qsbr *rcu, unsigned workers, int socket)
        : rcu_(rcu), workers_(workers), socket_(socket) {}
    ~Acl();
    Acl(const Acl &) = delete;
    Acl &operator=(const Acl &) = delete;

    // Control thread. Compiles and publishes policy `id` at `where`, replacing the earlier
    // policy `id`. Throws std::invalid_argument (a bad rule, by index and field) or
    // std::runtime_error (rte_acl failed), with nothing changed. Returns the final hits of
    // the replaced policy (by rule index, then the default's), empty if there was none.
    std::vector<uint64_t> set(uint32_t id, const AclAttach &where, const AclPolicy &p);
    std::vector<uint64_t> del(uint32_t id);
    // Hits of policy `id` so far (by rule index, then the default's), summed over workers.
    std::vector<uint64_t> hits(uint32_t id) const;

    const AclState *state() const { return state_.load(std::memory_order_acquire); }

  private:
    struct Live {
        AclAttach where;
        std::unique_ptr<const AclSet> set;
    };
    void publish();
    static std::vector<uint64_t> final_hits(const AclSet &s);

    rte_rcu_qsbr *rcu_;
    unsigned workers_;
    int socket_;
    std::map<uint32_t, Live> live_;
    std::atomic<const AclState *> state_{nullptr};
};

} // namespace vleaf::dp
