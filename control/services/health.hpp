// TCP health checks of service backends, run from the control thread's event loop: a
// non-blocking connect() per backend and interval, never waiting. A connect that completes
// within the timeout is a success; a refusal, an error or the timeout is a failure. The
// registry applies the rise/fall thresholds.
#pragma once

#include "vleaf/service.hpp"

#include <functional>
#include <map>
#include <string>
#include <tuple>

namespace vleaf::svc {

class HealthChecker {
  public:
    using Report =
        std::function<void(const std::string &service, const IpAddr &addr, uint16_t port, bool ok)>;
    explicit HealthChecker(Report report) : report_(std::move(report)) {}
    ~HealthChecker();
    HealthChecker(const HealthChecker &) = delete;
    HealthChecker &operator=(const HealthChecker &) = delete;

    // Finishes the probes that completed or timed out, then starts those that are due.
    void poll(const std::map<std::string, Service> &services, uint64_t now_ms);
    size_t in_flight() const { return probes_.size(); }

  private:
    using Key = std::tuple<std::string, IpAddr, uint16_t>;
    struct Probe {
        int fd;
        uint64_t deadline;
    };
    void finish(const Key &k, bool ok);

    Report report_;
    std::map<Key, uint64_t> due_;
    std::map<Key, Probe> probes_;
};

} // namespace vleaf::svc
