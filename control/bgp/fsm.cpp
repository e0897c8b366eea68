#include "control/bgp/fsm.hpp"

#include <algorithm>

namespace vleaf::bgp {

// RFC 4271 8.2.2: a large hold time while waiting for the peer's OPEN.
static constexpr Seconds kOpenHold{240};
// RFC 6608 FSM error subcodes: the state the unexpected message arrived in.
static constexpr uint8_t kFsmInOpenSent = 1, kFsmInOpenConfirm = 2, kFsmInEstablished = 3;

const char *state_name(FsmState s) {
    switch (s) {
    case FsmState::Idle:
        return "Idle";
    case FsmState::Connect:
        return "Connect";
    case FsmState::Active:
        return "Active";
    case FsmState::OpenSent:
        return "OpenSent";
    case FsmState::OpenConfirm:
        return "OpenConfirm";
    case FsmState::Established:
        return "Established";
    }
    return "?";
}

Open local_open(const LocalParams &local) {
    Capabilities caps;
    for (unsigned i = 0; i < kRouteFamilies; ++i) {
        auto f = RouteFamily(i);
        if (!(local.families & family_bit(f))) continue;
        caps.multiprotocol.push_back(to_afi_safi(f));
        caps.add_path.push_back({to_afi_safi(f), AddPathCap::Receive});
    }
    if (local.families & family_bit(RouteFamily::Ipv4Unicast))
        caps.extended_nexthop.push_back(
            {uint16_t(Afi::Ipv4), uint16_t(Safi::Unicast), uint16_t(Afi::Ipv6)});
    caps.route_refresh = true;
    caps.enhanced_route_refresh = true;
    if (local.graceful_restart) {
        GracefulRestartCap gr;
        gr.restart_time = local.restart_time;
        gr.restarting = local.restarting;
        for (auto &as : caps.multiprotocol) gr.families.push_back({as, local.forwarding_preserved});
        caps.graceful_restart = gr;
    }
    return make_open(local.asn, local.hold, local.bgp_id, std::move(caps));
}

std::optional<Notification> check_open(const LocalParams &local, const Open &remote,
                                       Negotiated &out) {
    if (remote.asn() != local.remote_as) {
        Notification n{err::kOpen, err::kBadPeerAs, {}};
        // RFC 4271 6.2: the data is the 2-octet My AS field.
        n.data = {uint8_t(remote.my_as >> 8), uint8_t(remote.my_as)};
        return n;
    }
    // RFC 6286: only the identifier of an internal peer has to differ from ours.
    if (local.asn == remote.asn() && remote.bgp_id == local.bgp_id)
        return Notification{err::kOpen, err::kBadBgpId, {}};
    if (remote.hold_time == 1 || remote.hold_time == 2)
        return Notification{err::kOpen, err::kUnacceptableHoldTime, {}};

    Negotiated n;
    bool ebgp = local.asn != local.remote_as;
    n.ctx = negotiate(local_open(local), remote, ebgp);
    n.hold = std::min(local.hold, remote.hold_time);
    if (n.hold) {
        uint16_t ka = local.keepalive ? local.keepalive : n.hold / 3;
        n.keepalive = std::max<uint16_t>(1, std::min<uint16_t>(ka, n.hold / 3));
    }
    for (unsigned i = 0; i < kRouteFamilies; ++i)
        if (n.ctx.families[i]) n.families |= family_bit(RouteFamily(i));
    n.route_refresh = remote.caps.route_refresh || remote.caps.enhanced_route_refresh;
    n.enhanced_refresh = remote.caps.enhanced_route_refresh;
    if (remote.caps.graceful_restart && local.graceful_restart) {
        auto &gr = *remote.caps.graceful_restart;
        n.peer_gr = true;
        n.peer_restarting = gr.restarting;
        n.peer_restart_time = gr.restart_time;
        for (auto &f : gr.families)
            if (auto rf = to_route_family(f.family)) n.peer_gr_families |= family_bit(*rf);
        n.peer_gr_families &= n.families;
    }
    n.remote_as = remote.asn();
    n.remote_id = remote.bgp_id;
    out = n;
    return std::nullopt;
}

void Fsm::restart_hold(TimePoint now) {
    if (neg_.hold) hold_ = now + Seconds(neg_.hold);
}

void Fsm::enter_idle(FsmActions &out, TimePoint now, bool notify_down) {
    if (notify_down && (state_ == FsmState::Established || state_ == FsmState::OpenConfirm))
        out.push_back({FsmAction::Down, {}});
    state_ = FsmState::Idle;
    hold_.reset();
    keepalive_.reset();
    connect_retry_.reset();
    // Automatic restart (RFC 4271 8.1.1 event 3) after the ConnectRetry time, so that a
    // peer failing at once is not hammered.
    if (started_) connect_retry_ = now + Seconds(local_.connect_retry);
}

void Fsm::drop(FsmActions &out, TimePoint now, Notification e) {
    if (state_ >= FsmState::OpenSent) out.push_back({FsmAction::SendNotification, std::move(e)});
    out.push_back({FsmAction::Disconnect, {}});
    enter_idle(out, now, true);
}

void Fsm::set_passive_open(TimePoint now) {
    started_ = true;
    state_ = FsmState::Active;
    connect_retry_ = now + Seconds(local_.connect_retry);
}

FsmActions Fsm::handle(FsmEvent ev, TimePoint now) {
    FsmActions out;
    switch (ev) {
    case FsmEvent::ManualStart:
        if (state_ != FsmState::Idle) break;
        started_ = true;
        if (local_.passive) {
            state_ = FsmState::Active;
        } else {
            connect_retry_ = now + Seconds(local_.connect_retry);
            state_ = FsmState::Connect;
            out.push_back({FsmAction::Connect, {}});
        }
        break;
    case FsmEvent::ManualStop:
        started_ = false;
        if (state_ == FsmState::Idle) {
            connect_retry_.reset();
            break;
        }
        drop(out, now, {err::kCease, err::kAdminShutdown, {}});
        break;
    case FsmEvent::TcpConnected:
        if (state_ != FsmState::Connect && state_ != FsmState::Active) break;
        connect_retry_.reset();
        out.push_back({FsmAction::SendOpen, {}});
        hold_ = now + kOpenHold;
        state_ = FsmState::OpenSent;
        break;
    case FsmEvent::TcpFailed:
        if (state_ == FsmState::Idle) break;
        out.push_back({FsmAction::Disconnect, {}});
        if (state_ == FsmState::Connect || state_ == FsmState::OpenSent) {
            // RFC 4271 8.2.2: back to Active, retry after ConnectRetry.
            hold_.reset();
            state_ = FsmState::Active;
            connect_retry_ = now + Seconds(local_.connect_retry);
        } else if (state_ == FsmState::Active) {
            connect_retry_ = now + Seconds(local_.connect_retry);
        } else {
            enter_idle(out, now, true);
        }
        break;
    case FsmEvent::OpenReceived:
        break; // carries data: see open_received
    case FsmEvent::KeepaliveReceived:
    case FsmEvent::UpdateReceived:
        if (state_ == FsmState::OpenSent) {
            drop(out, now, {err::kFsm, kFsmInOpenSent, {}});
        } else if (state_ == FsmState::OpenConfirm) {
            if (ev == FsmEvent::UpdateReceived) {
                drop(out, now, {err::kFsm, kFsmInOpenConfirm, {}});
                break;
            }
            state_ = FsmState::Established;
            restart_hold(now);
            out.push_back({FsmAction::Established, {}});
        } else if (state_ == FsmState::Established) {
            restart_hold(now);
        }
        break;
    case FsmEvent::NotificationReceived:
        if (state_ == FsmState::Idle) break;
        out.push_back({FsmAction::Disconnect, {}});
        enter_idle(out, now, true);
        break;
    }
    return out;
}

FsmActions Fsm::open_received(const Open &open, TimePoint now) {
    FsmActions out;
    if (state_ == FsmState::OpenConfirm) {
        drop(out, now, {err::kFsm, kFsmInOpenConfirm, {}});
        return out;
    }
    if (state_ == FsmState::Established) {
        drop(out, now, {err::kFsm, kFsmInEstablished, {}});
        return out;
    }
    if (state_ != FsmState::OpenSent) return out;
    Negotiated n;
    if (auto e = check_open(local_, open, n)) {
        drop(out, now, std::move(*e));
        return out;
    }
    neg_ = n;
    out.push_back({FsmAction::SendKeepalive, {}});
    state_ = FsmState::OpenConfirm;
    hold_.reset();
    keepalive_.reset();
    restart_hold(now);
    if (neg_.keepalive) keepalive_ = now + Seconds(neg_.keepalive);
    return out;
}

FsmActions Fsm::error(const Notification &e, TimePoint now) {
    FsmActions out;
    if (state_ != FsmState::Idle) drop(out, now, e);
    return out;
}

FsmActions Fsm::expire(TimePoint now) {
    FsmActions out;
    if (hold_ && *hold_ <= now) {
        hold_.reset();
        drop(out, now, {err::kHoldTimerExpired, 0, {}});
        return out;
    }
    if (keepalive_ && *keepalive_ <= now) {
        out.push_back({FsmAction::SendKeepalive, {}});
        keepalive_ = now + Seconds(neg_.keepalive);
    }
    if (connect_retry_ && *connect_retry_ <= now) {
        connect_retry_ = now + Seconds(local_.connect_retry);
        if (state_ == FsmState::Idle) {
            connect_retry_.reset();
            auto more = handle(FsmEvent::ManualStart, now);
            out.insert(out.end(), more.begin(), more.end());
        } else if (state_ == FsmState::Connect) {
            out.push_back({FsmAction::Disconnect, {}});
            out.push_back({FsmAction::Connect, {}});
        } else if (state_ == FsmState::Active && !local_.passive) {
            state_ = FsmState::Connect;
            out.push_back({FsmAction::Connect, {}});
        } else {
            connect_retry_.reset();
        }
    }
    return out;
}

std::optional<TimePoint> Fsm::next_deadline() const {
    std::optional<TimePoint> t;
    for (auto &d : {hold_, keepalive_, connect_retry_})
        if (d && (!t || *d < *t)) t = d;
    return t;
}

} // namespace vleaf::bgp
