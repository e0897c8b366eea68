#include "control/neigh/resolver.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace vleaf::neigh {

namespace {

const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

} // namespace

const char *state_name(State s) {
    switch (s) {
    case State::Incomplete:
        return "incomplete";
    case State::Reachable:
        return "reachable";
    case State::Stale:
        return "stale";
    case State::Probe:
        return "probe";
    case State::Failed:
        return "failed";
    }
    return "?";
}

Resolver::Resolver(const config::Neighbors &timers, Callbacks cb)
    : timers_(timers), cb_(std::move(cb)) {
    if (timers_.retries == 0) throw std::invalid_argument("neighbors.retries must be at least 1");
    if (timers_.retrans_ms == 0)
        throw std::invalid_argument("neighbors.retrans_ms must be at least 1");
    if (!cb_.send || !cb_.changed || !cb_.release)
        throw std::invalid_argument("neigh::Resolver needs send, changed and release callbacks");
}

void Resolver::add_interface(const NeighIf &nif) {
    Iface &itf = ifaces_[nif.id];
    itf.cfg = nif;
    itf.ll = link_local(nif.mac);
    for (auto it = neigh_.lower_bound({nif.id, IpAddr{}});
         it != neigh_.end() && it->first.first == nif.id;) {
        if (on_subnet(itf, it->first.second)) {
            ++it;
            continue;
        }
        drop_entry(nif.id, it->first.second, it->second);
        it = neigh_.erase(it);
    }
    flush();
}

void Resolver::remove_interface(uint16_t ifid) {
    ifaces_.erase(ifid);
    for (auto it = neigh_.lower_bound({ifid, IpAddr{}});
         it != neigh_.end() && it->first.first == ifid;) {
        drop_entry(ifid, it->first.second, it->second);
        it = neigh_.erase(it);
    }
    flush();
}

Verdict Resolver::on_frame(uint16_t ifid, std::span<const uint8_t> frame, uint64_t now_ms) {
    now_ = now_ms;
    const Iface *itf = iface(ifid);
    if (!itf) {
        counters_.unknown_interface++;
        return Verdict::Invalid;
    }
    Parsed p = parse_frame(frame);
    Verdict v = Verdict::Kernel;
    if (auto *bad = std::get_if<Bad>(&p)) {
        counters_.bad[static_cast<size_t>(*bad)]++;
        spdlog::debug("neigh: interface {}: dropped {}-byte frame: {}", ifid, frame.size(),
                      bad_names[static_cast<size_t>(*bad)]);
        return Verdict::Invalid;
    }
    if (auto *arp = std::get_if<ArpMsg>(&p)) {
        v = on_arp(*itf, *arp, now_ms);
    } else if (auto *nd = std::get_if<NdMsg>(&p)) {
        v = on_nd(*itf, *nd, now_ms);
    } else {
        counters_.not_neigh++;
    }
    flush();
    return v;
}

Verdict Resolver::on_arp(const Iface &itf, const ArpMsg &m, uint64_t now) {
    if (!is_multicast(m.eth_dst) && m.eth_dst != itf.cfg.mac) {
        counters_.not_for_us++;
        return Verdict::Consumed;
    }
    if (m.sha == itf.cfg.mac) {
        counters_.own_frames++;
        return Verdict::Consumed;
    }
    if (is_ours(itf, m.spa)) {
        counters_.address_conflicts++;
        spdlog::debug("neigh: interface {}: {} claims our address {}", itf.cfg.id, m.sha.str(),
                      m.spa.str());
        return Verdict::Consumed;
    }
    bool for_us = is_ours(itf, m.tpa);
    bool learned = false;
    // RFC 826 merge: an ARP packet refreshes the sender's entry; a new entry only when the
    // packet is addressed to us. A sender of 0.0.0.0 is an RFC 5227 probe: nothing to learn.
    if (!m.spa.is_unspecified()) {
        if (on_subnet(itf, m.spa))
            learned = learn(itf, m.spa, m.sha, for_us, true, true, now);
        else if (for_us)
            counters_.off_subnet_ignored++;
    }
    if (m.op == kArpReply) {
        if (!learned) counters_.unsolicited_ignored++;
        return Verdict::Kernel; // the kernel resolves its own sockets' neighbors too
    }
    if (!for_us) {
        counters_.requests_not_ours++;
        // Gratuitous ARP keeps the kernel's cache fresh as well.
        return m.spa == m.tpa ? Verdict::Kernel : Verdict::Consumed;
    }
    out_.emplace_back(
        Send{itf.cfg.id, build_arp(kArpReply, m.sha, itf.cfg.mac, m.tpa, m.sha, m.spa)});
    counters_.arp_replies_sent++;
    return Verdict::Consumed;
}

Verdict Resolver::on_nd(const Iface &itf, const NdMsg &m, uint64_t now) {
    if (!is_multicast(m.eth_dst) && m.eth_dst != itf.cfg.mac) {
        counters_.not_for_us++;
        return Verdict::Consumed;
    }
    if (m.eth_src == itf.cfg.mac) {
        counters_.own_frames++;
        return Verdict::Consumed;
    }
    if (m.type == NdType::NeighborAdvert) {
        if (is_ours(itf, m.target)) {
            // Someone defends or claims our address; the kernel's DAD wants to know.
            counters_.address_conflicts++;
            return Verdict::Kernel;
        }
        bool learned =
            on_subnet(itf, m.target) &&
            learn(itf, m.target, m.ll, false, m.flags & kNaSolicited, m.flags & kNaOverride, now);
        if (!learned) counters_.unsolicited_ignored++;
        return Verdict::Kernel;
    }
    if (m.type != NdType::NeighborSolicit) return Verdict::Kernel; // RS, RA, redirect

    bool for_us = is_ours(itf, m.target);
    bool dad = m.src.is_unspecified();
    if (!dad && is_ours(itf, m.src)) {
        counters_.address_conflicts++;
        return Verdict::Consumed;
    }
    // RFC 4861 7.2.3: the solicitation's source link-layer option creates or updates the
    // sender's entry as Stale; it proves nothing about reachability towards it.
    if (!dad && m.ll) {
        if (on_subnet(itf, m.src))
            learn(itf, m.src, m.ll, for_us, false, true, now);
        else if (for_us)
            counters_.off_subnet_ignored++;
    }
    if (!for_us) {
        counters_.requests_not_ours++;
        return Verdict::Consumed;
    }
    // R: vleaf forwards; a host that saw R=0 would drop us from its default routers.
    if (dad) {
        // RFC 4861 7.2.4: the prober has no address yet, so defend to all-nodes.
        IpAddr group = all_nodes();
        out_.emplace_back(Send{itf.cfg.id, build_na(itf.cfg.mac, multicast_mac(group), m.target,
                                                    group, m.target, kNaRouter | kNaOverride)});
    } else {
        MacAddr to = m.ll.value_or(m.eth_src);
        out_.emplace_back(Send{itf.cfg.id, build_na(itf.cfg.mac, to, m.target, m.src, m.target,
                                                    kNaRouter | kNaSolicited | kNaOverride)});
    }
    counters_.na_sent++;
    return Verdict::Consumed;
}

bool Resolver::learn(const Iface &itf, const IpAddr &ip, std::optional<MacAddr> mac, bool create,
                     bool confirmed, bool override_mac, uint64_t now) {
    auto it = neigh_.find({itf.cfg.id, ip});
    if (it == neigh_.end()) {
        if (!create || !mac) return false;
        it = neigh_.try_emplace({itf.cfg.id, ip}).first;
    }
    Neighbor &n = it->second;
    if (!mac) {
        if (!n.mac) return false; // RFC 4861 7.2.5: an NA without TLLA cannot resolve
        mac = n.mac;
    }
    State next = confirmed ? State::Reachable : State::Stale;
    if (!n.mac) {
        n.mac = mac;
        counters_.learned++;
        out_.emplace_back(Change{itf.cfg.id, ip, mac});
        enter(n, next, now);
        release_all(n, true);
    } else if (*mac != *n.mac) {
        if (!override_mac) {
            // RFC 4861 7.2.5: keep the MAC we know but stop trusting it.
            if (n.state == State::Reachable) enter(n, State::Stale, now);
            return true;
        }
        n.mac = mac;
        counters_.mac_changed++;
        out_.emplace_back(Change{itf.cfg.id, ip, mac});
        enter(n, next, now);
    } else if (confirmed) {
        enter(n, State::Reachable, now);
    }
    return true;
}

void Resolver::enter(Neighbor &n, State s, uint64_t now) const {
    n.state = s;
    n.since_ms = now;
    n.probes = 0;
    switch (s) {
    case State::Reachable:
        n.next_ms = now + timers_.reachable_ms;
        break;
    case State::Failed:
        n.next_ms = now + uint64_t{timers_.retries} * timers_.retrans_ms;
        break;
    default:
        n.next_ms = now;
        break;
    }
}

void Resolver::resolve(uint16_t ifid, const IpAddr &target, uint64_t now_ms, void *held) {
    now_ = now_ms;
    auto drop_held = [&] {
        if (!held) return;
        counters_.held_dropped++;
        out_.emplace_back(Release{held, false});
    };
    const Iface *itf = iface(ifid);
    if (!itf) {
        counters_.unknown_interface++;
    } else if (is_multicast(target) || target.is_unspecified() || is_ours(*itf, target) ||
               is_subnet_broadcast(*itf, target)) {
        counters_.resolve_invalid_target++;
    } else if (!on_subnet(*itf, target)) {
        counters_.resolve_off_subnet++;
    } else {
        auto [it, inserted] = neigh_.try_emplace({ifid, target});
        Neighbor &n = it->second;
        if (inserted) {
            enter(n, State::Incomplete, now_ms);
            send_request(*itf, target, std::nullopt);
            n.probes = 1;
            n.next_ms = now_ms + timers_.retrans_ms;
        }
        if (held && n.mac) {
            counters_.held_released++;
            out_.emplace_back(Release{held, true});
        } else if (held && n.state == State::Failed) {
            drop_held();
        } else if (held) {
            counters_.held++;
            n.held.push_back(held);
            // Drop the oldest, as Linux does: the newest is likelier to still matter.
            if (n.held.size() > timers_.hold_packets) {
                counters_.held_dropped++;
                out_.emplace_back(Release{n.held.front(), false});
                n.held.pop_front();
            }
        }
        flush();
        return;
    }
    drop_held();
    flush();
}

void Resolver::tick(uint64_t now_ms) {
    now_ = now_ms;
    for (auto it = neigh_.begin(); it != neigh_.end();) {
        const auto &[ifid, ip] = it->first;
        Neighbor &n = it->second;
        if (now_ms < n.next_ms) {
            ++it;
            continue;
        }
        const Iface &itf = ifaces_.at(ifid);
        switch (n.state) {
        case State::Incomplete:
            if (n.probes >= timers_.retries) {
                counters_.failed++;
                release_all(n, false);
                out_.emplace_back(Change{ifid, ip, std::nullopt});
                enter(n, State::Failed, now_ms);
                break;
            }
            send_request(itf, ip, std::nullopt);
            n.probes++;
            n.next_ms = now_ms + timers_.retrans_ms;
            break;
        case State::Reachable:
        case State::Stale:
            enter(n, State::Probe, now_ms);
            [[fallthrough]];
        case State::Probe:
            if (n.probes >= timers_.retries) {
                counters_.expired++;
                drop_entry(ifid, ip, n);
                it = neigh_.erase(it);
                continue;
            }
            send_request(itf, ip, n.mac);
            n.probes++;
            n.next_ms = now_ms + timers_.retrans_ms;
            break;
        case State::Failed:
            it = neigh_.erase(it);
            continue;
        }
        ++it;
    }
    flush();
}

std::vector<Entry> Resolver::entries() const {
    std::vector<Entry> out;
    out.reserve(neigh_.size());
    for (const auto &[key, n] : neigh_)
        out.push_back(Entry{key.first, key.second, n.mac, n.state,
                            now_ > n.since_ms ? now_ - n.since_ms : 0, n.probes,
                            static_cast<uint32_t>(n.held.size())});
    return out;
}

void Resolver::send_request(const Iface &itf, const IpAddr &target,
                            const std::optional<MacAddr> &unicast) {
    IpAddr src = source_for(itf, target).value(); // entries exist only on our subnets
    if (target.is_v4()) {
        out_.emplace_back(Send{itf.cfg.id, build_arp(kArpRequest, unicast.value_or(kBroadcast),
                                                     itf.cfg.mac, src, MacAddr{}, target)});
        counters_.arp_requests_sent++;
        return;
    }
    IpAddr dst = unicast ? target : solicited_node(target);
    MacAddr eth_dst = unicast ? *unicast : multicast_mac(dst);
    out_.emplace_back(Send{itf.cfg.id, build_ns(itf.cfg.mac, eth_dst, src, dst, target)});
    counters_.ns_sent++;
}

void Resolver::drop_entry(uint16_t ifid, const IpAddr &ip, Neighbor &n) {
    release_all(n, false);
    if (n.state != State::Failed) out_.emplace_back(Change{ifid, ip, std::nullopt});
}

void Resolver::release_all(Neighbor &n, bool resolved) {
    (resolved ? counters_.held_released : counters_.held_dropped) += n.held.size();
    for (void *h : n.held) out_.emplace_back(Release{h, resolved});
    n.held.clear();
}

void Resolver::flush() {
    std::vector<Event> events;
    events.swap(out_);
    for (auto &e : events) {
        if (auto *s = std::get_if<Send>(&e))
            cb_.send(s->ifid, std::move(s->frame));
        else if (auto *c = std::get_if<Change>(&e))
            cb_.changed(c->ifid, c->ip, c->mac);
        else if (auto *r = std::get_if<Release>(&e))
            cb_.release(r->held, r->resolved);
    }
}

bool Resolver::is_ours(const Iface &itf, const IpAddr &ip) const {
    if (!ip.is_v4() && ip == itf.ll) return true;
    for (const auto &p : ip.is_v4() ? itf.cfg.ipv4 : itf.cfg.ipv6)
        if (p.addr == ip) return true;
    return false;
}

bool Resolver::is_subnet_broadcast(const Iface &itf, const IpAddr &ip) const {
    if (!ip.is_v4()) return false;
    for (const auto &p : itf.cfg.ipv4) {
        // /31 and /32 have no broadcast address (RFC 3021).
        if (p.len >= 31 || !p.contains(ip)) continue;
        uint32_t host_mask = ~uint32_t{0} >> p.len;
        if ((ip.v4_host() & host_mask) == host_mask) return true;
    }
    return false;
}

bool Resolver::on_subnet(const Iface &itf, const IpAddr &ip) const {
    return source_for(itf, ip).has_value();
}

std::optional<IpAddr> Resolver::source_for(const Iface &itf, const IpAddr &target) const {
    for (const auto &p : target.is_v4() ? itf.cfg.ipv4 : itf.cfg.ipv6)
        if (p.contains(target)) return p.addr;
    if (is_link_local(target)) return itf.ll;
    return std::nullopt;
}

const Resolver::Iface *Resolver::iface(uint16_t id) const {
    auto it = ifaces_.find(id);
    return it == ifaces_.end() ? nullptr : &it->second;
}

} // namespace vleaf::neigh
