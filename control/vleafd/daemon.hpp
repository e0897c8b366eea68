// vleafd's control thread: owns the dataplane, the FIB programmer, the neighbor resolver
// and the management socket, and runs the event loop that serves them. Built only into
// the vleafd binary (it is where control meets DPDK).
#pragma once

#include "control/api/server.hpp"
#include "control/config/config.hpp"
#include "control/fib/programmer.hpp"
#include "control/neigh/resolver.hpp"
#include "control/services/health.hpp"
#include "control/services/services.hpp"
#include "dataplane/dataplane.hpp"

#include <memory>

namespace vleaf {

struct ExceptionCounters {
    uint64_t to_kernel = 0;       // frames written to a tap
    uint64_t to_kernel_drops = 0; // tap queue full or no tap
    uint64_t from_kernel = 0;     // frames the kernel sent through a tap
    uint64_t resolve_unknown = 0; // punted for resolution but nothing to resolve
};

class Daemon {
  public:
    explicit Daemon(const config::Config &cfg); // throws with a message naming the culprit
    ~Daemon();
    // Serves until SIGINT/SIGTERM (delivered through `signal_fd`).
    void run(int signal_fd);

  private:
    void program_static();
    void register_api();
    void register_services();
    void program_services();
    nlohmann::json show_lb() const;
    void handle_punts(uint64_t now);
    void handle_tap(size_t ifid);
    void to_kernel(size_t ifid, rte_mbuf *m);

    nlohmann::json show_interfaces() const;
    nlohmann::json show_routes(const nlohmann::json &args) const;
    nlohmann::json show_neighbors() const;
    nlohmann::json show_stats() const;

    const config::Config &cfg_;
    std::unique_ptr<dp::Dataplane> dp_;
    std::unique_ptr<fib::Programmer> fib_;
    std::unique_ptr<neigh::Resolver> resolver_;
    std::unique_ptr<api::Server> api_;
    std::unique_ptr<svc::Registry> services_;
    std::unique_ptr<svc::HealthChecker> health_;
    ExceptionCounters exc_;
};

uint64_t now_ms();

} // namespace vleaf
