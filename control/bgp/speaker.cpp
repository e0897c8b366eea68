#include "control/bgp/speaker.hpp"

#include "control/bgp/policy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vleaf::bgp {

namespace {

constexpr size_t kReadChunk = size_t{64} * 1024;
// Bytes read from one connection per event, so that one busy peer cannot starve the
// others (level-triggered epoll brings us back).
constexpr size_t kReadBudget = 1 << 20;

std::string errstr() {
    return std::strerror(errno);
}

} // namespace

Speaker::Speaker(const BgpConfig &cfg)
    : cfg_(cfg), rib_(RibOptions{cfg.asn, cfg.router_id.v4_host(), cfg.cluster_id.value_or(0),
                                 cfg.max_paths, cfg.multipath_relax, cfg.always_compare_med}) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::runtime_error("bgp: epoll_create1: " + errstr());
    rib_.on_change([this](const RibChange &ch) { on_rib_change(ch); });
    rib_.on_change([this](const RibChange &ch) { evpn_.on_rib_change(ch); });
    for (auto &pc : cfg_.peers)
        if (pc.address) add_session(pc, *pc.address, false); // ranges: made on accept
}

Speaker::~Speaker() {
    for (auto &s : sessions_) {
        for (auto *c : {s->main.get(), s->other.get()})
            if (c && c->fd >= 0) close(c->fd);
        clear_out(*s);
    }
    if (listen_fd_ >= 0) close(listen_fd_);
    if (epfd_ >= 0) close(epfd_);
}

LocalParams Speaker::local_params(const PeerConfig &pc) const {
    LocalParams lp;
    lp.asn = pc.local_as.value_or(cfg_.asn);
    lp.bgp_id = cfg_.router_id.v4_host();
    lp.remote_as = pc.remote_as;
    lp.hold = pc.timers.hold;
    lp.keepalive = pc.timers.keepalive;
    lp.connect_retry = pc.timers.connect_retry;
    for (auto f : pc.families) lp.families |= family_bit(f);
    lp.graceful_restart = pc.graceful_restart;
    lp.restart_time = pc.restart_time;
    lp.passive = pc.passive;
    lp.restarting = restarting_ && rib_.deferring();
    lp.forwarding_preserved = restarting_ && forwarding_preserved_;
    return lp;
}

void Speaker::set_restarting(bool forwarding_preserved) {
    restarting_ = true;
    forwarding_preserved_ = forwarding_preserved;
    rib_.defer();
    for (auto &s : sessions_) s->local = local_params(s->cfg);
}

void Speaker::check_deferral() {
    bool any = false;
    for (auto &s : sessions_) {
        if (!s->up || !s->neg.peer_gr || s->removed) continue;
        if ((s->eor_in & s->neg.families) != s->neg.families) return;
        any = true;
    }
    if (any) end_deferral("End-of-RIB from every graceful-restart peer");
}

void Speaker::end_deferral(const char *why) {
    spdlog::info("bgp: graceful restart: route selection resumes ({}); sending our routes", why);
    defer_deadline_.reset();
    deferral_ended_ = why;
    rib_.end_deferral(); // every best path reaches the FIB and the Adj-RIBs-Out now
    for (auto &s : sessions_) {
        s->local.restarting = false;
        if (s->up) s->out.eor = s->neg.families;
    }
}

void Speaker::watch(int fd, Watch *w, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = w;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0)
        throw std::runtime_error("bgp: epoll_ctl: " + errstr());
}

void Speaker::set_interest(Conn &c) {
    if (c.fd < 0) return;
    bool write = c.connecting || c.unsent() > 0;
    // Level-triggered: a connection left unread must leave the interest set, or every
    // epoll_wait would return at once.
    bool read = !(reads_paused_ && c.session.up && !c.connecting);
    if (write == c.want_write && read == c.want_read) return;
    epoll_event ev{};
    ev.events = (read ? uint32_t(EPOLLIN) : 0) | (write ? uint32_t(EPOLLOUT) : 0);
    ev.data.ptr = &c.watch;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_write = write;
    c.want_read = read;
}

void Speaker::set_interest_all() {
    for (auto &s : sessions_)
        for (auto *c : {s->main.get(), s->other.get()})
            if (c) set_interest(*c);
}

void Speaker::pause_reads(Clock::duration d) {
    auto now = Clock::now();
    if (!reads_paused_) {
        reads_paused_ = true;
        paused_since_ = now;
        ++counters_.read_pauses;
        set_interest_all();
    } else if (now - paused_since_ >= kMaxReadPause) {
        return; // the pause lapses at paused_until_: a round of reads is due
    }
    paused_until_ = now + d;
}

void Speaker::add_fd(int fd, std::function<void()> on_readable) {
    auto w = std::make_unique<Watch>();
    w->on_event = [fn = std::move(on_readable)](uint32_t) { fn(); };
    watch(fd, w.get(), EPOLLIN);
    extra_watches_.push_back(std::move(w));
}

void Speaker::start() {
    listen();
    start_peers();
}

void Speaker::listen() {
    if (!cfg_.listen_address.empty()) {
        auto addr = *IpAddr::parse(cfg_.listen_address);
        listen_fd_ = open_listen_socket(addr, cfg_.listen_port);
        if (listen_fd_ < 0)
            throw std::runtime_error("bgp: cannot listen on [" + cfg_.listen_address +
                                     "]:" + std::to_string(cfg_.listen_port) + ": " + errstr());
        sockaddr_storage ss;
        socklen_t len = sizeof ss;
        getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&ss), &len);
        listen_port_ = ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
        // RFC 2385: the listening socket needs every peer's key before its SYN arrives.
        for (auto &pc : cfg_.peers) {
            if (pc.password.empty()) continue;
            const IpAddr &a = pc.address ? *pc.address : pc.range->addr;
            uint8_t len = pc.address ? uint8_t(a.max_len()) : pc.range->len;
            if (!set_md5(listen_fd_, a, len, pc.password, !addr.is_v4()))
                throw std::runtime_error("bgp.peers " + pc.name() + ": TCP-MD5 key: " + errstr());
        }
        // GTSM: the SYN-ACK leaves from the listening socket, before accept(); a peer
        // with IP_MINTTL 254 drops it unless it too has TTL 255.
        if (std::any_of(cfg_.peers.begin(), cfg_.peers.end(),
                        [](const PeerConfig &p) { return p.ttl_security; })) {
            int ttl = 255;
            bool ok = setsockopt(listen_fd_, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0;
            if (!addr.is_v4())
                ok &=
                    setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) == 0;
            if (!ok) throw std::runtime_error("bgp: TTL 255 on the listening socket: " + errstr());
        }
        listen_watch_.on_event = [this](uint32_t) { on_accept(); };
        watch(listen_fd_, &listen_watch_, EPOLLIN);
        spdlog::info("bgp: listening on [{}]:{}", cfg_.listen_address, listen_port_);
    }
}

void Speaker::start_peers() {
    if (rib_.deferring()) defer_deadline_ = Clock::now() + Seconds(cfg_.select_defer_time);
    originate();
    auto now = Clock::now();
    for (auto &s : sessions_)
        run_actions(*s->main, s->main->fsm.handle(FsmEvent::ManualStart, now));
}

void Speaker::originate() {
    for (auto &a : cfg_.announce) install(a);
    evpn_.configure(cfg_);
}

void Speaker::install(const Announce &a) {
    PathAttrs at;
    at.origin = Origin::Igp;
    at.as_path = AsPath{};
    at.local_pref = a.local_pref;
    at.med = a.med;
    at.communities = a.communities;
    NextHop nh;
    nh.addr.family = a.prefix.addr.family;
    if (a.next_hop) nh.addr = *a.next_hop;
    RouteFamily f = a.prefix.addr.is_v4() ? RouteFamily::Ipv4Unicast : RouteFamily::Ipv6Unicast;
    rib_.update(kLocalPeer, f, a.prefix, 0, rib_.intern(std::move(at), nh));
}

void Speaker::originate_prefix(const Announce &a) {
    api_announce_[a.prefix] = a;
    install(a);
}

bool Speaker::withdraw_prefix(const Prefix &p) {
    if (!api_announce_.erase(p)) return false;
    auto conf = std::find_if(cfg_.announce.begin(), cfg_.announce.end(),
                             [&](const Announce &a) { return a.prefix == p; });
    if (conf != cfg_.announce.end())
        install(*conf); // the configured announcement of the same prefix stays
    else
        rib_.withdraw(kLocalPeer,
                      p.addr.is_v4() ? RouteFamily::Ipv4Unicast : RouteFamily::Ipv6Unicast, p, 0);
    return true;
}

MacResult Speaker::originate_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip,
                                    bool sticky) {
    return evpn_.originate_mac_ip(vni, mac, ip, sticky);
}

bool Speaker::withdraw_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip) {
    return evpn_.withdraw_mac_ip(vni, mac, ip);
}

bool Speaker::clear_evpn_duplicate(uint32_t vni, const MacAddr &mac) {
    return evpn_.clear_duplicate(vni, mac);
}

Session *Speaker::find_session(const IpAddr &a) {
    for (auto &s : sessions_)
        if (s->remote == a && !s->removed) return s.get();
    return nullptr;
}

void Speaker::on_accept() {
    for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                spdlog::warn("bgp: accept: {}", errstr());
            return;
        }
        IpAddr local, remote;
        uint16_t lport, rport;
        if (!socket_addresses(fd, local, lport, remote, rport)) {
            close(fd);
            continue;
        }
        Session *s = find_session(remote);
        if (!s) {
            auto pc = std::find_if(cfg_.peers.begin(), cfg_.peers.end(), [&](const PeerConfig &p) {
                return p.range && p.range->contains(remote);
            });
            if (pc == cfg_.peers.end()) {
                ++counters_.rejected_unknown;
                spdlog::warn("bgp: rejected connection from {}: not a configured neighbor",
                             remote.str());
                close(fd);
                continue;
            }
            PeerConfig dyn = *pc;
            dyn.address = remote;
            s = &add_session(dyn, remote, true);
            ++counters_.dynamic_created;
            spdlog::info("bgp: dynamic neighbor {} from range {}", remote.str(), pc->range->str());
        }
        ++counters_.accepted;
        auto now = Clock::now();
        Conn &m = *s->main;
        switch (m.fsm.state()) {
        case FsmState::Idle:
        case FsmState::Active:
            adopt(*s, s->main, fd, false);
            if (m.fsm.state() == FsmState::Idle) m.fsm.set_passive_open(now);
            run_actions(m, m.fsm.handle(FsmEvent::TcpConnected, now));
            break;
        case FsmState::Connect:
        case FsmState::OpenSent:
        case FsmState::OpenConfirm:
            // Two connections to one peer (RFC 4271 6.8): both run until an OPEN tells
            // us the peer's identifier, then resolve_collision() keeps one.
            if (s->other) {
                ++counters_.rejected_collision;
                close(fd);
                break;
            }
            s->other = std::make_unique<Conn>(*s, s->local);
            adopt(*s, s->other, fd, false);
            s->other->fsm.set_passive_open(now);
            run_actions(*s->other, s->other->fsm.handle(FsmEvent::TcpConnected, now));
            break;
        case FsmState::Established:
            if (s->neg.peer_gr) {
                // RFC 4724 4.2: a new connection from a graceful-restart peer means it
                // restarted; the old session is gone, its routes become stale.
                spdlog::info("bgp {}: new connection while Established: peer restarted",
                             s->remote.str());
                run_actions(m, m.fsm.handle(FsmEvent::TcpFailed, now));
                s->last_error = "peer restarted (graceful restart)";
                close_conn(m);
                adopt(*s, s->main, fd, false);
                m.fsm.set_passive_open(now);
                run_actions(m, m.fsm.handle(FsmEvent::TcpConnected, now));
            } else {
                ++counters_.rejected_collision;
                Bytes b;
                encode_notification({err::kCease, err::kCollisionResolution, {}}, b);
                (void)!::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
                close(fd);
            }
            break;
        }
    }
}

void Speaker::adopt(Session &s, std::unique_ptr<Conn> &slot, int fd, bool outgoing) {
    Conn &c = *slot;
    c.fd = fd;
    c.outgoing = outgoing;
    c.connecting = false;
    c.want_write = false;
    c.want_read = true;
    c.rbuf.clear();
    c.wbuf.clear();
    c.wpos = 0;
    IpAddr remote;
    socket_addresses(fd, c.local_addr, c.local_port, remote, c.remote_port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!set_ttl_options(fd, s))
        spdlog::warn("bgp {}: TTL/GTSM socket options: {}", s.remote.str(), errstr());
    c.watch.on_event = [this, &c](uint32_t ev) { on_conn_event(c, ev); };
    watch(fd, &c.watch, EPOLLIN);
}

void Speaker::start_connect(Session &s) {
    Conn &c = *s.main;
    close_conn(c);
    int fd = open_active_socket(s);
    if (fd < 0) {
        spdlog::debug("bgp {}: connect: {}", s.remote.str(), errstr());
        run_actions(c, c.fsm.handle(FsmEvent::TcpFailed, Clock::now()));
        return;
    }
    c.fd = fd;
    c.outgoing = true;
    c.connecting = true;
    c.want_write = true;
    c.want_read = true;
    c.watch.on_event = [this, &c](uint32_t ev) { on_conn_event(c, ev); };
    watch(fd, &c.watch, EPOLLIN | EPOLLOUT);
}

void Speaker::close_conn(Conn &c) {
    if (c.fd < 0) return;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.fd = -1;
    c.connecting = false;
    c.want_write = false;
    c.rbuf = Bytes();
    c.wbuf = Bytes();
    c.wpos = 0;
}

void Speaker::on_conn_event(Conn &c, uint32_t events) {
    if (c.fd < 0) return;
    auto now = Clock::now();
    if (c.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            spdlog::debug("bgp {}: connect: {}", c.session.remote.str(), std::strerror(err));
            run_actions(c, c.fsm.handle(FsmEvent::TcpFailed, now));
            return;
        }
        if (!(events & EPOLLOUT)) return;
        c.connecting = false;
        IpAddr remote;
        socket_addresses(c.fd, c.local_addr, c.local_port, remote, c.remote_port);
        set_interest(c);
        run_actions(c, c.fsm.handle(FsmEvent::TcpConnected, now));
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_conn(c);
    if (c.fd >= 0 && (events & EPOLLOUT)) flush_conn(c);
}

void Speaker::read_conn(Conn &c) {
    Session &s = c.session;
    size_t total = 0;
    while (total < kReadBudget) {
        // Reads land in one buffer shared by all connections; a connection keeps only
        // the start of a message that has not fully arrived (idle sessions stay small).
        size_t have = c.rbuf.size();
        if (read_buf_.size() < have + kReadChunk) read_buf_.resize(have + kReadChunk);
        std::copy(c.rbuf.begin(), c.rbuf.end(), read_buf_.begin());
        ssize_t n = read(c.fd, read_buf_.data() + have, kReadChunk);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            s.last_error = n == 0 ? "connection closed by peer" : "read: " + errstr();
            spdlog::info("bgp {}: {}", s.remote.str(), s.last_error);
            run_actions(c, c.fsm.handle(FsmEvent::TcpFailed, Clock::now()));
            return;
        }
        if (n < 0) break;
        total += size_t(n);
        size_t end = have + size_t(n), pos = 0;
        size_t max_len = s.up ? s.neg.ctx.max_message_len() : kMaxMessageLen;
        while (end - pos >= kHeaderLen) {
            ByteView avail(read_buf_.data() + pos, end - pos);
            auto hr = decode_header(avail.first(kHeaderLen), max_len);
            if (hr.error) {
                spdlog::warn("bgp {}: bad message header: {}", s.remote.str(), hr.error->str());
                run_actions(c, c.fsm.error(*hr.error, Clock::now()));
                return;
            }
            if (avail.size() < hr.header.length) break;
            pos += hr.header.length;
            on_message(c, hr.header.type, avail.subspan(kHeaderLen, hr.header.length - kHeaderLen));
            if (c.fd < 0) return;
        }
        c.rbuf.assign(read_buf_.begin() + ptrdiff_t(pos), read_buf_.begin() + ptrdiff_t(end));
        if (size_t(n) < kReadChunk) break;
    }
}

bool Speaker::flush_conn(Conn &c) {
    while (c.unsent()) {
        // MSG_NOSIGNAL: a peer that reset the connection must end the session, not the
        // process (vleafd, unlike vleaf-bgpd, leaves SIGPIPE at its default).
        ssize_t n = ::send(c.fd, c.wbuf.data() + c.wpos, c.unsent(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            c.session.last_error = "write: " + errstr();
            run_actions(c, c.fsm.handle(FsmEvent::TcpFailed, Clock::now()));
            return false;
        }
        c.wpos += size_t(n);
    }
    if (c.wpos == c.wbuf.size()) {
        // After a burst (a full table), give the memory back.
        if (c.wbuf.capacity() > kReadChunk)
            c.wbuf = Bytes();
        else
            c.wbuf.clear();
        c.wpos = 0;
    } else if (c.wpos > (1 << 20)) {
        c.wbuf.erase(c.wbuf.begin(), c.wbuf.begin() + ptrdiff_t(c.wpos));
        c.wpos = 0;
    }
    set_interest(c);
    return true;
}

void Speaker::send(Conn &c, const Bytes &msg) {
    bool was_empty = c.unsent() == 0;
    c.wbuf.insert(c.wbuf.end(), msg.begin(), msg.end());
    if (was_empty) flush_conn(c);
}

void Speaker::run_actions(Conn &c, const FsmActions &actions) {
    Session &s = c.session;
    for (auto &a : actions) {
        if (c.fd < 0 && (a.kind == FsmAction::SendOpen || a.kind == FsmAction::SendKeepalive ||
                         a.kind == FsmAction::SendNotification))
            continue;
        Bytes b;
        switch (a.kind) {
        case FsmAction::Connect:
            if (&c == s.main.get()) start_connect(s);
            break;
        case FsmAction::Disconnect:
            // A NOTIFICATION queued just before gets one chance to leave.
            if (c.fd >= 0 && !c.connecting && c.unsent()) {
                (void)!::send(c.fd, c.wbuf.data() + c.wpos, c.unsent(), MSG_NOSIGNAL);
            }
            close_conn(c);
            break;
        case FsmAction::SendOpen:
            encode_open(local_open(s.local), b);
            ++s.counters.opens_out;
            send(c, b);
            break;
        case FsmAction::SendKeepalive:
            encode_keepalive(b);
            ++s.counters.keepalives_out;
            send(c, b);
            break;
        case FsmAction::SendNotification:
            s.last_error = "sent " + a.error.str();
            s.notified = true;
            spdlog::warn("bgp {}: sending NOTIFICATION {}", s.remote.str(), a.error.str());
            encode_notification(a.error, b);
            ++s.counters.notifications_out;
            c.wbuf.insert(c.wbuf.end(), b.begin(), b.end());
            break;
        case FsmAction::Established:
            session_up(s, c);
            break;
        case FsmAction::Down:
            if (s.up && &c == s.main.get()) session_down(s);
            break;
        }
    }
    if (s.other && c.fsm.state() == FsmState::OpenConfirm) resolve_collision(s);
}

void Speaker::resolve_collision(Session &s) {
    Conn *known = s.main->fsm.state() == FsmState::OpenConfirm ? s.main.get() : s.other.get();
    Conn *rival = known == s.main.get() ? s.other.get() : s.main.get();
    Conn *loser;
    if (rival->fd < 0 || rival->fsm.state() < FsmState::OpenSent) {
        // Not yet a BGP connection (our connect still in progress): just abandon it.
        close_conn(*rival);
        loser = rival;
    } else {
        uint32_t remote_id = known->fsm.negotiated().remote_id;
        bool keep_outgoing = collision_keep_outgoing(s.local.bgp_id, remote_id);
        // Both incoming (the peer connected twice): the newer one survives.
        loser = s.main->outgoing == s.other->outgoing ? s.main.get()
                : s.main->outgoing != keep_outgoing   ? s.main.get()
                                                      : s.other.get();
        spdlog::info("bgp {}: connection collision: closing the connection {} (ids local {} "
                     "remote {})",
                     s.remote.str(), loser->outgoing ? "we initiated" : "the peer initiated",
                     IpAddr::v4(s.local.bgp_id).str(), IpAddr::v4(remote_id).str());
        ++counters_.rejected_collision;
        run_actions(*loser,
                    loser->fsm.error({err::kCease, err::kCollisionResolution, {}}, Clock::now()));
    }
    // The survivor becomes the session's connection; the loser is reaped after this event.
    if (loser == s.main.get()) std::swap(s.main, s.other);
}

void Speaker::on_message(Conn &c, MsgType type, ByteView body) {
    Session &s = c.session;
    auto now = Clock::now();
    switch (type) {
    case MsgType::Open: {
        ++s.counters.opens_in;
        auto r = decode_open(body);
        if (r.error) {
            spdlog::warn("bgp {}: bad OPEN: {}", s.remote.str(), r.error->str());
            run_actions(c, c.fsm.error(*r.error, now));
            return;
        }
        run_actions(c, c.fsm.open_received(r.open, now));
        break;
    }
    case MsgType::Keepalive:
        ++s.counters.keepalives_in;
        run_actions(c, c.fsm.handle(FsmEvent::KeepaliveReceived, now));
        break;
    case MsgType::Notification: {
        ++s.counters.notifications_in;
        auto n = decode_notification(body);
        s.last_error = "received " + (n ? n->str() : std::string("a truncated NOTIFICATION"));
        s.notified = true;
        spdlog::warn("bgp {}: {}", s.remote.str(), s.last_error);
        run_actions(c, c.fsm.handle(FsmEvent::NotificationReceived, now));
        break;
    }
    case MsgType::Update:
        ++s.counters.updates_in;
        if (!s.first_update) s.first_update = now;
        s.last_update = now;
        run_actions(c, c.fsm.handle(FsmEvent::UpdateReceived, now));
        if (c.fd >= 0 && s.up && &c == s.main.get()) on_update(s, body);
        break;
    case MsgType::RouteRefresh: {
        run_actions(c, c.fsm.handle(FsmEvent::UpdateReceived, now));
        auto r = decode_route_refresh(body);
        if (r.error) {
            run_actions(c, c.fsm.error(*r.error, now));
            return;
        }
        if (c.fd >= 0 && s.up && &c == s.main.get()) on_route_refresh(s, r.refresh);
        break;
    }
    }
}

void Speaker::on_route_refresh(Session &s, const RouteRefresh &rr) {
    auto f = to_route_family(rr.family);
    if (!f || !(s.neg.families & family_bit(*f))) {
        spdlog::info("bgp {}: ROUTE-REFRESH for {}, not negotiated: ignored", s.remote.str(),
                     rr.family.str());
        return;
    }
    FamilyMask bit = family_bit(*f);
    switch (rr.subtype) {
    case RouteRefresh::Normal:
        ++s.counters.refreshes_in;
        spdlog::info("bgp {}: ROUTE-REFRESH {}: sending the table again", s.remote.str(),
                     family_name(*f));
        if (s.neg.enhanced_refresh) {
            s.out.borr |= bit;
            s.out.eorr |= bit;
        }
        queue_full_table(s, bit);
        break;
    case RouteRefresh::BeginOfRib:
        ++s.counters.borr_in;
        // RFC 7313 4: what the peer does not send again before EoRR is gone, and so is
        // all of it still stale if no EoRR comes in time.
        rib_.mark_stale(s.rib_id, bit);
        s.refresh_stale |= bit;
        s.refresh_deadline[size_t(*f)] = Clock::now() + Seconds(s.cfg.refresh_stale_time);
        break;
    case RouteRefresh::EndOfRib:
        ++s.counters.eorr_in;
        if (s.refresh_stale & bit) {
            rib_.sweep_stale(s.rib_id, bit);
            s.refresh_stale &= FamilyMask(~bit);
            s.refresh_deadline[size_t(*f)].reset();
        }
        break;
    default: // RFC 7313 5: unknown subtypes are ignored
        break;
    }
}

bool Speaker::request_refresh(const IpAddr &address, FamilyMask families) {
    Session *s = find_session(address);
    if (!s || !s->up) return false;
    if (!s->neg.route_refresh) {
        spdlog::warn("bgp {}: no route refresh capability: cannot ask for its routes again",
                     s->remote.str());
        return false;
    }
    Bytes b;
    for (unsigned i = 0; i < kRouteFamilies; ++i) {
        auto f = RouteFamily(i);
        if (!(families & s->neg.families & family_bit(f))) continue;
        encode_route_refresh({to_afi_safi(f), RouteRefresh::Normal}, b);
        ++s->counters.refreshes_out;
    }
    spdlog::info("bgp {}: sending ROUTE-REFRESH", s->remote.str());
    send(*s->main, b);
    return true;
}

bool Speaker::resend(const IpAddr &address) {
    Session *s = find_session(address);
    if (!s || !s->up) return false;
    queue_full_table(*s, s->neg.families);
    return true;
}

void Speaker::import_mp(Session &s, AfiSafi family, std::span<const PrefixNlri> prefixes,
                        std::span<const EvpnNlri> evpn, const AttrData *attrs) {
    auto f = to_route_family(family);
    if (!f || !(s.neg.families & family_bit(*f))) return;
    if (*f == RouteFamily::Evpn)
        import_evpn(s, evpn, attrs);
    else
        import_prefixes(s, *f, prefixes, attrs);
}

void Speaker::withdraw_all(Session &s, const Update &u) {
    import_prefixes(s, RouteFamily::Ipv4Unicast, u.withdrawn, nullptr);
    import_prefixes(s, RouteFamily::Ipv4Unicast, u.nlri, nullptr);
    if (u.mp_reach)
        import_mp(s, u.mp_reach->family, u.mp_reach->prefixes, u.mp_reach->evpn, nullptr);
    if (u.mp_unreach)
        import_mp(s, u.mp_unreach->family, u.mp_unreach->prefixes, u.mp_unreach->evpn, nullptr);
}

void Speaker::on_update(Session &s, ByteView body) {
    decode_update(body, s.neg.ctx, scratch_);
    auto &r = scratch_;
    Update &u = r.update;
    switch (r.action) {
    case UpdateAction::SessionReset:
    case UpdateAction::AfiSafiDisable: {
        Notification n =
            r.notification.value_or(Notification{err::kUpdate, err::kMalformedAttrList, {}});
        spdlog::warn("bgp {}: malformed UPDATE ({}): resetting the session", s.remote.str(),
                     r.reason);
        run_actions(*s.main, s.main->fsm.error(n, Clock::now()));
        return;
    }
    case UpdateAction::TreatAsWithdraw:
        ++s.counters.treat_as_withdraw;
        spdlog::warn("bgp {}: malformed UPDATE treated as withdraw: {}", s.remote.str(), r.reason);
        withdraw_all(s, u);
        return;
    case UpdateAction::AttributeDiscard:
        ++s.counters.attribute_discard;
        spdlog::info("bgp {}: UPDATE attributes discarded: {}", s.remote.str(), r.reason);
        break;
    case UpdateAction::Ok:
        break;
    }
    if (auto eor = end_of_rib(u)) {
        auto f = to_route_family(*eor);
        if (f) s.eor_in |= family_bit(*f);
        if (f && (s.gr_stale & family_bit(*f))) {
            rib_.sweep_stale(s.rib_id, family_bit(*f));
            s.gr_stale &= FamilyMask(~family_bit(*f));
            if (!s.gr_stale) s.gr_deadline.reset();
            spdlog::info("bgp {}: End-of-RIB {}: stale routes swept", s.remote.str(),
                         family_name(*f));
        }
        if (rib_.deferring()) check_deferral();
        return;
    }
    import_prefixes(s, RouteFamily::Ipv4Unicast, u.withdrawn, nullptr);
    if (u.mp_unreach)
        import_mp(s, u.mp_unreach->family, u.mp_unreach->prefixes, u.mp_unreach->evpn, nullptr);
    if (u.nlri.empty() && !u.mp_reach) return;

    // RFC 4271 6.3 / RFC 7606 3 k: an external peer's AS_PATH must start with its AS.
    bool reject = false;
    if (!s.ibgp() && (!u.attrs.as_path || u.attrs.as_path->first_as() != s.local.remote_as)) {
        ++s.counters.treat_as_withdraw;
        spdlog::warn("bgp {}: AS_PATH does not start with the peer's AS {}: treated as withdraw",
                     s.remote.str(), s.local.remote_as);
        reject = true;
    }
    if (!reject) {
        auto v = rib_.check_import(nullptr, u.attrs, s.cfg.import_policy);
        if (v != ImportVerdict::Accepted) {
            spdlog::debug("bgp {}: UPDATE not imported: {}", s.remote.str(), verdict_name(v));
            s.counters.import_rejected += u.nlri.size();
            reject = true;
        }
    }
    if (reject) {
        withdraw_all(s, u);
        return;
    }
    if (!u.nlri.empty() && u.attrs.next_hop) {
        NextHop nh{IpAddr::v4(*u.attrs.next_hop), std::nullopt};
        PathAttrs a = u.mp_reach ? u.attrs : std::move(u.attrs);
        a.next_hop.reset(); // kept in AttrData::next_hop
        auto *attrs = rib_.intern(std::move(a), nh);
        import_prefixes(s, RouteFamily::Ipv4Unicast, u.nlri, attrs);
        rib_.discard_unused(attrs);
    }
    if (u.mp_reach) {
        u.attrs.next_hop.reset();
        auto *attrs = rib_.intern(std::move(u.attrs), u.mp_reach->next_hop);
        import_mp(s, u.mp_reach->family, u.mp_reach->prefixes, u.mp_reach->evpn, attrs);
        rib_.discard_unused(attrs);
    }
    check_max_prefix(s);
}

void Speaker::import_prefixes(Session &s, RouteFamily f, std::span<const PrefixNlri> nlri,
                              const AttrData *attrs) {
    // An UPDATE carries up to ~1000 prefixes at random places of a table much larger
    // than the caches: prefetching a few prefixes ahead overlaps their cache misses.
    constexpr size_t kAhead = 8;
    for (size_t i = 0; i < nlri.size(); ++i) {
        if (i + kAhead < nlri.size()) rib_.prefetch(f, nlri[i + kAhead].prefix);
        const PrefixNlri &n = nlri[i];
        if (attrs && prefix_permitted(s.cfg.import_policy, n.prefix)) {
            rib_.update(s.rib_id, f, n.prefix, n.path_id, attrs);
            ++s.counters.prefixes_announced_in;
        } else {
            if (attrs)
                ++s.counters.import_rejected;
            else
                ++s.counters.prefixes_withdrawn_in;
            rib_.withdraw(s.rib_id, f, n.prefix, n.path_id);
        }
    }
}

void Speaker::import_evpn(Session &s, std::span<const EvpnNlri> nlri, const AttrData *attrs) {
    for (auto &n : nlri) {
        if (attrs) {
            rib_.update(s.rib_id, n, attrs);
            ++s.counters.prefixes_announced_in;
        } else {
            rib_.withdraw(s.rib_id, n);
            ++s.counters.prefixes_withdrawn_in;
        }
    }
}

void Speaker::check_max_prefix(Session &s) {
    if (!s.cfg.max_prefix) return;
    auto &acc = rib_.peer(s.rib_id).accepted;
    uint64_t total = 0;
    for (auto n : acc) total += n;
    if (total <= s.cfg.max_prefix) return;
    spdlog::error("bgp {}: {} prefixes received, more than max_prefix {}: closing the session "
                  "(Cease/Maximum Number of Prefixes Reached)",
                  s.remote.str(), total, s.cfg.max_prefix);
    // RFC 4486 4: AFI, SAFI and the upper bound.
    RouteFamily f = s.cfg.families.front();
    AfiSafi as = to_afi_safi(f);
    uint32_t m = s.cfg.max_prefix;
    Notification n{err::kCease,
                   err::kMaxPrefixes,
                   {uint8_t(as.afi >> 8), uint8_t(as.afi), as.safi, uint8_t(m >> 24),
                    uint8_t(m >> 16), uint8_t(m >> 8), uint8_t(m)}};
    run_actions(*s.main, s.main->fsm.error(n, Clock::now()));
}

void Speaker::session_up(Session &s, Conn &c) {
    auto now = Clock::now();
    s.up = true;
    s.neg = c.fsm.negotiated();
    s.local_addr = c.local_addr;
    s.up_since = now;
    s.last_error.clear();
    s.notified = false;
    s.first_update.reset();
    s.last_update.reset();
    ++s.counters.established;
    RibPeer &rp = rib_.peer(s.rib_id);
    rp.router_id = s.neg.remote_id;
    rp.address = s.remote;
    spdlog::info("bgp {}: Established (AS {}, id {}, hold {} s)", s.remote.str(), s.neg.remote_as,
                 IpAddr::v4(s.neg.remote_id).str(), s.neg.hold);
    // A peer that no longer does graceful restart will not send End-of-RIB for what
    // we kept: drop it now.
    FamilyMask stale_now = s.gr_stale & FamilyMask(~s.neg.peer_gr_families);
    if (!s.neg.peer_gr) stale_now = s.gr_stale;
    if (stale_now) {
        rib_.sweep_stale(s.rib_id, stale_now);
        s.gr_stale &= FamilyMask(~stale_now);
        if (!s.gr_stale) s.gr_deadline.reset();
    }
    s.eor_in = 0;
    if (rib_.deferring()) return; // the table goes out when the deferral ends
    queue_full_table(s, s.neg.families);
    s.out.eor = s.neg.families;
    flush_out(s);
}

void Speaker::session_down(Session &s) {
    auto now = Clock::now();
    s.up = false;
    ++s.counters.dropped;
    clear_out(s);
    FamilyMask keep = s.neg.peer_gr && !s.notified ? s.neg.peer_gr_families : 0;
    spdlog::warn("bgp {}: session down ({}){}", s.remote.str(),
                 s.last_error.empty() ? "no reason" : s.last_error,
                 keep ? ": keeping its routes as stale (graceful restart)" : "");
    s.refresh_stale = 0;
    s.refresh_deadline = {};
    rib_.peer_down(s.rib_id, keep);
    if (keep) {
        s.gr_stale |= keep;
        s.gr_deadline = now + Seconds(s.neg.peer_restart_time);
    }
}

void Speaker::fire_timers(TimePoint now) {
    if (defer_deadline_ && *defer_deadline_ <= now) end_deferral("select_defer_time ran out");
    for (auto &s : sessions_) {
        for (auto *c : {s->main.get(), s->other.get()}) {
            if (!c) continue;
            auto d = c->fsm.next_deadline();
            if (d && *d <= now) run_actions(*c, c->fsm.expire(now));
        }
        if (s->gr_deadline && *s->gr_deadline <= now) {
            spdlog::warn("bgp {}: graceful restart time ran out: stale routes removed",
                         s->remote.str());
            rib_.sweep_stale(s->rib_id, s->gr_stale);
            s->gr_stale = 0;
            s->gr_deadline.reset();
        }
        for (unsigned i = 0; i < kRouteFamilies; ++i) {
            auto &d = s->refresh_deadline[i];
            if (!d || *d > now) continue;
            spdlog::warn("bgp {}: no EoRR {} s after BoRR for {}: stale routes removed",
                         s->remote.str(), s->cfg.refresh_stale_time, family_name(RouteFamily(i)));
            FamilyMask bit = family_bit(RouteFamily(i));
            rib_.sweep_stale(s->rib_id, bit);
            s->refresh_stale &= FamilyMask(~bit);
            d.reset();
        }
    }
}

int Speaker::wait_ms(int max_wait_ms) const {
    auto now = Clock::now();
    auto until = now + std::chrono::milliseconds(max_wait_ms);
    for (auto &s : sessions_) {
        if (s->up && s->out.pending() && s->main->unsent() == 0) return 0;
        for (auto *c : {s->main.get(), s->other.get()})
            if (c)
                if (auto d = c->fsm.next_deadline(); d && *d < until) until = *d;
        if (s->gr_deadline && *s->gr_deadline < until) until = *s->gr_deadline;
        for (auto &d : s->refresh_deadline)
            if (d && *d < until) until = *d;
    }
    if (defer_deadline_ && *defer_deadline_ < until) until = *defer_deadline_;
    if (reads_paused_ && paused_until_ < until) until = paused_until_;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    return int(std::clamp<int64_t>(ms + 1, 0, max_wait_ms));
}

void Speaker::reap() {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session &s = **it;
        if (s.other && s.other->fd < 0) s.other.reset();
        bool gone = s.removed || (s.dynamic && !s.gr_stale);
        if (gone && !s.up && s.main->fd < 0 && !s.other) {
            spdlog::info("bgp: {}neighbor {} removed", s.dynamic ? "dynamic " : "", s.remote.str());
            rib_.remove_peer(s.rib_id);
            clear_out(s);
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
}

void Speaker::poll(int max_wait_ms) {
    if (reads_paused_ && Clock::now() >= paused_until_) {
        reads_paused_ = false;
        set_interest_all();
    }
    epoll_event evs[64];
    int n = epoll_wait(epfd_, evs, 64, wait_ms(max_wait_ms));
    for (int i = 0; i < n; ++i) static_cast<Watch *>(evs[i].data.ptr)->on_event(evs[i].events);
    fire_timers(Clock::now());
    for (auto &s : sessions_)
        if (s->up && s->out.pending()) flush_out(*s);
    reap();
}

void Speaker::shutdown() {
    auto now = Clock::now();
    for (auto &s : sessions_) {
        if (s->other) run_actions(*s->other, s->other->fsm.handle(FsmEvent::ManualStop, now));
        run_actions(*s->main, s->main->fsm.handle(FsmEvent::ManualStop, now));
    }
}

void Speaker::run(const std::atomic<bool> &stop) {
    while (!stop.load(std::memory_order_relaxed)) poll(100);
}

} // namespace vleaf::bgp
