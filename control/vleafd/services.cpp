// Services in vleafd: the registry (control/services) programs the LB stage's tables
// (dataplane/lb_tables) and answers `service ...` and `backend ...` requests.
#include "control/vleafd/daemon.hpp"

#include <spdlog/spdlog.h>

namespace vleaf {

using nlohmann::json;

namespace {

std::string required(const json &args, const char *key) {
    auto it = args.find(key);
    if (it == args.end() || !it->is_string() || it->get<std::string>().empty())
        throw svc::ServiceError(std::string(key) + ": required");
    return it->get<std::string>();
}

IpAddr ip_arg(const json &args) {
    std::string s = required(args, "ip");
    auto a = IpAddr::parse(s);
    if (!a) throw svc::ServiceError("ip: '" + s + "' is not an IP address");
    return *a;
}

uint16_t port_arg(const json &args, const Service &s) {
    auto it = args.find("port");
    if (it == args.end()) return s.port;
    if (!it->is_number_integer() || *it < 1 || *it > 65535)
        throw svc::ServiceError("port: " + it->dump() + " is not an integer in 1..65535");
    return it->get<uint16_t>();
}

} // namespace

void Daemon::program_services() {
    svc::Callbacks cb;
    cb.program = [this](uint32_t id, const Service &s, const std::vector<uint32_t> &table) {
        dp_->lb().set(id, cfg_.vrf(s.vrf) ? cfg_.vrf(s.vrf)->id : 0, s, table);
    };
    cb.remove = [this](uint32_t id) { dp_->lb().del(id); };
    // Through the embedded BGP speaker when there is one (`bgp:`); each service's state is
    // also shown (`service show`), and the VIP's logged when it changes.
    cb.announce = [this](const std::string &vrf, const IpAddr &vip, const vleaf::Announce *how) {
        Prefix p{vip, static_cast<uint8_t>(vip.max_len())};
        spdlog::info("VIP {}/{} (VRF {}): {}", vip.str(), p.len, vrf,
                     how ? "a service has a usable backend: announce"
                         : "no service has a usable backend: withdraw");
        if (!how) {
            withdraw(p);
            return;
        }
        bgp::Announce a;
        a.prefix = p;
        a.communities = how->communities;
        a.local_pref = how->local_pref;
        announce(a);
    };
    services_ = std::make_unique<svc::Registry>(cb);
    health_ = std::make_unique<svc::HealthChecker>(
        [this](const std::string &name, const IpAddr &addr, uint16_t port, bool ok) {
            services_->health_result(name, addr, port, ok);
        });
    for (size_t k = 0; k < cfg_.services.size(); k++) {
        try {
            services_->add(cfg_.services[k]);
        } catch (const std::exception &e) {
            throw std::runtime_error(cfg_.source + ": services[" + std::to_string(k) +
                                     "]: " + e.what());
        }
    }
}

void Daemon::register_services() {
    auto vrf_known = [this](const Service &s) {
        if (!cfg_.vrf(s.vrf)) throw svc::ServiceError("vrf: unknown VRF '" + s.vrf + "'");
    };
    api_->add("service add", [this, vrf_known](const json &a) {
        Service s = svc::service_from_args(a);
        vrf_known(s);
        services_->add(s);
        return services_->show(s.name)[0];
    });
    api_->add("service del", [this](const json &a) {
        services_->del(required(a, "name"));
        return json::object();
    });
    api_->add("service show",
              [this](const json &a) { return services_->show(a.value("name", "")); });
    api_->add("backend add", [this](const json &a) {
        std::string name = required(a, "service");
        const Service *s = services_->find(name);
        if (!s) throw svc::ServiceError("service: no service named '" + name + "'");
        services_->add_backend(name, svc::backend_from_args(a, *s));
        return services_->show(name)[0];
    });
    auto change = [this](const json &a, auto &&fn) {
        std::string name = required(a, "service");
        const Service *s = services_->find(name);
        if (!s) throw svc::ServiceError("service: no service named '" + name + "'");
        fn(name, ip_arg(a), port_arg(a, *s));
        return services_->show(name)[0];
    };
    api_->add("backend del", [this, change](const json &a) {
        return change(a,
                      [this](auto &n, auto ip, auto port) { services_->del_backend(n, ip, port); });
    });
    api_->add("backend up", [this, change](const json &a) {
        return change(
            a, [this](auto &n, auto ip, auto port) { services_->set_up(n, ip, port, true); });
    });
    api_->add("backend down", [this, change](const json &a) {
        return change(
            a, [this](auto &n, auto ip, auto port) { services_->set_up(n, ip, port, false); });
    });
    api_->add("show lb", [this](const json &) { return show_lb(); });
}

json Daemon::show_lb() const {
    json workers = json::array();
    for (size_t k = 0; k < dp_->workers().size(); k++) {
        const auto &w = *dp_->workers()[k];
        const dp::LbFlows &f = *dp_->lb().flows(static_cast<unsigned>(k));
        json o = {{"lcore", w.lcore}, {"flows", f.used}, {"capacity", f.capacity}};
#define X(name) o[#name] = w.stats.lb.name;
        VLEAF_LB_COUNTERS(X)
#undef X
        workers.push_back(o);
    }
    return {{"services", services_->services().size()}, {"workers", workers}};
}

} // namespace vleaf
