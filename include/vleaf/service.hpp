// Service load balancing vocabulary shared by the configuration, the control plane's
// service registry (control/services) and the dataplane's LB stage (dataplane/lb*).
#pragma once

#include "vleaf/addr.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace vleaf {

enum class LbMode : uint8_t {
    Dnat,    // rewrite destination to the backend; replies through vleaf get the VIP back
    DsrIpip, // encapsulate in IP-in-IP to the backend's node, which answers the client itself
};

struct ServiceBackend {
    IpAddr addr;
    uint16_t port = 0;   // DNAT target port; DSR keeps the VIP's port
    IpAddr node;         // DSR: where to tunnel (the pod's node); unspecified = addr itself
    uint32_t weight = 1; // Maglev turns; 0 drains the backend
    bool up = true;      // administratively (API `backend up|down`)
    bool healthy = true; // last TCP health check (always true without health checks)

    bool usable() const { return up && healthy && weight > 0; }
};

// How a VIP is announced by BGP while it has a usable backend (like MetalLB's
// BGPAdvertisement).
struct Announce {
    bool enabled = true;
    std::vector<uint32_t> communities; // standard communities, as AS:value packed in 32 bits
    uint32_t local_pref = 100;

    bool operator==(const Announce &) const = default;
};

struct HealthCheck {
    bool tcp = false;            // connect() to addr:port from the control thread
    uint32_t interval_ms = 2000; // between checks of one backend
    uint32_t timeout_ms = 1000;  // a connect slower than this fails
    uint32_t fall = 2;           // consecutive failures before marking unhealthy
    uint32_t rise = 1;           // consecutive successes before marking healthy again
};

struct Service {
    std::string name;
    std::string vrf = "default";
    IpAddr vip;
    uint8_t proto = 6; // IPPROTO_TCP or IPPROTO_UDP
    uint16_t port = 0;
    LbMode mode = LbMode::Dnat;
    IpAddr encap_source; // DSR: outer source address (one of ours)
    uint32_t table_size = 65537;
    std::vector<ServiceBackend> backends;
    Announce announce;
    HealthCheck health;
};

// Per-worker flow table limits for the LB stage.
struct LbLimits {
    uint32_t flows_per_worker = 1 << 16;
    uint32_t idle_timeout_s = 300;
};

const char *lb_mode_name(LbMode m);
const char *proto_name(uint8_t proto); // "tcp", "udp", ... or the number

} // namespace vleaf
