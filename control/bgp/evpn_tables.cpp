#include "control/bgp/evpn_tables.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace vleaf::bgp {

namespace {

bool imports(const PathAttrs &a, const std::vector<RouteTarget> &targets) {
    for (auto &c : a.ext_communities)
        if (auto rt = c.as_route_target())
            if (std::find(targets.begin(), targets.end(), *rt) != targets.end()) return true;
    return false;
}

MacMobility mobility(const PathAttrs &a) {
    for (auto &c : a.ext_communities)
        if (auto mm = c.as_mac_mobility()) return *mm;
    return {};
}

Prefix host_prefix(const IpAddr &a) {
    return {a, uint8_t(a.max_len())};
}

std::vector<RouteTarget> or_auto(const std::vector<RouteTarget> &v, const RouteTarget &dflt) {
    return v.empty() ? std::vector<RouteTarget>{dflt} : v;
}

} // namespace

const char *mac_result_name(MacResult r) {
    switch (r) {
    case MacResult::Advertised:
        return "advertised";
    case MacResult::Refused:
        return "refused: sticky at a remote VTEP";
    case MacResult::Duplicate:
        return "duplicate: frozen";
    case MacResult::UnknownVni:
        return "unknown VNI";
    }
    return "?";
}

const RemoteMac *MacEntry::best_remote() const {
    const RemoteMac *b = nullptr;
    for (auto &[k, r] : remote) {
        // RFC 7432 15: sticky first, then the highest sequence number, then the lowest
        // VTEP address.
        if (!b || std::tuple(!r.sticky, ~r.seq, r.vtep) < std::tuple(!b->sticky, ~b->seq, b->vtep))
            b = &r;
    }
    return b;
}

std::set<IpAddr> MacVrf::flood_list() const {
    std::set<IpAddr> s;
    for (auto &[k, vtep] : imet) s.insert(vtep);
    return s;
}

EvpnTables::~EvpnTables() {
    for (auto &[n, v] : vrfs_)
        for (auto &[p, e] : v.routes)
            for (auto &c : e.cands) rib_.unref(c.path.attrs);
}

// ---------------------------------------------------------------------------------------
// Configuration

MacVrf EvpnTables::make_mac_vrf(const BgpConfig &cfg, const L2Vni &v) const {
    MacVrf m;
    m.vni = v.vni;
    m.rd = v.rd.value_or(cfg.auto_rd(v.vni));
    m.import_targets = or_auto(v.import_targets, cfg.auto_rt(v.vni));
    m.export_targets = or_auto(v.export_targets, cfg.auto_rt(v.vni));
    if (auto *vrf = cfg.evpn.vrf(v.vrf)) {
        m.vrf = vrf->name;
        m.l3vni = vrf->l3vni;
        m.router_mac = vrf->router_mac;
        m.vrf_export_targets = or_auto(vrf->export_targets, cfg.auto_rt(vrf->l3vni));
    }
    return m;
}

IpVrf EvpnTables::make_ip_vrf(const BgpConfig &cfg, const EvpnVrf &v) {
    IpVrf x;
    auto [it, fresh] = vrf_ids_.try_emplace(v.name, uint32_t(vrf_ids_.size() + 1));
    x.id = it->second;
    x.cfg = v;
    x.rd = v.rd.value_or(cfg.auto_rd(v.l3vni));
    x.import_targets = or_auto(v.import_targets, cfg.auto_rt(v.l3vni));
    x.export_targets = or_auto(v.export_targets, cfg.auto_rt(v.l3vni));
    return x;
}

void EvpnTables::configure(const BgpConfig &cfg) {
    bool all = cfg.vtep() != vtep_ || cfg.asn != asn_;
    dup_max_moves_ = cfg.evpn.dup_max_moves;
    dup_window_s_ = cfg.evpn.dup_window_s;

    // IP-VRFs first: the MAC-VRFs' routes carry their L3VNIs.
    for (auto it = vrfs_.begin(); it != vrfs_.end();) {
        auto *nc = cfg.evpn.vrf(it->first);
        IpVrf &v = it->second;
        if (!nc || all) {
            originate_prefixes(v, true);
            clear_imports(v);
            it = vrfs_.erase(it);
            continue;
        }
        IpVrf nv = make_ip_vrf(cfg, *nc);
        if (nv.cfg == v.cfg && nv.rd == v.rd && nv.export_targets == v.export_targets &&
            nv.import_targets == v.import_targets) {
            ++it;
            continue;
        }
        spdlog::info("bgp evpn: VRF {} changed", v.cfg.name);
        originate_prefixes(v, true);
        bool reimport = nv.import_targets != v.import_targets;
        if (reimport) clear_imports(v);
        v.cfg = nv.cfg;
        v.rd = nv.rd;
        v.import_targets = nv.import_targets;
        v.export_targets = nv.export_targets;
        if (reimport) import_all(nullptr, &v);
        originate_prefixes(v, false);
        ++it;
    }
    for (auto it = macs_.begin(); it != macs_.end();) {
        auto *nc = cfg.evpn.vni(it->first);
        MacVrf &m = it->second;
        if (!nc || all) {
            originate_imet(m, true);
            for (auto &[mac, e] : m.macs) advertise_mac(m, mac, e, true);
            clear_imports(m); // the dataplane forgets its remote MACs and flood list
            it = macs_.erase(it);
            continue;
        }
        MacVrf nm = make_mac_vrf(cfg, *nc);
        if (nm.same_settings(m)) {
            ++it;
            continue;
        }
        spdlog::info("bgp evpn: VNI {} changed", m.vni);
        originate_imet(m, true);
        for (auto &[mac, e] : m.macs) advertise_mac(m, mac, e, true);
        bool reimport = nm.import_targets != m.import_targets;
        if (reimport) clear_imports(m);
        nm.macs = std::move(m.macs);
        nm.imet = std::move(m.imet);
        m = std::move(nm);
        if (reimport) import_all(&m, nullptr);
        originate_imet(m, false);
        for (auto &[mac, e] : m.macs)
            if (e.local() && !e.duplicate) advertise_mac(m, mac, e, false);
        ++it;
    }
    vtep_ = cfg.vtep();
    asn_ = cfg.asn;
    for (auto &v : cfg.evpn.vrfs) {
        if (vrfs_.count(v.name)) continue;
        auto &x = vrfs_.emplace(v.name, make_ip_vrf(cfg, v)).first->second;
        import_all(nullptr, &x);
        originate_prefixes(x, false);
    }
    for (auto &v : cfg.evpn.vnis) {
        if (macs_.count(v.vni)) continue;
        auto &m = macs_.emplace(v.vni, make_mac_vrf(cfg, v)).first->second;
        import_all(&m, nullptr);
        originate_imet(m, false);
    }
}

void EvpnTables::clear_imports(MacVrf &m) {
    // No move is counted: the routes are the same, only the import is redone.
    auto flood = m.flood_list();
    m.imet.clear();
    tell_flood(m, flood);
    for (auto it = m.macs.begin(); it != m.macs.end();) {
        if (it->second.owner == MacEntry::Owner::Remote)
            tell({EvpnL2Change::MacGone, m.vni, it->first, {}, {}});
        it->second.remote.clear();
        if (!it->second.local() && !it->second.duplicate) {
            it = m.macs.erase(it);
        } else {
            it->second.owner = it->second.local() ? MacEntry::Owner::Local : MacEntry::Owner::None;
            ++it;
        }
    }
}

void EvpnTables::clear_imports(IpVrf &v) {
    for (auto &[p, e] : v.routes) {
        std::vector<Path> before;
        for (size_t i = 0; i < e.n_best; ++i) before.push_back(e.cands[i].path);
        RibChange ch{p.addr.is_v4() ? RouteFamily::Ipv4Unicast : RouteFamily::Ipv6Unicast,
                     v.id,
                     &p,
                     nullptr,
                     before,
                     {},
                     v.cfg.name,
                     {}};
        if (!before.empty()) rib_.notify(ch);
        for (auto &c : e.cands) rib_.unref(c.path.attrs);
    }
    v.routes.clear();
}

void EvpnTables::import_all(MacVrf *m, IpVrf *v) {
    rib_.for_each(RouteFamily::Evpn, [&](const Prefix *, const EvpnNlri *ev, const RouteEntry &e) {
        if (e.n_best) apply(*ev, &e.all()[0], m, v, m || v);
    });
}

// ---------------------------------------------------------------------------------------
// Import

void EvpnTables::on_rib_change(const RibChange &ch) {
    if (ch.family != RouteFamily::Evpn || ch.vrf || !ch.evpn) return;
    apply(*ch.evpn, ch.now.empty() ? nullptr : &ch.now[0], nullptr, nullptr, false);
}

void EvpnTables::apply(const EvpnNlri &key, const Path *best, MacVrf *only_m, IpVrf *only_v,
                       bool restricted) {
    if (best && best->peer == kLocalPeer) best = nullptr; // ours: kept in the tables already
    const PathAttrs *a = best ? &best->attrs->attrs : nullptr;
    auto each_mac = [&](auto fn) {
        if (restricted) {
            if (only_m) fn(*only_m);
            return;
        }
        for (auto &[vni, m] : macs_) fn(m);
    };
    auto each_vrf = [&](auto fn) {
        if (restricted) {
            if (only_v) fn(*only_v);
            return;
        }
        for (auto &[n, v] : vrfs_) fn(v);
    };
    if (auto *r = std::get_if<EvpnMacIp>(&key.route)) {
        each_mac([&](MacVrf &m) {
            bool want = a && imports(*a, m.import_targets);
            auto it = m.macs.find(r->mac);
            if (!want && (it == m.macs.end() || !it->second.remote.count(key))) return;
            MacEntry &e = it == m.macs.end() ? m.macs[r->mac] : it->second;
            bool was_remote = e.owner == MacEntry::Owner::Remote;
            if (want) {
                auto mm = mobility(*a);
                e.remote[key] = RemoteMac{best->attrs->next_hop.addr, r->ip, mm.sequence, mm.sticky,
                                          r->label2.value_or(0)};
            } else {
                e.remote.erase(key);
            }
            resolve(m, r->mac, e);
            if (!e.local() && e.remote.empty() && !e.duplicate) {
                m.macs.erase(r->mac);
                tell_mac(m, r->mac, nullptr, was_remote);
            } else {
                tell_mac(m, r->mac, &e, was_remote);
            }
        });
        if (r->ip)
            each_vrf([&](IpVrf &v) {
                bool want = a && r->label2 && imports(*a, v.import_targets);
                vrf_set(v, host_prefix(*r->ip), key,
                        want ? std::optional<VrfCandidate>(VrfCandidate{*best, *r->label2, key})
                             : std::nullopt);
            });
    } else if (auto *i = std::get_if<EvpnImet>(&key.route)) {
        each_mac([&](MacVrf &m) {
            auto before = m.flood_list();
            if (a && imports(*a, m.import_targets)) {
                auto ep = a->pmsi_tunnel ? a->pmsi_tunnel->endpoint() : std::nullopt;
                m.imet[key] = ep.value_or(i->originator);
            } else {
                m.imet.erase(key);
            }
            tell_flood(m, before);
        });
    } else if (auto *p = std::get_if<EvpnIpPrefix>(&key.route)) {
        each_vrf([&](IpVrf &v) {
            bool want = a && imports(*a, v.import_targets);
            vrf_set(v, p->prefix, key,
                    want ? std::optional<VrfCandidate>(VrfCandidate{*best, p->label, key})
                         : std::nullopt);
        });
    }
}

void EvpnTables::tell(const EvpnL2Change &c) {
    for (auto &l : l2_listeners_) l(c);
}

EvpnL2Change remote_mac_change(const MacVrf &m, const MacAddr &mac, const MacEntry &e) {
    EvpnL2Change c{EvpnL2Change::MacRemote, m.vni, mac, e.owner_vtep, {}};
    for (auto &[k, r] : e.remote)
        if (r.ip && r.vtep == e.owner_vtep) c.ips.push_back(*r.ip);
    return c;
}

void EvpnTables::tell_mac(const MacVrf &m, const MacAddr &mac, const MacEntry *e, bool was_remote) {
    if (e && e->owner == MacEntry::Owner::Remote) {
        tell(remote_mac_change(m, mac, *e));
    } else if (was_remote) {
        tell({EvpnL2Change::MacGone, m.vni, mac, {}, {}});
    }
}

void EvpnTables::tell_flood(const MacVrf &m, const std::set<IpAddr> &before) {
    auto now = m.flood_list();
    for (auto &v : now)
        if (!before.count(v)) tell({EvpnL2Change::FloodAdd, m.vni, {}, v, {}});
    for (auto &v : before)
        if (!now.count(v)) tell({EvpnL2Change::FloodRemove, m.vni, {}, v, {}});
}

// ---------------------------------------------------------------------------------------
// MAC mobility

void EvpnTables::resolve(MacVrf &m, const MacAddr &mac, MacEntry &e) {
    auto prev = e.owner;
    IpAddr prev_vtep = e.owner_vtep;
    const RemoteMac *r = e.best_remote();
    if (e.local()) {
        bool moved_away =
            r && !e.duplicate && !e.local_sticky &&
            (r->sticky || r->seq > e.local_seq || (r->seq == e.local_seq && r->vtep < vtep_));
        if (moved_away) {
            spdlog::info("bgp evpn: VNI {} MAC {} moved to VTEP {} (sequence {} over our {})",
                         m.vni, mac.str(), r->vtep.str(), r->seq, e.local_seq);
            advertise_mac(m, mac, e, true);
            e.local_ips.clear();
            e.local_sticky = false;
            e.owner = MacEntry::Owner::Remote;
            e.owner_vtep = r->vtep;
        } else {
            e.owner = MacEntry::Owner::Local;
            e.owner_vtep = vtep_;
        }
    } else if (r) {
        e.owner = MacEntry::Owner::Remote;
        e.owner_vtep = r->vtep;
    } else {
        e.owner = MacEntry::Owner::None;
    }
    bool moved = prev != MacEntry::Owner::None && e.owner != MacEntry::Owner::None &&
                 (prev != e.owner || prev_vtep != e.owner_vtep);
    if (!moved) return;
    ++moves_;
    auto now = Clock::now();
    e.moves.push_back(now);
    while (!e.moves.empty() && now - e.moves.front() > Seconds(dup_window_s_)) e.moves.pop_front();
    if (!e.duplicate && e.moves.size() >= dup_max_moves_) {
        e.duplicate = true;
        spdlog::warn("bgp evpn: VNI {} MAC {} moved {} times within {} s: duplicate, frozen "
                     "(clear it with clear evpn duplicate)",
                     m.vni, mac.str(), e.moves.size(), dup_window_s_);
        if (e.local()) advertise_mac(m, mac, e, true);
    }
}

MacResult EvpnTables::originate_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip,
                                       bool sticky) {
    auto mit = macs_.find(vni);
    if (mit == macs_.end()) return MacResult::UnknownVni;
    MacVrf &m = mit->second;
    MacEntry &e = m.macs[mac];
    bool was_remote = e.owner == MacEntry::Owner::Remote;
    const RemoteMac *r = e.best_remote();
    if (!e.local()) {
        if (r && r->sticky && !sticky && !e.duplicate) {
            spdlog::warn("bgp evpn: VNI {} MAC {} learned locally but sticky at VTEP {}: not "
                         "advertised",
                         vni, mac.str(), r->vtep.str());
            return MacResult::Refused;
        }
        // RFC 7432 15.1: a MAC that moves here is advertised with a higher sequence number.
        e.local_seq = r ? r->seq + 1 : 0;
    }
    bool changed = e.local_ips.insert(ip).second || e.local_sticky != sticky;
    e.local_sticky = sticky;
    resolve(m, mac, e);
    tell_mac(m, mac, &e, was_remote);
    if (e.duplicate) return MacResult::Duplicate;
    if (changed) advertise_mac(m, mac, e, false);
    return MacResult::Advertised;
}

bool EvpnTables::withdraw_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip) {
    auto mit = macs_.find(vni);
    if (mit == macs_.end()) return false;
    MacVrf &m = mit->second;
    auto it = m.macs.find(mac);
    if (it == m.macs.end() || !it->second.local_ips.count(ip)) return false;
    MacEntry &e = it->second;
    if (!e.duplicate) install(mac_route(m, mac, ip), {}, true);
    e.local_ips.erase(ip);
    resolve(m, mac, e);
    tell_mac(m, mac, &e, false); // back to a remote VTEP, if one still announces it
    if (!e.local() && e.remote.empty() && !e.duplicate) m.macs.erase(it);
    return true;
}

bool EvpnTables::clear_duplicate(uint32_t vni, const MacAddr &mac) {
    auto mit = macs_.find(vni);
    if (mit == macs_.end()) return false;
    auto it = mit->second.macs.find(mac);
    if (it == mit->second.macs.end() || !it->second.duplicate) return false;
    MacEntry &e = it->second;
    bool was_remote = e.owner == MacEntry::Owner::Remote;
    e.duplicate = false;
    e.moves.clear();
    spdlog::info("bgp evpn: VNI {} MAC {}: duplicate cleared", vni, mac.str());
    if (e.local()) {
        // Take it over again, above whatever a remote VTEP announced meanwhile.
        if (auto *r = e.best_remote(); r && r->seq >= e.local_seq) e.local_seq = r->seq + 1;
        resolve(mit->second, mac, e);
        if (e.local()) advertise_mac(mit->second, mac, e, false);
        tell_mac(mit->second, mac, &e, was_remote);
    }
    if (!e.local() && e.remote.empty()) mit->second.macs.erase(it);
    return true;
}

// ---------------------------------------------------------------------------------------
// Local routes

PathAttrs EvpnTables::base_attrs(const std::vector<RouteTarget> &targets) const {
    PathAttrs a;
    a.origin = Origin::Igp;
    a.as_path = AsPath{};
    for (auto &rt : targets) a.ext_communities.push_back(ExtCommunity::route_target(rt));
    a.ext_communities.push_back(ExtCommunity::encapsulation(kTunnelVxlan));
    return a;
}

void EvpnTables::install(const EvpnNlri &key, PathAttrs &&attrs, bool withdraw) {
    if (withdraw) {
        rib_.withdraw(kLocalPeer, key);
        return;
    }
    NextHop nh;
    nh.addr = vtep_;
    rib_.update(kLocalPeer, key, rib_.intern(std::move(attrs), nh));
}

void EvpnTables::originate_imet(const MacVrf &m, bool withdraw) {
    EvpnNlri key;
    key.route = EvpnImet{m.rd, 0, vtep_};
    PathAttrs a = base_attrs(m.export_targets);
    a.pmsi_tunnel = PmsiTunnel::ingress_replication(m.vni, vtep_);
    install(key, std::move(a), withdraw);
}

void EvpnTables::originate_prefixes(const IpVrf &v, bool withdraw) {
    for (auto &p : v.cfg.prefixes) {
        EvpnNlri key;
        EvpnIpPrefix r;
        r.rd = v.rd;
        r.prefix = p;
        r.gateway = IpAddr{p.addr.family, {}};
        r.label = v.cfg.l3vni;
        key.route = r;
        PathAttrs a = base_attrs(v.export_targets);
        a.ext_communities.push_back(ExtCommunity::router_mac(v.cfg.router_mac));
        install(key, std::move(a), withdraw);
    }
}

EvpnNlri EvpnTables::mac_route(const MacVrf &m, const MacAddr &mac,
                               const std::optional<IpAddr> &ip) const {
    EvpnMacIp r;
    r.rd = m.rd;
    r.mac = mac;
    r.ip = ip;
    r.label1 = m.vni;
    if (ip && m.l3vni) r.label2 = m.l3vni;
    EvpnNlri n;
    n.route = r;
    return n;
}

void EvpnTables::advertise_mac(const MacVrf &m, const MacAddr &mac, const MacEntry &e,
                               bool withdraw) {
    for (auto &ip : e.local_ips) {
        EvpnNlri key = mac_route(m, mac, ip);
        if (withdraw) {
            install(key, {}, true);
            continue;
        }
        PathAttrs a = base_attrs(m.export_targets);
        if (ip && m.l3vni) {
            for (auto &rt : m.vrf_export_targets)
                if (std::find(m.export_targets.begin(), m.export_targets.end(), rt) ==
                    m.export_targets.end())
                    a.ext_communities.insert(a.ext_communities.end() - 1,
                                             ExtCommunity::route_target(rt));
            a.ext_communities.push_back(ExtCommunity::router_mac(m.router_mac));
        }
        if (e.local_seq || e.local_sticky)
            a.ext_communities.push_back(ExtCommunity::mac_mobility({e.local_sticky, e.local_seq}));
        install(key, std::move(a), false);
    }
}

// ---------------------------------------------------------------------------------------
// IP-VRF Loc-RIB

void EvpnTables::vrf_set(IpVrf &v, const Prefix &p, const EvpnNlri &key,
                         std::optional<VrfCandidate> c) {
    auto it = v.routes.find(p);
    if (it == v.routes.end()) {
        if (!c) return;
        it = v.routes.emplace(p, IpVrf::Entry{}).first;
    }
    IpVrf::Entry &e = it->second;
    std::vector<Path> before;
    std::vector<uint32_t> before_vni;
    for (size_t i = 0; i < e.n_best; ++i) {
        before.push_back(e.cands[i].path);
        before_vni.push_back(e.cands[i].vni);
    }
    const AttrData *release = nullptr;
    EvpnKeyLess less;
    auto old = std::find_if(e.cands.begin(), e.cands.end(), [&](const VrfCandidate &x) {
        return !less(x.key, key) && !less(key, x.key);
    });
    if (old != e.cands.end()) {
        release = old->path.attrs;
        e.cands.erase(old);
    }
    if (c) {
        Rib::ref(c->path.attrs);
        e.cands.push_back(std::move(*c));
    }
    // Best first, then its ECMP siblings (distinct VTEPs), as the global tables do.
    std::stable_sort(
        e.cands.begin(), e.cands.end(),
        [&](const VrfCandidate &x, const VrfCandidate &y) { return rib_.better(x.path, y.path); });
    uint16_t k = e.cands.empty() ? 0 : 1;
    for (size_t i = 1; i < e.cands.size() && k < rib_.options().max_paths; ++i) {
        if (!rib_.multipath_equal(e.cands[i].path, e.cands[0].path)) continue;
        bool dup = false;
        for (size_t j = 0; j < k; ++j)
            dup |= e.cands[j].path.attrs->next_hop.addr == e.cands[i].path.attrs->next_hop.addr;
        if (dup) continue;
        std::rotate(e.cands.begin() + k, e.cands.begin() + long(i), e.cands.begin() + long(i) + 1);
        ++k;
    }
    e.n_best = k;
    std::vector<Path> now;
    std::vector<uint32_t> now_vni;
    for (size_t i = 0; i < k; ++i) {
        now.push_back(e.cands[i].path);
        now_vni.push_back(e.cands[i].vni);
    }
    bool same = before.size() == now.size() && before_vni == now_vni &&
                std::equal(now.begin(), now.end(), before.begin(),
                           [](const Path &x, const Path &y) { return x.same(y); });
    if (!same) {
        RibChange ch{p.addr.is_v4() ? RouteFamily::Ipv4Unicast : RouteFamily::Ipv6Unicast,
                     v.id,
                     &it->first,
                     nullptr,
                     before,
                     now,
                     v.cfg.name,
                     now_vni};
        rib_.notify(ch);
    }
    if (release) rib_.unref(release);
    if (e.cands.empty()) v.routes.erase(it);
}

} // namespace vleaf::bgp
