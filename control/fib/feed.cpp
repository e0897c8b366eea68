#include "control/fib/feed.hpp"

#include <cstring>

namespace vleaf::fib {

size_t Feed::KeyHash::operator()(const Key &k) const {
    uint64_t a, b;
    std::memcpy(&a, k.prefix.addr.bytes.data(), 8);
    std::memcpy(&b, k.prefix.addr.bytes.data() + 8, 8);
    uint64_t h = (a ^ (uint64_t(k.vrf) << 40 | uint64_t(k.family) << 8 | k.prefix.len)) *
                 0x9e3779b97f4a7c15ull;
    h ^= (b + 0x632be59bd9b4e019ull) * 0xff51afd7ed558ccdull;
    return size_t(h ^ (h >> 29));
}

Feed::Feed(bgp::Rib &rib, RouteRing &ring, size_t backlog_limit, std::function<void()> wake)
    : rib_(rib), ring_(ring), limit_(backlog_limit), wake_(std::move(wake)) {
    rib_.on_change([this](const bgp::RibChange &ch) { on_change(ch); });
    // While anything waits, the prefix's change will go through the backlog.
    rib_.on_prefetch([this](bgp::RouteFamily f, const Prefix &p) {
        if (pending()) backlog_.prefetch(Key{f, 0, p});
    });
}

RouteMsg Feed::make(const Key &k, std::span<const bgp::Path> best) const {
    RouteMsg m;
    m.vrf = k.vrf;
    m.prefix = k.prefix;
    m.stamp_ns = steady_ns();
    for (const bgp::Path &p : best) {
        // What we originate ourselves is not forwarded through a BGP next hop.
        if (p.peer == bgp::kLocalPeer || m.n_via == kMaxEcmp) continue;
        const IpAddr &a = p.attrs->next_hop.addr;
        if (a.is_unspecified()) continue;
        bool dup = false;
        for (unsigned i = 0; i < m.n_via; i++) dup |= m.via[i] == a;
        if (!dup) m.via[m.n_via++] = a;
    }
    m.op = m.n_via ? RouteMsg::Op::Set : RouteMsg::Op::Del;
    return m;
}

bool Feed::push(const RouteMsg &m) {
    if (!ring_.push(m)) {
        c_.ring_full++;
        return false;
    }
    c_.pushed++;
    since_wake_++;
    return true;
}

void Feed::remember(const Key &k) {
    if (!backlog_.add(k)) return;
    c_.backlogged++;
    c_.backlog_max = std::max<uint64_t>(c_.backlog_max, backlog_.size());
    // While resyncing the backlog is the RIB itself: no limit then.
    if (resync_ == Resync::Idle && backlog_.size() > limit_) request_resync();
}

void Feed::on_change(const bgp::RibChange &ch) {
    // The global tables; IP-VRF routes learned through EVPN are tunnel routes (vxlan).
    if (ch.family == bgp::RouteFamily::Evpn || !ch.prefix || ch.vrf != 0) return;
    c_.changes++;
    Key k{ch.family, ch.vrf, *ch.prefix};
    if (backlog_.empty() && resync_ == Resync::Idle && push(make(k, ch.now))) return;
    remember(k);
}

void Feed::request_resync() {
    backlog_.release();
    resync_ = Resync::Begin;
    c_.resyncs++;
}

void Feed::flush() {
    if (resync_ == Resync::Begin) {
        RouteMsg begin;
        begin.op = RouteMsg::Op::ResyncBegin;
        begin.stamp_ns = steady_ns();
        if (push(begin)) {
            resync_ = Resync::Streaming;
            for (auto f : {bgp::RouteFamily::Ipv4Unicast, bgp::RouteFamily::Ipv6Unicast})
                rib_.for_each(f,
                              [&](const Prefix *p, const bgp::EvpnNlri *, const bgp::RouteEntry &) {
                                  remember(Key{f, 0, *p});
                              });
        }
    }
    if (resync_ != Resync::Begin) {
        // The RIB entries of a backlog are as far apart as the prefixes: fetched kAhead
        // keys early, so that their cache misses overlap.
        constexpr size_t kAhead = 8;
        auto ahead = [&](size_t i) {
            if (i < backlog_.size()) rib_.prefetch(backlog_.at(i).family, backlog_.at(i).prefix);
        };
        for (size_t i = 0; i < kAhead; i++) ahead(i);
        while (!backlog_.empty()) {
            ahead(kAhead);
            const Key &k = backlog_.at(0);
            const bgp::RouteEntry *e = rib_.find(k.family, k.prefix);
            if (!push(make(k, e ? e->best() : std::span<const bgp::Path>{}))) break;
            backlog_.pop();
        }
        if (backlog_.empty()) {
            RouteMsg end;
            end.op = RouteMsg::Op::ResyncEnd;
            end.stamp_ns = steady_ns();
            if (resync_ == Resync::Streaming && push(end)) resync_ = Resync::Idle;
        }
    }
    if (since_wake_) {
        since_wake_ = 0;
        if (wake_) wake_();
    }
}

} // namespace vleaf::fib
