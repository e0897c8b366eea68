// Configuration reload: the new `bgp:` section is compared with the running one and only
// what differs is acted on. Added peers start, removed peers stop (Cease/Peer
// De-configured), a peer whose session parameters changed restarts (Cease/Other
// Configuration Change), an import policy change asks the peer for its routes again
// (ROUTE-REFRESH), an export policy change re-sends and withdraws what it changes.
// Untouched sessions keep their connection and timers.
#include "control/bgp/speaker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vleaf::bgp {

namespace {

// The settings a live session can take on without a restart, cleared.
PeerConfig session_part(PeerConfig c) {
    c.description.clear();
    c.import_policy = {};
    c.export_policy = {};
    c.next_hop_self = false;
    c.max_prefix = 0;
    c.refresh_stale_time = 0; // a BoRR after the reload uses the new value
    return c;
}

const PeerConfig *find_peer(const std::vector<PeerConfig> &v, const std::string &name) {
    for (auto &p : v)
        if (p.name() == name) return &p;
    return nullptr;
}

} // namespace

Session &Speaker::add_session(const PeerConfig &pc, const IpAddr &remote, bool dynamic) {
    auto s = std::make_unique<Session>(pc, remote, local_params(pc), dynamic);
    RibPeer rp;
    rp.address = remote;
    rp.asn = pc.remote_as;
    rp.ibgp = s->ibgp();
    rp.rr_client = pc.rr_client;
    s->rib_id = rib_.add_peer(rp);
    sessions_.push_back(std::move(s));
    return *sessions_.back();
}

void Speaker::set_listen_md5(const PeerConfig &pc, bool remove) {
    if (listen_fd_ < 0 || pc.password.empty()) return;
    const IpAddr &a = pc.address ? *pc.address : pc.range->addr;
    uint8_t len = pc.address ? uint8_t(a.max_len()) : pc.range->len;
    bool v6 = !IpAddr::parse(cfg_.listen_address)->is_v4();
    if (!set_md5(listen_fd_, a, len, remove ? std::string() : pc.password, v6))
        spdlog::warn("bgp.peers {}: TCP-MD5 key on the listening socket: {}", pc.name(),
                     std::strerror(errno));
}

void Speaker::deconfigure(Session &s, uint8_t cease_subcode) {
    auto now = Clock::now();
    s.removed = true;
    for (auto *c : {s.main.get(), s.other.get()}) {
        if (!c) continue;
        run_actions(*c, c->fsm.error({err::kCease, cease_subcode, {}}, now));
        run_actions(*c, c->fsm.handle(FsmEvent::ManualStop, now)); // no automatic restart
    }
}

void Speaker::reload(const BgpConfig &n) {
    // Refused as a whole, before anything changes.
    auto fixed = [](bool differs, const char *field) {
        if (differs)
            throw BgpConfigError(std::string("bgp.") + field +
                                 ": cannot change while running (restart the speaker)");
    };
    fixed(n.asn != cfg_.asn, "asn");
    fixed(n.router_id != cfg_.router_id, "router_id");
    fixed(n.cluster_id != cfg_.cluster_id, "cluster_id");
    fixed(n.listen_address != cfg_.listen_address, "listen_address");
    fixed(n.listen_port != cfg_.listen_port, "listen_port");
    fixed(n.max_paths != cfg_.max_paths, "max_paths");
    fixed(n.multipath_relax != cfg_.multipath_relax, "multipath_relax");
    fixed(n.always_compare_med != cfg_.always_compare_med, "always_compare_med");

    BgpConfig old = std::move(cfg_);
    cfg_ = n;
    auto now = Clock::now();
    unsigned added = 0, removed = 0, reset = 0, refreshed = 0, reexported = 0;
    auto sessions_of = [&](const PeerConfig &pc) {
        std::vector<Session *> out;
        for (auto &s : sessions_)
            if (!s->removed && (pc.address ? !s->dynamic && s->remote == *pc.address
                                           : s->dynamic && s->cfg.range == pc.range))
                out.push_back(s.get());
        return out;
    };
    auto start = [&](const PeerConfig &pc) {
        set_listen_md5(pc, false);
        if (!pc.address) return;
        Session &s = add_session(pc, *pc.address, false);
        run_actions(*s.main, s.main->fsm.handle(FsmEvent::ManualStart, now));
    };

    for (auto &op : old.peers) {
        auto *np = find_peer(cfg_.peers, op.name());
        if (np && *np == op) continue;
        if (!np) {
            spdlog::info("bgp: reload: neighbor {} removed", op.name());
            set_listen_md5(op, true);
            for (auto *s : sessions_of(op)) deconfigure(*s, err::kPeerDeconfigured);
            ++removed;
            continue;
        }
        if (session_part(*np) != session_part(op)) {
            spdlog::info("bgp: reload: neighbor {}: session settings changed: restarting it",
                         op.name());
            set_listen_md5(op, true);
            for (auto *s : sessions_of(op)) deconfigure(*s, err::kOtherConfigChange);
            start(*np);
            ++reset;
            continue;
        }
        for (auto *s : sessions_of(op)) {
            PeerConfig prev = s->cfg;
            s->cfg = *np;
            if (s->dynamic) s->cfg.address = s->remote;
            if (!s->up) continue;
            if (prev.import_policy != np->import_policy) {
                // Nothing unfiltered is kept: the peer has to send its routes again.
                if (request_refresh(s->remote)) {
                    ++refreshed;
                } else {
                    run_actions(*s->main, s->main->fsm.error(
                                              {err::kCease, err::kOtherConfigChange, {}}, now));
                    ++reset;
                    continue;
                }
            }
            if (prev.export_policy != np->export_policy ||
                prev.next_hop_self != np->next_hop_self) {
                queue_full_table(*s, s->neg.families, &prev.export_policy);
                ++reexported;
            }
            if (prev.max_prefix != np->max_prefix) check_max_prefix(*s);
        }
    }
    for (auto &np : cfg_.peers)
        if (!find_peer(old.peers, np.name())) {
            spdlog::info("bgp: reload: neighbor {} added", np.name());
            start(np);
            ++added;
        }

    // Our announcements: withdraw the ones gone, (re)install the rest; the RIB ignores
    // an unchanged one.
    for (auto &a : old.announce) {
        bool kept = std::any_of(cfg_.announce.begin(), cfg_.announce.end(),
                                [&](const Announce &x) { return x.prefix == a.prefix; });
        if (kept) continue;
        if (auto it = api_announce_.find(a.prefix); it != api_announce_.end())
            install(it->second);
        else
            rib_.withdraw(kLocalPeer,
                          a.prefix.addr.is_v4() ? RouteFamily::Ipv4Unicast
                                                : RouteFamily::Ipv6Unicast,
                          a.prefix, 0);
    }
    for (auto &a : cfg_.announce)
        if (!api_announce_.count(a.prefix)) install(a);
    evpn_.configure(cfg_);
    spdlog::info("bgp: configuration reloaded: {} neighbors added, {} removed, {} restarted, {} "
                 "asked for a route refresh, {} re-exported",
                 added, removed, reset, refreshed, reexported);
}

} // namespace vleaf::bgp
