// JSON views of the speaker for the management socket (`show bgp ...`).
#include "control/bgp/show.hpp"

#include <stdexcept>

namespace vleaf::bgp {

namespace {

using nlohmann::json;

int64_t seconds_since(TimePoint t) {
    return std::chrono::duration_cast<Seconds>(Clock::now() - t).count();
}

json families_json(FamilyMask m) {
    json a = json::array();
    for (unsigned i = 0; i < kRouteFamilies; ++i)
        if (m & family_bit(RouteFamily(i))) a.push_back(family_name(RouteFamily(i)));
    return a;
}

const char *origin_name(std::optional<Origin> o) {
    if (!o) return "";
    switch (*o) {
    case Origin::Igp:
        return "igp";
    case Origin::Egp:
        return "egp";
    case Origin::Incomplete:
        return "incomplete";
    }
    return "";
}

json path_json(const Path &p, bool best, bool multipath, const Rib &rib) {
    const PathAttrs &a = p.attrs->attrs;
    json j;
    j["from"] = p.peer == kLocalPeer ? std::string("local") : rib.peer(p.peer).address.str();
    j["next_hop"] = p.attrs->next_hop.addr.is_unspecified() ? std::string("self")
                                                            : p.attrs->next_hop.addr.str();
    if (p.attrs->next_hop.link_local) j["link_local"] = p.attrs->next_hop.link_local->str();
    j["as_path"] = a.as_path ? a.as_path->str() : "";
    j["origin"] = origin_name(a.origin);
    j["local_pref"] = p.attrs->local_pref();
    if (a.med) j["med"] = *a.med;
    json comms = json::array();
    for (auto c : a.communities) comms.push_back(community_str(c));
    j["communities"] = comms;
    if (!a.large_communities.empty()) {
        json l = json::array();
        for (auto &c : a.large_communities)
            l.push_back(std::to_string(c.global) + ":" + std::to_string(c.local1) + ":" +
                        std::to_string(c.local2));
        j["large_communities"] = l;
    }
    if (!a.ext_communities.empty()) {
        json e = json::array();
        for (auto &c : a.ext_communities) e.push_back(c.str());
        j["ext_communities"] = e;
    }
    if (a.originator_id) j["originator_id"] = IpAddr::v4(*a.originator_id).str();
    if (!a.cluster_list.empty()) {
        json cl = json::array();
        for (auto id : a.cluster_list) cl.push_back(IpAddr::v4(id).str());
        j["cluster_list"] = cl;
    }
    if (p.path_id) j["path_id"] = p.path_id;
    j["best"] = best;
    j["multipath"] = multipath;
    j["stale"] = (p.flags & Path::kStale) != 0;
    return j;
}

} // namespace

nlohmann::json Speaker::show_summary() const {
    json j;
    j["router_id"] = cfg_.router_id.str();
    j["asn"] = cfg_.asn;
    j["listen_port"] = listen_port_;
    json rib;
    for (unsigned i = 0; i < kRouteFamilies; ++i)
        rib[family_name(RouteFamily(i))] = rib_.prefixes(RouteFamily(i));
    rib["paths"] = rib_.paths();
    rib["attribute_sets"] = rib_.attr_sets();
    j["rib"] = rib;
    json gr;
    gr["restarting"] = restarting_;
    gr["forwarding_preserved"] = forwarding_preserved_;
    gr["deferring"] = rib_.deferring();
    if (defer_deadline_)
        gr["deferral_remaining_s"] =
            std::chrono::duration_cast<Seconds>(*defer_deadline_ - Clock::now()).count();
    gr["deferral_ended"] = deferral_ended_;
    j["graceful_restart"] = gr;
    j["connections"] = {{"accepted", counters_.accepted},
                        {"rejected_unknown", counters_.rejected_unknown},
                        {"rejected_collision", counters_.rejected_collision},
                        {"dynamic_created", counters_.dynamic_created}};
    j["read_pauses"] = counters_.read_pauses;
    json peers = json::array();
    for (auto &sp : sessions_) {
        const Session &s = *sp;
        json p;
        p["neighbor"] = s.remote.str();
        p["remote_as"] = s.local.remote_as;
        p["state"] = state_name(s.main->fsm.state());
        p["dynamic"] = s.dynamic;
        p["uptime_s"] = s.up ? seconds_since(s.up_since) : 0;
        json pfx;
        auto &acc = rib_.peer(s.rib_id).accepted;
        for (unsigned i = 0; i < kRouteFamilies; ++i)
            if (s.local.families & family_bit(RouteFamily(i)))
                pfx[family_name(RouteFamily(i))] = acc[i];
        p["prefixes_received"] = pfx;
        p["prefixes_sent"] = s.counters.prefixes_announced_out;
        p["msgs_received"] = s.counters.opens_in + s.counters.updates_in +
                             s.counters.keepalives_in + s.counters.notifications_in +
                             s.counters.refreshes_in + s.counters.borr_in + s.counters.eorr_in;
        p["msgs_sent"] = s.counters.opens_out + s.counters.updates_out + s.counters.keepalives_out +
                         s.counters.notifications_out + s.counters.refreshes_out +
                         s.counters.borr_out + s.counters.eorr_out;
        p["last_error"] = s.last_error;
        peers.push_back(p);
    }
    j["peers"] = peers;
    return j;
}

nlohmann::json Speaker::show_neighbors(const std::string &address) const {
    json out = json::array();
    for (auto &sp : sessions_) {
        const Session &s = *sp;
        if (!address.empty() && s.remote.str() != address) continue;
        const Conn &c = *s.main;
        json p;
        p["neighbor"] = s.remote.str();
        p["description"] = s.cfg.description;
        p["remote_as"] = s.local.remote_as;
        p["local_as"] = s.local.asn;
        p["type"] = s.ibgp() ? "internal" : "external";
        p["state"] = state_name(c.fsm.state());
        p["dynamic"] = s.dynamic;
        p["passive"] = s.local.passive;
        p["rr_client"] = s.cfg.rr_client;
        p["configured_families"] = families_json(s.local.families);
        p["password"] = !s.cfg.password.empty();
        p["ttl_security"] = s.cfg.ttl_security;
        if (c.fd >= 0) {
            p["local_address"] = c.local_addr.str();
            p["local_port"] = c.local_port;
            p["remote_port"] = c.remote_port;
        }
        if (s.up) {
            p["uptime_s"] = seconds_since(s.up_since);
            p["remote_id"] = IpAddr::v4(s.neg.remote_id).str();
            p["hold_time"] = s.neg.hold;
            p["keepalive"] = s.neg.keepalive;
            p["families"] = families_json(s.neg.families);
            p["four_octet_as"] = s.neg.ctx.four_octet_as;
            p["route_refresh"] = s.neg.route_refresh;
            p["enhanced_route_refresh"] = s.neg.enhanced_refresh;
            p["graceful_restart"] = s.neg.peer_gr;
            p["peer_restart_time"] = s.neg.peer_restart_time;
            p["peer_restarting"] = s.neg.peer_restarting;
            json ap = json::array();
            for (unsigned i = 0; i < kRouteFamilies; ++i)
                if (s.neg.ctx.add_path_rx[i]) ap.push_back(family_name(RouteFamily(i)));
            p["add_path_receive"] = ap;
            p["extended_nexthop"] = s.neg.ctx.extended_nexthop_ipv4;
        }
        if (s.first_update) {
            p["update_span_ms"] =
                std::chrono::duration<double, std::milli>(*s.last_update - *s.first_update).count();
            p["last_update_age_ms"] =
                std::chrono::duration<double, std::milli>(Clock::now() - *s.last_update).count();
        }
        p["stale_families"] = families_json(s.gr_stale | s.refresh_stale);
        p["eor_received"] = families_json(s.eor_in);
        p["last_error"] = s.last_error;
        json ctr;
        auto &k = s.counters;
        ctr["opens_in"] = k.opens_in;
        ctr["opens_out"] = k.opens_out;
        ctr["updates_in"] = k.updates_in;
        ctr["updates_out"] = k.updates_out;
        ctr["keepalives_in"] = k.keepalives_in;
        ctr["keepalives_out"] = k.keepalives_out;
        ctr["notifications_in"] = k.notifications_in;
        ctr["notifications_out"] = k.notifications_out;
        ctr["route_refresh_in"] = k.refreshes_in;
        ctr["route_refresh_out"] = k.refreshes_out;
        ctr["borr_in"] = k.borr_in;
        ctr["eorr_in"] = k.eorr_in;
        ctr["borr_out"] = k.borr_out;
        ctr["eorr_out"] = k.eorr_out;
        ctr["prefixes_announced_in"] = k.prefixes_announced_in;
        ctr["prefixes_withdrawn_in"] = k.prefixes_withdrawn_in;
        ctr["prefixes_announced_out"] = k.prefixes_announced_out;
        ctr["prefixes_withdrawn_out"] = k.prefixes_withdrawn_out;
        ctr["treat_as_withdraw"] = k.treat_as_withdraw;
        ctr["attribute_discard"] = k.attribute_discard;
        ctr["import_rejected"] = k.import_rejected;
        ctr["established"] = k.established;
        ctr["dropped"] = k.dropped;
        p["counters"] = ctr;
        json pfx;
        auto &acc = rib_.peer(s.rib_id).accepted;
        for (unsigned i = 0; i < kRouteFamilies; ++i) pfx[family_name(RouteFamily(i))] = acc[i];
        p["prefixes_received"] = pfx;
        out.push_back(p);
    }
    return out;
}

nlohmann::json Speaker::show_routes(RouteFamily f, const std::string &prefix) const {
    json out = json::array();
    auto add = [&](const std::string &key, const RouteEntry &e) {
        json r;
        r["prefix"] = key;
        json paths = json::array();
        for (size_t i = 0; i < e.n; ++i)
            paths.push_back(path_json(e.all()[i], i == 0, i < e.n_best, rib_));
        r["paths"] = paths;
        out.push_back(r);
    };
    if (!prefix.empty() && f != RouteFamily::Evpn) {
        auto p = Prefix::parse(prefix);
        if (!p) throw std::invalid_argument("'" + prefix + "' is not a prefix");
        if (auto *e = rib_.find(f, *p)) add(p->str(), *e);
        return out;
    }
    rib_.for_each(f, [&](const Prefix *p, const EvpnNlri *ev, const RouteEntry &e) {
        std::string key = p ? p->str() : ev->str();
        if (prefix.empty() || key.find(prefix) != std::string::npos) add(key, e);
    });
    return out;
}

namespace {

json targets_json(const std::vector<RouteTarget> &v) {
    json a = json::array();
    for (auto &rt : v) a.push_back(rt.str());
    return a;
}

const char *owner_name(MacEntry::Owner o) {
    switch (o) {
    case MacEntry::Owner::Local:
        return "local";
    case MacEntry::Owner::Remote:
        return "remote";
    case MacEntry::Owner::None:
        return "none";
    }
    return "?";
}

} // namespace

nlohmann::json Speaker::show_evpn_vni() const {
    json out = json::array();
    for (auto &[vni, m] : evpn_.mac_vrfs()) {
        json j;
        j["vni"] = vni;
        j["type"] = "L2";
        j["rd"] = m.rd.str();
        j["import_targets"] = targets_json(m.import_targets);
        j["export_targets"] = targets_json(m.export_targets);
        j["vrf"] = m.vrf;
        j["vtep"] = evpn_.vtep().str();
        size_t local = 0;
        for (auto &[mac, e] : m.macs) local += e.owner == MacEntry::Owner::Local;
        j["macs"] = m.macs.size();
        j["local_macs"] = local;
        json vteps = json::array();
        for (auto &v : m.flood_list()) vteps.push_back(v.str());
        j["remote_vteps"] = vteps;
        out.push_back(j);
    }
    for (auto &[name, v] : evpn_.ip_vrfs()) {
        json j;
        j["vni"] = v.cfg.l3vni;
        j["type"] = "L3";
        j["vrf"] = name;
        j["rd"] = v.rd.str();
        j["import_targets"] = targets_json(v.import_targets);
        j["export_targets"] = targets_json(v.export_targets);
        j["router_mac"] = v.cfg.router_mac.str();
        j["vtep"] = evpn_.vtep().str();
        j["prefixes"] = v.routes.size();
        out.push_back(j);
    }
    return out;
}

nlohmann::json Speaker::show_evpn_mac(uint32_t only) const {
    json out = json::array();
    for (auto &[vni, m] : evpn_.mac_vrfs()) {
        if (only && vni != only) continue;
        for (auto &[mac, e] : m.macs) {
            json j;
            j["vni"] = vni;
            j["mac"] = mac.str();
            j["type"] = owner_name(e.owner);
            if (e.owner != MacEntry::Owner::None) j["vtep"] = e.owner_vtep.str();
            json ips = json::array();
            uint32_t seq = e.local_seq;
            bool sticky = e.local_sticky;
            if (e.owner == MacEntry::Owner::Local) {
                for (auto &ip : e.local_ips)
                    if (ip) ips.push_back(ip->str());
            } else if (auto *r = e.best_remote()) {
                seq = r->seq;
                sticky = r->sticky;
                for (auto &[k, x] : e.remote)
                    if (x.ip && x.vtep == r->vtep) ips.push_back(x.ip->str());
            }
            j["ips"] = ips;
            j["sequence"] = seq;
            j["sticky"] = sticky;
            j["duplicate"] = e.duplicate;
            j["moves"] = e.moves.size();
            json remote = json::array();
            for (auto &[k, x] : e.remote)
                remote.push_back({{"vtep", x.vtep.str()},
                                  {"ip", x.ip ? x.ip->str() : ""},
                                  {"sequence", x.seq},
                                  {"sticky", x.sticky},
                                  {"l3vni", x.l3vni}});
            j["remote_routes"] = remote;
            out.push_back(j);
        }
    }
    return out;
}

nlohmann::json Speaker::show_evpn_imet() const {
    json out = json::array();
    for (auto &[vni, m] : evpn_.mac_vrfs()) {
        json j;
        j["vni"] = vni;
        j["local_vtep"] = evpn_.vtep().str();
        json r = json::array();
        for (auto &[k, vtep] : m.imet) r.push_back({{"vtep", vtep.str()}, {"route", k.str()}});
        j["remote"] = r;
        out.push_back(j);
    }
    return out;
}

nlohmann::json Speaker::show_vrf_routes(const std::string &vrf, RouteFamily f) const {
    auto it = evpn_.ip_vrfs().find(vrf);
    if (it == evpn_.ip_vrfs().end()) throw std::invalid_argument("no IP-VRF '" + vrf + "'");
    json out = json::array();
    for (auto &[p, e] : it->second.routes) {
        if (p.addr.is_v4() != (f == RouteFamily::Ipv4Unicast)) continue;
        json r;
        r["prefix"] = p.str();
        json paths = json::array();
        for (size_t i = 0; i < e.cands.size(); ++i) {
            auto &c = e.cands[i];
            json j = path_json(c.path, i == 0, i < e.n_best, rib_);
            j["vni"] = c.vni;
            j["route"] = c.key.str();
            for (auto &x : c.path.attrs->attrs.ext_communities)
                if (auto m = x.as_router_mac()) j["router_mac"] = m->str();
            paths.push_back(j);
        }
        r["paths"] = paths;
        out.push_back(r);
    }
    return out;
}

std::string str_arg(const nlohmann::json &args, const char *key) {
    if (!args.is_object() || !args.contains(key)) return "";
    if (!args[key].is_string())
        throw std::invalid_argument(std::string(key) + ": expected a string");
    return args[key].get<std::string>();
}

uint32_t uint_arg(const nlohmann::json &args, const char *key) {
    if (!args.is_object() || !args.contains(key)) return 0;
    if (!args[key].is_number_unsigned() || args[key].get<uint64_t>() > 0xffffffffu)
        throw std::invalid_argument(std::string(key) + ": expected a non-negative integer");
    return args[key].get<uint32_t>();
}

void add_show_commands(api::Server &api, const ShowRunner &run) {
    api.add("show bgp summary", [run](const json &) {
        return run([](const Speaker &sp) { return sp.show_summary(); });
    });
    api.add("show bgp neighbors", [run](const json &a) {
        std::string address = str_arg(a, "address");
        return run([address](const Speaker &sp) { return sp.show_neighbors(address); });
    });
    const std::pair<const char *, RouteFamily> families[] = {{"ipv4", RouteFamily::Ipv4Unicast},
                                                             {"ipv6", RouteFamily::Ipv6Unicast},
                                                             {"evpn", RouteFamily::Evpn}};
    // Not a structured binding: clang 14 (the fuzz build) cannot capture those.
    for (const auto &entry : families) {
        RouteFamily f = entry.second;
        api.add(std::string("show bgp routes ") + entry.first, [run, f](const json &a) {
            std::string vrf = str_arg(a, "vrf"), prefix = str_arg(a, "prefix");
            return run([f, vrf, prefix](const Speaker &sp) {
                if (!vrf.empty() && vrf != "default") return sp.show_vrf_routes(vrf, f);
                return sp.show_routes(f, prefix);
            });
        });
    }
    api.add("show evpn vni", [run](const json &) {
        return run([](const Speaker &sp) { return sp.show_evpn_vni(); });
    });
    api.add("show evpn mac", [run](const json &a) {
        uint32_t vni = uint_arg(a, "vni");
        return run([vni](const Speaker &sp) { return sp.show_evpn_mac(vni); });
    });
    api.add("show evpn imet", [run](const json &) {
        return run([](const Speaker &sp) { return sp.show_evpn_imet(); });
    });
}

} // namespace vleaf::bgp
