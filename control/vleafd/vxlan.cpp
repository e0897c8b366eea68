// vleafd's VXLAN control: bridge domains, anycast gateways, VNIs, flood lists, remote
// MACs from the configuration; MAC learning and aging; ARP/ND in bridge domains
// (gateway answers, suppression from known MAC/IP bindings, flooding of the rest);
// and the `show vxlan` views.
#include "control/vleafd/daemon.hpp"

#include "control/icmp/icmp.hpp"

#include <rte_cycles.h>

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace vleaf {

using nlohmann::json;

namespace {
constexpr uint64_t kVxlanTickMs = 1000;

std::span<const uint8_t> bytes_of(rte_mbuf *m) {
    if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) return {};
    return {rte_pktmbuf_mtod(m, const uint8_t *), m->data_len};
}

// "FILE: bridge_domains[K].LIST[J]: ERR": the config entry the dataplane refused.
std::runtime_error bad_entry(const std::string &where, const char *list, size_t j,
                             const std::string &err) {
    return std::runtime_error(where + "." + list + "[" + std::to_string(j) + "]: " + err);
}

std::vector<Prefix> gateway_addrs(const config::BridgeDomain &c) {
    std::vector<Prefix> out = c.gateway_ipv4;
    out.insert(out.end(), c.gateway_ipv6.begin(), c.gateway_ipv6.end());
    return out;
}

MacAddr mac_of_key(uint64_t key) {
    MacAddr m;
    for (int i = 0; i < 6; i++) m.bytes[i] = uint8_t(key >> (40 - 8 * i));
    return m;
}
} // namespace

const BdState *Daemon::bd_of(uint16_t id) const {
    for (auto &b : bds_)
        if (b.id == id) return &b;
    return nullptr;
}

std::string Daemon::if_name(uint16_t ifid) const {
    size_t n = dp_->interfaces().size();
    if (ifid < n) return dp_->interfaces()[ifid].name;
    if (ifid - n < bds_.size()) return "vni" + std::to_string(bds_[ifid - n].cfg->vni);
    return "if" + std::to_string(ifid);
}

void Daemon::send_frame(uint16_t ifid, std::span<const uint8_t> frame) {
    size_t n = dp_->interfaces().size();
    if (ifid < n)
        dp_->transmit(dp_->interfaces()[ifid].port, frame);
    else if (ifid - n < bds_.size())
        dp_->transmit_bd(bds_[ifid - n].id, 0, dp::kAnyVlan, frame);
}

void Daemon::program_vxlan() {
    for (auto &v : cfg_.vrfs)
        if (v.l3vni) fib_->add_l3vni(v.l3vni, v.id, *v.router_mac);
    if (cfg_.vxlan) {
        // A VTEP address on no interface (a loopback) still belongs to us.
        for (auto &src : {cfg_.vxlan->source4, cfg_.vxlan->source6}) {
            if (!src) continue;
            bool on_if = false;
            for (auto &i : cfg_.interfaces)
                for (auto *as : {&i.ipv4, &i.ipv6})
                    for (auto &a : *as) on_if |= i.vrf == "default" && a.addr == *src;
            if (!on_if) fib_->add_local(0, *src);
        }
    }
    auto n_ifs = dp_->interfaces().size();
    for (size_t k = 0; k < cfg_.bridge_domains.size(); k++) {
        const config::BridgeDomain &c = cfg_.bridge_domains[k];
        std::string where = cfg_.source + ": bridge_domains[" + std::to_string(k) + "]";
        uint32_t vrf = cfg_.vrf(c.vrf)->id;
        BdState st{&c, fib_->add_bridge_domain(c.vni, vrf, c.gateway_mac),
                   static_cast<uint16_t>(n_ifs + k)};
        for (auto &a : c.access) {
            auto &names = dp_->port_names();
            auto at = std::find(names.begin(), names.end(), a.port) - names.begin();
            fib_->add_access(dp_->ports()[size_t(at)], a.vlan, st.id);
        }
        if (c.gateway_mac) {
            std::vector<Prefix> addrs = gateway_addrs(c);
            own_addrs_[vrf].insert(own_addrs_[vrf].end(), addrs.begin(), addrs.end());
            fib_->add_gateway(st.gw_ifid, "vni" + std::to_string(c.vni), st.id, vrf, addrs);
            resolver_->add_interface(
                neigh::NeighIf{st.gw_ifid, *c.gateway_mac, c.gateway_ipv4, c.gateway_ipv6});
        }
        for (size_t j = 0; j < c.flood.size(); j++)
            if (auto err = fib_->add_flood(st.id, c.flood[j]); !err.empty())
                throw bad_entry(where, "flood", j, err);
        for (size_t j = 0; j < c.macs.size(); j++) {
            auto &rm = c.macs[j];
            if (auto err = fib_->add_remote_mac(st.id, rm.mac, rm.vtep); !err.empty())
                throw bad_entry(where, "macs", j, err);
            for (auto &ip : rm.ips) bindings_[{st.id, ip}] = rm.mac;
        }
        bds_.push_back(st);
    }
}

unsigned Daemon::handle_learned() {
    dp::LearnMsg msg[64];
    unsigned n, served = 0;
    while ((n = dp_->overlay().drain_learned(msg, 64)) > 0) {
        served += n;
        for (unsigned k = 0; k < n; k++) {
            auto bd = static_cast<uint16_t>(msg[k].key >> 48);
            MacDest d;
            if (msg[k].dest & dp::mac_dest::kRemote) {
                IpAddr a = msg[k].family == 4
                               ? IpAddr::v4(uint32_t(msg[k].addr[0]) << 24 | msg[k].addr[1] << 16 |
                                            msg[k].addr[2] << 8 | msg[k].addr[3])
                               : IpAddr::v6(msg[k].addr);
                auto vtep = fib_->vtep_id(a); // only from VTEPs of a flood list, tunnel or MAC
                if (!vtep) {
                    vx_.learn_errors++;
                    continue;
                }
                d.kind = MacDest::Kind::Remote;
                d.vtep = *vtep;
                evpn_local_mac(bd, mac_of_key(msg[k].key), false); // moved behind a tunnel
            } else {
                d.port = dp::mac_dest::port(msg[k].dest);
                d.vlan = dp::mac_dest::vlan(msg[k].dest);
            }
            std::string err = dp_->apply(Update::mac_set(bd, mac_of_key(msg[k].key), d));
            if (err.empty()) {
                vx_.learned++;
                if (d.kind == MacDest::Kind::Local)
                    evpn_local_mac(bd, mac_of_key(msg[k].key), true);
            } else {
                vx_.learn_errors++;
                spdlog::warn("vxlan: cannot learn {}: {}", mac_of_key(msg[k].key).str(), err);
            }
        }
        if (n < 64) break;
    }
    return served;
}

void Daemon::vxlan_tick(uint64_t now) {
    if (now < next_vxlan_tick_) return;
    next_vxlan_tick_ = now + kVxlanTickMs;
    if (cfg_.vxlan) {
        std::vector<uint64_t> aged;
        dp_->overlay().age(rte_rdtsc(), cfg_.vxlan->mac_aging_s * rte_get_tsc_hz(), &aged);
        for (uint64_t key : aged) evpn_local_mac(uint16_t(key >> 48), mac_of_key(key), false);
    }
    // Tunnels need their underlay neighbor resolved before traffic needs it.
    for (auto &[ifid, ip] : fib_->unresolved_vteps()) {
        resolver_->resolve(ifid, ip, now);
        vx_.vtep_resolves++;
    }
}

// Answers an ARP request or neighbor solicitation for a known binding in place of the
// host, so that it is not flooded through every tunnel.
bool Daemon::suppress(const BdState &bd, std::span<const uint8_t> frame) {
    auto parsed = neigh::parse_frame(frame);
    auto target = neigh::solicited(parsed);
    auto it = target ? bindings_.find({bd.id, *target}) : bindings_.end();
    auto reply = it != bindings_.end() ? neigh::proxy_reply(parsed, it->second) : std::nullopt;
    if (!reply) return false;
    (target->is_v4() ? vx_.arp_suppressed : vx_.nd_suppressed)++;
    dp_->transmit_bd(bd.id, 0, dp::kAnyVlan, *reply);
    return true;
}

void Daemon::handle_bd_punt(const dp::PuntMsg &msg, uint64_t now) {
    auto bd_id = static_cast<uint16_t>(msg.nh & 0xffff);
    auto vlan = static_cast<uint16_t>(msg.nh >> 16);
    const BdState *bd = bd_of(bd_id);
    auto frame = bytes_of(msg.m);
    if (!bd || frame.size() < neigh::kEthHeaderLen) return;
    MacAddr dst;
    std::copy(frame.begin(), frame.begin() + 6, dst.bytes.begin());
    auto parsed = neigh::parse_frame(frame);
    // Snoop the sender's binding; the target of a request is what may be for the gateway.
    std::optional<IpAddr> target;
    if (auto *a = std::get_if<neigh::ArpMsg>(&parsed)) {
        if (!a->spa.is_unspecified()) {
            bindings_[{bd->id, a->spa}] = a->sha;
            evpn_local_ip(bd->id, a->sha, a->spa);
        }
        target = a->tpa;
    } else if (auto *n = std::get_if<neigh::NdMsg>(&parsed)) {
        if (n->type == neigh::NdType::NeighborSolicit && n->ll && !n->src.is_unspecified()) {
            bindings_[{bd->id, n->src}] = *n->ll;
            evpn_local_ip(bd->id, *n->ll, n->src);
        }
        if (n->type == neigh::NdType::NeighborAdvert && n->ll) {
            bindings_[{bd->id, n->target}] = *n->ll;
            evpn_local_ip(bd->id, *n->ll, n->target);
        }
        target = n->target;
    } else {
        return; // malformed: counted by nobody but dropped, as the kernel would
    }
    bool for_gateway = false;
    if (bd->cfg->gateway_mac) {
        resolver_->on_frame(bd->gw_ifid, frame, now);
        for_gateway = dst == *bd->cfg->gateway_mac ||
                      (target && target == neigh::link_local(*bd->cfg->gateway_mac));
        for (auto &a : gateway_addrs(*bd->cfg)) for_gateway |= target && a.addr == *target;
    }
    if (for_gateway || !neigh::is_multicast(dst) || suppress(*bd, frame)) return;
    if (dp_->transmit_bd(bd->id, msg.port, vlan, frame)) vx_.bum_flooded++;
}

void Daemon::handle_too_big(const dp::PuntMsg &msg) {
    auto frame = bytes_of(msg.m);
    auto to = icmp::source_of(frame);
    auto mtu = static_cast<uint16_t>(msg.nh & 0xffff);
    std::optional<std::vector<uint8_t>> err;
    if (auto bd_plus_one = msg.nh >> 16; to && bd_plus_one) {
        // Bridged: from the domain's gateway straight back to the sender's MAC.
        const BdState *bd = bd_of(static_cast<uint16_t>(bd_plus_one - 1));
        auto from = bd && bd->cfg->gateway_mac ? icmp::source_for(gateway_addrs(*bd->cfg), *to)
                                               : std::nullopt;
        MacAddr sender;
        std::copy(frame.begin() + 6, frame.begin() + 12, sender.bytes.begin());
        if (from) err = icmp::too_big(frame, *from, mtu, false, sender, *bd->cfg->gateway_mac);
        if (err) dp_->transmit_bd(bd->id, 0, dp::kAnyVlan, *err);
    } else if (to) {
        // Routed: routed back in its VRF like any packet of ours.
        auto from = icmp::source_for(own_addrs_[msg.vrf], *to);
        if (from) err = icmp::too_big(frame, *from, mtu, true, MacAddr{}, MacAddr{});
        if (err) dp_->route(msg.vrf, *err);
    }
    if (!err)
        vx_.too_big_unanswered++;
    else if (to->is_v4())
        vx_.frag_needed_sent++;
    else
        vx_.packet_too_big_sent++;
}

// Packets to an anycast gateway address: echo requests are answered here (the gateways
// have no tap), anything else is dropped. False for other local packets.
bool Daemon::for_gateway(const dp::PuntMsg &msg) {
    auto frame = bytes_of(msg.m);
    auto dst = icmp::destination_of(frame);
    if (!dst) return false;
    bool gateway = false;
    for (auto &bd : bds_)
        if (bd.cfg->gateway_mac && cfg_.vrf(bd.cfg->vrf)->id == msg.vrf)
            for (auto &a : gateway_addrs(*bd.cfg)) gateway |= a.addr == *dst;
    if (!gateway) return false;
    if (auto reply = icmp::echo_reply(frame); reply && dp_->route(msg.vrf, *reply))
        vx_.gateway_echo_replies++;
    else
        vx_.gateway_unanswered++;
    return true;
}

json Daemon::show_vxlan_vni(const json &args) const {
    std::string want = args.value("arg", std::string());
    json out = json::array();
    auto vrf_name = [&](uint32_t id) {
        for (auto &v : cfg_.vrfs)
            if (v.id == id) return v.name;
        return std::string();
    };
    for (auto &v : cfg_.vrfs) {
        if (!v.l3vni || (!want.empty() && want != std::to_string(v.l3vni))) continue;
        out.push_back({{"vni", v.l3vni},
                       {"type", "l3"},
                       {"vrf", v.name},
                       {"router_mac", v.router_mac->str()}});
    }
    for (auto &b : bds_) {
        const auto &c = *b.cfg;
        if (!want.empty() && want != std::to_string(c.vni)) continue;
        json access = json::array(), flood = json::array(), gw = json::array();
        for (auto &a : c.access)
            access.push_back(a.vlan ? a.port + "." + std::to_string(a.vlan) : a.port);
        for (auto &f : c.flood) flood.push_back(f.str());
        for (auto &a : gateway_addrs(c)) gw.push_back(a.str());
        out.push_back({{"vni", c.vni},
                       {"type", "l2"},
                       {"bridge_domain", b.id},
                       {"vrf", vrf_name(cfg_.vrf(c.vrf)->id)},
                       {"gateway_mac", c.gateway_mac ? c.gateway_mac->str() : ""},
                       {"gateway", gw},
                       {"access", access},
                       {"flood", flood}});
    }
    if (!want.empty() && out.empty()) throw std::runtime_error("no VNI " + want);
    return out;
}

json Daemon::show_vxlan_vtep() const {
    json local = json::object();
    if (cfg_.vxlan) {
        const auto &v = *cfg_.vxlan;
        local = {
            {"source", v.source4 ? v.source4->str() : ""},
            {"source6", v.source6 ? v.source6->str() : ""},
            {"udp_port", v.udp_port},
            {"src_ports", std::to_string(v.src_port_min) + "-" + std::to_string(v.src_port_max)},
            {"ttl", v.ttl},
            {"df", v.df},
            {"mac_aging_s", v.mac_aging_s}};
    }
    json remote = json::array();
    for (auto &v : fib_->vteps()) {
        json hops = json::array();
        for (auto &h : v.underlay)
            hops.push_back({{"via", h.via}, {"interface", h.interface}, {"mac", h.mac}});
        remote.push_back({{"id", v.id},
                          {"address", v.addr.str()},
                          {"underlay", hops},
                          {"tunnels", v.tunnels},
                          {"users", v.users}});
    }
    return {{"local", local},
            {"remote", remote},
            {"underlay_changes", fib_->counters().vtep_underlay_changes}};
}

json Daemon::show_vxlan_mac(const json &args) const {
    std::string want = args.value("arg", std::string());
    json out = json::array();
    std::map<uint16_t, std::string> vtep_addr;
    for (auto &v : fib_->vteps()) vtep_addr[v.id] = v.addr.str();
    double hz = double(rte_get_tsc_hz());
    for (auto &e : dp_->overlay().mac_table(rte_rdtsc())) {
        const BdState *bd = bd_of(e.bd);
        if (!bd || (!want.empty() && want != std::to_string(bd->cfg->vni))) continue;
        bool remote = e.dest.kind == MacDest::Kind::Remote;
        std::string port;
        if (!remote)
            for (size_t k = 0; k < dp_->ports().size(); k++)
                if (dp_->ports()[k] == e.dest.port) port = dp_->port_names()[k];
        out.push_back({{"vni", bd->cfg->vni},
                       {"mac", e.mac.str()},
                       {"type", remote ? "remote" : "local"},
                       {"static", e.dest.is_static},
                       {"port", port},
                       {"vlan", remote ? 0 : e.dest.vlan},
                       {"vtep", remote ? vtep_addr[e.dest.vtep] : ""},
                       {"idle_s", e.dest.is_static ? 0.0 : double(e.idle_tsc) / hz}});
    }
    return out;
}

} // namespace vleaf
