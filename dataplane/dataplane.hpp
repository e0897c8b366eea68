// The dataplane as the control thread sees it: ports, tables, workers and the two
// rings of the exception path, built from the configuration and torn down in order.
#pragma once

#include "control/config/config.hpp"
#include "dataplane/acl_tables.hpp"
#include "dataplane/fib.hpp"
#include "dataplane/lb_tables.hpp"
#include "dataplane/tap.hpp"
#include "dataplane/worker.hpp"

#include <atomic>
#include <memory>
#include <span>
#include <vector>

namespace vleaf::dp {

struct Interface {
    std::string name;
    uint16_t port = 0;
    MacAddr mac;
    uint32_t vrf = 0;
    uint16_t mtu = 1500;
    std::unique_ptr<Tap> tap;
};

class Dataplane {
  public:
    // Probes and starts the ports, creates tables and taps. Throws with a message naming
    // the port or field at fault; on throw everything created so far is released.
    explicit Dataplane(const config::Config &cfg);
    ~Dataplane();
    Dataplane(const Dataplane &) = delete;
    Dataplane &operator=(const Dataplane &) = delete;

    void start(); // launch the workers
    void stop();  // stop the workers and the ports; idempotent

    std::string apply(const Update &u) { return fib_->apply(u); }
    const Fib &fib() const { return *fib_; }
    Fib &fib() { return *fib_; }
    Lb &lb() { return *lb_; }
    const Lb &lb() const { return *lb_; }
    Acl &acl() { return *acl_; }
    const Acl &acl() const { return *acl_; }
    std::vector<Interface> &interfaces() { return ifs_; }
    const std::vector<std::unique_ptr<Worker>> &workers() const { return workers_; }
    const std::vector<uint16_t> &ports() const { return port_ids_; }
    const std::vector<std::string> &port_names() const { return port_names_; }
    int interface_of_port(uint16_t port) const { return port_if_[port]; }

    // Exception path, control thread only.
    unsigned poll_punts(PuntMsg *out, unsigned max);
    // Workers ring it when they hand over punts or MACs while the control loop sleeps.
    Doorbell &doorbell() { return bell_; }
    // Punts or MACs to learn waiting: the loop checks after arming the doorbell.
    bool exceptions_pending() const;
    bool transmit(uint16_t port, std::span<const uint8_t> frame); // copy and send as is
    // Copy into bridge domain `bd` (forwarded or flooded), never back out of `port`/`vlan`.
    bool transmit_bd(uint16_t bd, uint16_t port, uint16_t vlan, std::span<const uint8_t> frame);
    bool reprocess(rte_mbuf *m, uint32_t vrf); // routed in `vrf` through the pipeline again
    bool route(uint32_t vrf, std::span<const uint8_t> frame); // a copy routed in `vrf`
    Overlay &overlay() { return fib_->overlay(); }
    uint64_t exception_drops() const { return exception_drops_; }

  private:
    void setup_port(uint16_t pid, const config::Port &p, uint16_t n_tx, uint16_t mtu);
    rte_mbuf *copy_in(std::span<const uint8_t> frame);
    bool inject(PuntMsg msg); // to worker 0; frees the packet if the ring is full

    std::vector<std::string> port_names_;
    std::vector<uint16_t> port_ids_;
    int port_if_[RTE_MAX_ETHPORTS];
    PortInfo *port_info_ = nullptr;
    std::vector<Interface> ifs_;
    rte_mempool *pool_ = nullptr;
    rte_rcu_qsbr *rcu_ = nullptr;
    rte_ring *punt_ = nullptr;
    Doorbell bell_;
    rte_ring *inject_ = nullptr;
    std::vector<rte_ring *> handoff_; // by worker, with more than one (lb_handoff.hpp)
    std::unique_ptr<Fib> fib_;
    std::unique_ptr<Lb> lb_;
    std::unique_ptr<Acl> acl_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::atomic<bool> stop_{false};
    bool running_ = false;
    uint64_t exception_drops_ = 0;
};

} // namespace vleaf::dp
