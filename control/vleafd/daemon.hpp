// vleafd's control thread: owns the dataplane, the FIB programmer, the neighbor resolver
// and the management socket, and runs the event loop that serves them. Built only into
// the vleafd binary (it is where control meets DPDK).
#pragma once

#include "control/acl/acl.hpp"
#include "control/api/server.hpp"
#include "control/config/config.hpp"
#include "control/fib/bgp_thread.hpp"
#include "control/fib/programmer.hpp"
#include "control/fib/ring.hpp"
#include "control/neigh/resolver.hpp"
#include "control/offload/offload.hpp"
#include "control/services/health.hpp"
#include "control/services/services.hpp"
#include "dataplane/dataplane.hpp"

#include <map>
#include <memory>

namespace vleaf {

struct ExceptionCounters {
    uint64_t to_kernel = 0;       // frames written to a tap
    uint64_t to_kernel_drops = 0; // tap queue full or no tap
    uint64_t from_kernel = 0;     // frames the kernel sent through a tap
    uint64_t resolve_unknown = 0; // punted for resolution but nothing to resolve
};

#define VLEAF_VXLAN_COUNTERS(X)                                                                    \
    X(arp_suppressed)       /* ARP requests answered from a known MAC/IP binding */                \
    X(nd_suppressed)        /* neighbor solicitations answered from a known binding */             \
    X(bum_flooded)          /* ARP/ND from access ports flooded into their bridge domain */        \
    X(learned)              /* learn reports applied */                                            \
    X(learn_errors)         /* not applied (VTEP in no flood list, tunnel or MAC; table full) */   \
    X(vtep_resolves)        /* underlay neighbor resolutions started for remote VTEPs */           \
    X(frag_needed_sent)     /* ICMP fragmentation needed for IPv4 too big for a tunnel */          \
    X(packet_too_big_sent)  /* ICMPv6 packet too big for IPv6 too big for a tunnel */              \
    X(too_big_unanswered)   /* no error allowed (RFC 1812/4443) or no address to send it from */   \
    X(gateway_echo_replies) /* echo requests to an anycast gateway address answered */             \
    X(gateway_unanswered)   /* anything else to a gateway address (it has no kernel behind it) */

struct VxlanCounters {
#define X(name) uint64_t name = 0;
    VLEAF_VXLAN_COUNTERS(X)
#undef X
};

// A bridge domain as the control thread sees it (its configuration and dataplane id).
struct BdState {
    const config::BridgeDomain *cfg;
    uint16_t id;
    uint16_t gw_ifid; // the anycast gateway's interface id, when the domain has one
};

class Daemon {
  public:
    explicit Daemon(const config::Config &cfg); // throws with a message naming the culprit
    ~Daemon();
    // Serves until SIGINT/SIGTERM (delivered through `signal_fd`).
    void run(int signal_fd);

    // Originates / withdraws one of our prefixes through the embedded BGP speaker (to its
    // peers, not into our own FIB), e.g. a service VIP. False when BGP is not configured.
    bool announce(const bgp::Announce &a);
    bool withdraw(const Prefix &p);

  private:
    void program_static(bool tunnels);
    // VXLAN (vxlan.cpp): bridge domains, gateways, VNIs and flood lists from the
    // configuration; learning, aging and ARP/ND in bridge domains at run time.
    void program_vxlan();
    void vxlan_tick(uint64_t now);
    unsigned handle_learned(); // how many messages it served
    void handle_bd_punt(const dp::PuntMsg &msg, uint64_t now);
    // EVPN leaf (evpn.cpp): the speaker's EVPN state into the overlay tables, local MACs
    // and their IPs out to it.
    void setup_evpn();
    void drain_evpn();
    void evpn_local_mac(uint16_t bd, const MacAddr &mac, bool present);
    void evpn_local_ip(uint16_t bd, const MacAddr &mac, const IpAddr &ip);
    std::map<std::string, uint32_t> evpn_vrf_ids() const;
    bool suppress(const BdState &bd, std::span<const uint8_t> frame);
    void handle_too_big(const dp::PuntMsg &msg);
    bool for_gateway(const dp::PuntMsg &msg);
    std::string if_name(uint16_t ifid) const;
    const BdState *bd_of(uint16_t id) const;
    void send_frame(uint16_t ifid, std::span<const uint8_t> frame);
    nlohmann::json show_vxlan_vni(const nlohmann::json &args) const;
    nlohmann::json show_vxlan_vtep() const;
    nlohmann::json show_vxlan_mac(const nlohmann::json &args) const;
    void register_api();
    void register_services();
    void program_services();
    nlohmann::json show_lb() const;
    void program_acls(); // acl.cpp
    void register_acls();
    void setup_offload(); // offload.cpp: before program_acls, whose changes it follows
    void register_offload();
    unsigned handle_punts(uint64_t now); // how many punts it served
    void handle_tap(size_t ifid);
    void to_kernel(size_t ifid, rte_mbuf *m);
    size_t drain_routes(uint64_t now); // how many route messages it applied
    // After a FIB batch, and in every loop: see dp::Fib::settle.
    void settle_fib();

    nlohmann::json show_interfaces() const;
    nlohmann::json show_routes(const nlohmann::json &args) const;
    nlohmann::json show_neighbors() const;
    nlohmann::json show_stats() const;
    nlohmann::json show_fib_summary() const;

    const config::Config &cfg_;
    std::unique_ptr<dp::Dataplane> dp_;
    std::unique_ptr<fib::Programmer> fib_;
    std::unique_ptr<neigh::Resolver> resolver_;
    std::unique_ptr<api::Server> api_;
    std::unique_ptr<fib::BgpThread> bgp_;   // null without a `bgp:` section
    std::unique_ptr<fib::EvpnWriter> evpn_; // with bgp and vxlan sections
    fib::DrainCounters drain_;
    std::unique_ptr<svc::Registry> services_;
    std::unique_ptr<svc::HealthChecker> health_;
    std::unique_ptr<acl::Registry> acls_;
    std::unique_ptr<offload::Offload> offload_;
    ExceptionCounters exc_;
    std::vector<BdState> bds_;
    // MAC/IP bindings per bridge domain: configured and snooped from ARP/ND.
    std::map<std::pair<uint16_t, IpAddr>, MacAddr> bindings_;
    VxlanCounters vx_;
    // Our addresses by VRF (interfaces and gateways): where ICMP errors come from.
    std::map<uint32_t, std::vector<Prefix>> own_addrs_;
    uint64_t next_vxlan_tick_ = 0;
};

uint64_t now_ms();

} // namespace vleaf
