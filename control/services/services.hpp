// The service registry: VIPs and their backends, from the configuration and the management
// API, validated here with errors that name the bad field. Every change rebuilds the
// service's Maglev table from its usable backends and hands it to the dataplane through
// `program`; a VIP is announced (BGP hook `announce`) only while one of the services that
// share it (several ports, like MetalLB's allow-shared-ip) has a usable backend.
#pragma once

#include "vleaf/service.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace vleaf::svc {

// what(): "<field>: <reason>", e.g. "vip: '10.0.0.300' is not an IP address".
struct ServiceError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// Semantic checks shared by the configuration and the API; throws ServiceError naming the
// field ("backends[1].node: ...").
void validate(const Service &s);

// "65000:100" as a standard community packed in 32 bits.
std::optional<uint32_t> parse_community(const std::string &s);

// API arguments (vleafctl key=value pairs) to records; throw ServiceError naming the key.
Service service_from_args(const nlohmann::json &args);
ServiceBackend backend_from_args(const nlohmann::json &args, const Service &s);

struct Callbacks {
    // Publishes service `id` with its Maglev table (indices into s.backends).
    std::function<void(uint32_t id, const Service &s, const std::vector<uint32_t> &table)> program;
    std::function<void(uint32_t id)> remove;
    // How VIP `vip` in VRF `vrf` is to be announced now; null: withdraw it. Called when
    // the VIP gains its first usable backend, loses its last one, or its attributes
    // change: the union of the communities and the highest local-pref of the announcing
    // services that have a usable backend.
    std::function<void(const std::string &vrf, const IpAddr &vip, const Announce *how)> announce;
};

class Registry {
  public:
    explicit Registry(Callbacks cb) : cb_(std::move(cb)) {}

    // Each throws ServiceError (nothing changed) on a bad or conflicting request.
    void add(Service s);
    void del(const std::string &name);
    void add_backend(const std::string &service, ServiceBackend b);
    void del_backend(const std::string &service, const IpAddr &addr, uint16_t port);
    void set_up(const std::string &service, const IpAddr &addr, uint16_t port, bool up);
    // A health check result; applies the service's rise/fall thresholds.
    void health_result(const std::string &service, const IpAddr &addr, uint16_t port, bool ok);

    const Service *find(const std::string &name) const;
    const std::map<std::string, Service> &services() const { return services_; }
    uint32_t id_of(const std::string &name) const { return ids_.at(name); }
    bool announced(const std::string &name) const { return announced_.at(name); }
    nlohmann::json show(const std::string &name = "") const;

  private:
    Service &get(const std::string &name);
    ServiceBackend &backend(Service &s, const IpAddr &addr, uint16_t port);
    void check_conflicts(const Service &s) const;
    void publish(const Service &s);
    void announce_vip(const std::string &vrf, const IpAddr &vip);

    Callbacks cb_;
    std::map<std::string, Service> services_;
    std::map<std::string, uint32_t> ids_;
    std::map<std::string, bool> announced_;                   // per service: has a usable backend
    std::map<std::pair<std::string, IpAddr>, Announce> vips_; // what the hook last announced
    struct Streak {
        uint32_t ok = 0, fail = 0;
    };
    std::map<std::tuple<std::string, IpAddr, uint16_t>, Streak> streaks_;
    uint32_t next_id_ = 1;
};

} // namespace vleaf::svc
