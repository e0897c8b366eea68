// vleafd configuration: the YAML file (or the embedded default) parsed and checked.
// Every error names the file, the field path and the reason; nothing starts on error.
#pragma once

#include "control/bgp/config.hpp"
#include "vleaf/acl.hpp"
#include "vleaf/addr.hpp"
#include "vleaf/service.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vleaf::config {

// The largest `burst` a config may ask for: dataplane/burst.hpp sizes its per-packet arrays
// for this many packets (keep the two equal).
inline constexpr uint16_t kMaxBurst = 64;

struct ConfigError : std::runtime_error {
    // what(): "<file>: <field.path>: <reason>", e.g.
    // "conf/demo.yaml: routes[2].via[0]: '10.0.0.300' is not an IP address"
    using std::runtime_error::runtime_error;
};

struct Mempool {
    uint32_t mbufs = 16383;
    uint32_t cache = 256;
    uint16_t data_room = 2048 + 128; // RTE_MBUF_DEFAULT_BUF_SIZE
};

struct Port {
    std::string name;   // "p0"
    std::string device; // PCI "0000:03:00.0" or vdev "net_af_packet0,iface=veth0"
    uint16_t rx_queues = 1;
    uint16_t rx_desc = 1024;
    uint16_t tx_desc = 1024;
    bool rss = true;
    bool promiscuous = true;
    // Try rte_flow on this port (ACL drops, VXLAN steering; see control/offload). What
    // the port refuses stays in software either way.
    bool offload = true;
};

struct Interface {
    std::string name; // also the default tap name suffix
    std::string port; // Port::name
    std::string vrf = "default";
    uint16_t mtu = 1500;
    std::vector<Prefix> ipv4; // addresses with their subnet length, host bits set
    std::vector<Prefix> ipv6;
    std::optional<MacAddr> mac; // default: the port's MAC
    std::string tap;            // kernel tap for the exception path; "" = none
};

struct RxQueue {
    std::string port;
    uint16_t queue = 0;
};

struct Worker {
    unsigned lcore = 1;
    std::vector<RxQueue> rx;
};

struct Vrf {
    std::string name;
    uint32_t id = 0; // dataplane table index; "default" is 0
    // DIR-24-8 costs 64 MiB plus 1 KiB per 8 routes: raise for full Internet tables.
    uint32_t max_routes_v4 = 1 << 18;
    uint32_t max_routes_v6 = 1 << 16;
    uint32_t l3vni = 0;                // VXLAN L3VNI of the VRF (symmetric IRB); 0 = none
    std::optional<MacAddr> router_mac; // our router MAC in the L3VNI (required with l3vni)
};

struct Route {
    std::string vrf = "default";
    Prefix prefix;
    std::vector<IpAddr> via; // gateways; more than one is ECMP
    std::string dev;         // interface for a connected-style route (no gateway)
    bool blackhole = false;
    // A remote prefix behind a VXLAN tunnel (an EVPN type-5 route given statically):
    std::optional<IpAddr> vtep;        // the remote VTEP
    std::optional<MacAddr> router_mac; // its router MAC, the inner destination MAC
    uint32_t vni = 0;                  // default: the VRF's l3vni
};

// The local VTEP (RFC 7348): where tunnels start and end.
struct Vxlan {
    std::optional<IpAddr> source4, source6; // our VTEP addresses (one per outer family)
    uint16_t udp_port = 4789;
    uint16_t src_port_min = 49152; // outer UDP source ports, picked by inner flow hash
    uint16_t src_port_max = 65535;
    uint8_t ttl = 64;
    bool df = true;             // set DF on outer IPv4
    uint32_t mac_aging_s = 300; // learned MACs unseen this long are removed
    // VNI -> RX queue of every offloading port (rte_flow QUEUE); the others are spread
    // over the port's queues by RSS on the inner headers where the port can.
    std::map<uint32_t, uint16_t> vni_queues;
};

struct AccessPort {
    std::string port;
    uint16_t vlan = 0; // 0: untagged frames
};

struct RemoteMac {
    MacAddr mac;
    IpAddr vtep;
    std::vector<IpAddr> ips; // MAC/IP bindings, answered locally (ARP/ND suppression)
};

// An L2VNI: a bridge domain with its access ports, flood list, remote MACs and, when
// `gateway_mac` is set, a distributed anycast gateway routing into `vrf`.
struct BridgeDomain {
    uint32_t vni = 0;
    std::string vrf = "default";
    std::optional<MacAddr> gateway_mac;
    std::vector<Prefix> gateway_ipv4, gateway_ipv6; // with subnet length, host bits set
    std::vector<AccessPort> access;
    std::vector<IpAddr> flood; // remote VTEPs receiving BUM frames (head-end replication)
    std::vector<RemoteMac> macs;
};

struct Neighbors {
    uint32_t reachable_ms = 30000; // re-verify a resolved neighbor after this
    uint32_t retrans_ms = 1000;    // between ARP requests / neighbor solicitations
    uint32_t retries = 3;          // unanswered requests before the entry fails
    uint32_t hold_packets = 3;     // packets queued per unresolved neighbor
};

// Packets per second each worker hands to the control thread, per class of punt; more
// are dropped (dataplane/police.hpp). Routers police punts the same way (CoPP): Cisco
// NX-OS's default profiles let ARP through at about 1.4k pps (class copp-system-p-class-
// normal). These defaults are far above what resolution, ping and BGP need, and far below
// a flood (the system bench's 34k ARP requests/s kept the control thread 60% busy).
struct PuntPolice {
    uint32_t arp_nd = 2000; // ARP and neighbor discovery, routed and bridged
    uint32_t host = 5000;   // anything else for our addresses: ICMP, BFD, link-local IPv6
    uint32_t bgp = 20000;   // TCP to or from port 179: never starved by the others
};

struct Api {
    std::string socket = "/run/vleaf/vleafd.sock";
};

// The rings between the BGP thread and the table writer (control/fib/ring.hpp).
struct FibRings {
    uint32_t ring_size = 1 << 16; // route messages in flight
    // Prefixes waiting for ring space beyond which the producer gives up tracking them
    // one by one and resynchronises the whole FIB from the RIB instead.
    uint32_t backlog_limit = 1 << 18;
};

struct Config {
    std::string source; // file path, or "<embedded default>"
    std::string log_level = "info";
    uint16_t burst = 32;
    Mempool mempool;
    std::vector<Port> ports;
    std::vector<Interface> interfaces;
    std::vector<Worker> workers; // empty: every rx queue of every port on one worker
    std::vector<Vrf> vrfs;       // always holds "default" with id 0
    std::vector<Route> routes;
    std::optional<Vxlan> vxlan;
    std::vector<BridgeDomain> bridge_domains;
    Neighbors neighbors;
    PuntPolice punt_police;
    Api api;
    FibRings fib;
    std::optional<bgp::BgpConfig> bgp; // absent: no BGP speaker
    LbLimits lb;
    std::vector<Service> services; // see include/vleaf/service.hpp and conf/metallb-vip.yaml
    std::vector<acl::Policy> acls; // see include/vleaf/acl.hpp and conf/network-policy.yaml

    const Port *port(const std::string &name) const;
    const Vrf *vrf(const std::string &name) const;
};

// Parses and validates. Throws ConfigError naming source, field and reason.
Config parse(const std::string &yaml_text, const std::string &source);
Config load_file(const std::string &path);
// The configuration vleafd runs when started without --config (see conf/demo.yaml).
Config embedded_default();
const char *embedded_default_text();

} // namespace vleaf::config
