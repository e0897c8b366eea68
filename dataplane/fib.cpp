#include "dataplane/fib.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_rib6.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <utility>

namespace vleaf::dp {

namespace {
constexpr uint32_t kMaxGroups = 1 << 16;

std::string table_name(const char *what, uint32_t vrf) {
    return std::string("vleaf_") + what + std::to_string(vrf);
}
} // namespace

Fib::Fib(const std::vector<VrfSpec> &specs, rte_rcu_qsbr *rcu, int socket)
    : socket_(socket), rcu_(rcu), overlay_(std::make_unique<Overlay>(rcu, socket)) {
    uint32_t n_vrfs = 0;
    for (auto &s : specs) n_vrfs = std::max(n_vrfs, s.id + 1);
    vrfs_.resize(n_vrfs);
    max_v6_.resize(n_vrfs);
    for (auto &s : specs) {
        auto &t = vrfs_[s.id];
        // A group per /24 holding longer prefixes: 1/8 of the routes covers Internet-like
        // tables; a table of only /26 pod blocks needs 1/4 (raise max_routes_v4 for that).
        v4_.push_back(
            std::make_unique<Dir24>(s.max_v4, std::max<uint32_t>(1024, s.max_v4 / 8), rcu, socket));
        t.v4 = v4_.back().get();

        max_v6_[s.id] = s.max_v6;
        t.v6 = create6(s.id);
        // The arguments are valid by construction, and DPDK's clean-up after a failed
        // allocation (rte_rib6_free) overwrites rte_errno with EINVAL: a failure is memory.
        if (!t.v6)
            throw std::runtime_error("vrf " + std::to_string(s.id) + ": IPv6 FIB for " +
                                     std::to_string(s.max_v6) +
                                     " routes (max_routes_v6): out of DPDK memory (EAL -m)");
    }
    nh_ = static_cast<Nh *>(rte_zmalloc_socket("vleaf_nh", sizeof(Nh) * kMaxNh, 64, socket));
    groups_ = static_cast<EcmpGroup *>(
        rte_zmalloc_socket("vleaf_ecmp", sizeof(EcmpGroup) * kMaxGroups, 64, socket));
    if (!nh_ || !groups_) throw std::runtime_error("next-hop tables: out of DPDK memory");
    nh_used_.assign(kMaxNh, 0);
    nh_[kNhNoRoute].kind = NhKind::NoRoute;
    nh_[kNhLocal].kind = NhKind::Local;
    nh_[kNhBlackhole].kind = NhKind::Blackhole;
    nh_used_[kNhNoRoute] = nh_used_[kNhLocal] = nh_used_[kNhBlackhole] = 1;
    free_groups_.reserve(kMaxGroups);
    for (uint32_t g = kMaxGroups; g-- > 0;) free_groups_.push_back(g);
}

Fib::~Fib() {
    for (auto &t : vrfs_) rte_fib6_free(t.v6);
    for (auto &o : old_v6_) rte_fib6_free(o.t);
    rte_free(nh_);
    rte_free(groups_);
}

void Fib::set_port_mac(uint16_t port, const rte_ether_addr &mac) {
    if (counters_.nexthops)
        throw std::logic_error("Fib::set_port_mac after next hops were set: they keep the old MAC");
    port_mac_.at(port) = mac;
}

std::string Fib::settle() {
    apply_deferred_v6(false);
    take_token();
    reclaim();
    return std::exchange(deferred_errors_, {});
}

bool Fib::released(NhId id) {
    reclaim();
    return id < kMaxNh && nh_used_[id] == 0;
}

uint64_t Fib::take_token() {
    // Retired in order, so those that may have a token come first.
    size_t ready = 0;
    while (ready < untokened_ &&
           retirees_[retirees_.size() - untokened_ + ready].after <= v6_applied_)
        ready++;
    if (ready || v6_deleted_) {
        last_token_ = rte_rcu_qsbr_start(rcu_);
        counters_.grace_periods++;
        size_t first = retirees_.size() - untokened_;
        for (size_t k = first; k < first + ready; k++) retirees_[k].token = last_token_;
        untokened_ -= ready;
        if (v6_deleted_) {
            v6_token_ = last_token_;
            v6_pending_ = true;
            v6_deleted_ = false;
        }
    }
    return last_token_;
}

bool Fib::over(uint64_t token) {
    if (token <= released_token_) return true;
    if (rte_rcu_qsbr_check(rcu_, token, false) != 1) return false;
    released_token_ = token;
    return true;
}

void Fib::reclaim() {
    while (!retirees_.empty() && retirees_.front().token && over(retirees_.front().token)) {
        const Retiree &r = retirees_.front();
        if (r.group)
            free_groups_.push_back(r.id);
        else
            nh_used_[r.id] = 0;
        retirees_.pop_front();
    }
    if (v6_pending_ && over(v6_token_)) v6_pending_ = false;
    while (!old_v6_.empty() && over(old_v6_.front().token)) {
        rte_fib6_free(old_v6_.front().t);
        old_v6_.pop_front();
    }
}

void Fib::wait(uint64_t token, bool nh) {
    if (over(token)) return;
    uint64_t t0 = rte_rdtsc();
    rte_rcu_qsbr_check(rcu_, token, true);
    released_token_ = token;
    counters_.grace_waits++;
    counters_.nh_reuse_waits += nh;
    counters_.grace_wait_ns += (rte_rdtsc() - t0) * 1000000000ull / rte_get_tsc_hz();
}

void Fib::retire(uint32_t id, bool group, uint64_t after) {
    retirees_.push_back({0, after, id, group});
    untokened_++;
}

uint32_t Fib::alloc_group() {
    if (free_groups_.empty()) reclaim();
    if (free_groups_.empty()) {
        apply_deferred_v6(true);
        take_token();
        auto it = std::find_if(retirees_.begin(), retirees_.end(),
                               [](const Retiree &r) { return r.group; });
        if (it == retirees_.end()) return UINT32_MAX;
        wait(it->token, false);
        reclaim();
    }
    uint32_t g = free_groups_.back();
    free_groups_.pop_back();
    counters_.ecmp_groups++;
    return g;
}

// nh_used_: 0 free, 1 in use, 2 deleted but possibly still read by a worker.
std::string Fib::set_nexthop(NhId id, const Nexthop &n) {
    if (id < kFirstDynamicNh || id >= kMaxNh)
        return "next hop id " + std::to_string(id) + " out of range";
    if (nh_used_[id] == 2) reclaim();
    if (nh_used_[id] == 2) { // reused before its grace period is known to be over
        apply_deferred_v6(true);
        take_token();
        auto it = std::find_if(retirees_.begin(), retirees_.end(),
                               [id](const Retiree &r) { return !r.group && r.id == id; });
        wait(it->token, true);
        reclaim();
    }
    Nh next{};
    next.kind = n.kind;
    next.port = n.port;
    if (n.kind == NhKind::Forward) {
        if (n.port >= RTE_MAX_ETHPORTS)
            return "next hop " + std::to_string(id) + ": no port " + std::to_string(n.port);
        next.src = port_mac_[n.port];
    }
    std::memcpy(next.mac.addr_bytes, n.mac.bytes.data(), 6);
    if (n.kind == NhKind::Tunnel) {
        if (n.vtep >= kMaxVtep || !overlay_->vteps()[n.vtep].family)
            return "tunnel next hop " + std::to_string(id) + ": no VTEP " + std::to_string(n.vtep);
        next.port = n.vtep;
        next.set_group(n.vni);
    }
    if (n.kind == NhKind::Bridge) {
        if (n.bd >= kMaxBd || !overlay_->bds()[n.bd].used)
            return "next hop " + std::to_string(id) + ": no bridge domain " + std::to_string(n.bd);
        next.port = n.bd;
    }
    Nh old = nh_load(&nh_[id]);
    bool had = nh_used_[id] == 1;
    if (n.kind == NhKind::Ecmp) {
        if (n.n_members == 0 || n.n_members > kMaxEcmp) return "ECMP group needs 1..16 members";
        for (unsigned i = 0; i < n.n_members; i++)
            if (n.members[i] >= kMaxNh || nh_used_[n.members[i]] != 1)
                return "ECMP member " + std::to_string(n.members[i]) + " is not a next hop";
        // A new group slot, published with the next hop; workers may still read the old one.
        uint32_t g = alloc_group();
        if (g == UINT32_MAX) return "out of ECMP groups";
        for (unsigned i = 0; i < kMaxEcmp; i++) groups_[g].members[i] = n.members[i % n.n_members];
        next.set_group(g);
        next.n_members = n.n_members;
    }
    if (!had) counters_.nexthops++;
    nh_used_[id] = 1;
    nh_store(&nh_[id], next);
    if (had && old.kind == NhKind::Ecmp) {
        retire(old.group(), true);
        counters_.ecmp_groups--;
    }
    return {};
}

std::string Fib::del_nexthop(NhId id) {
    if (id < kFirstDynamicNh || id >= kMaxNh || nh_used_[id] != 1)
        return "next hop " + std::to_string(id) + " does not exist";
    Nh old = nh_load(&nh_[id]);
    nh_used_[id] = 2;
    retire(id, false, v6_queued_);
    if (old.kind == NhKind::Ecmp) {
        retire(old.group(), true);
        counters_.ecmp_groups--;
    }
    counters_.nexthops--;
    return {};
}

uint64_t Fib::parent_nh(rte_rib6 *rib, const uint8_t *ip, uint8_t len) {
    rte_rib6_node *n = rte_rib6_lookup(rib, ip);
    uint8_t depth;
    while (n && rte_rib6_get_depth(n, &depth) == 0 && depth >= len) n = rte_rib6_lookup_parent(n);
    uint64_t nh = UINT64_MAX;
    if (n) rte_rib6_get_nh(n, &nh);
    return nh;
}

NhId Fib::alias(NhId nh) {
    for (int pass = 0; pass < 2; pass++) {
        while (alias_cursor_ >= kFirstDynamicNh && nh_used_[alias_cursor_] != 0) alias_cursor_--;
        if (alias_cursor_ >= kFirstDynamicNh) break;
        // Every spare slot is taken or retired: wait for the aliases used so far.
        wait(take_token(), false);
        reclaim();
        alias_cursor_ = kMaxNh - 1;
    }
    NhId a = alias_cursor_--;
    nh_store(&nh_[a], nh_load(&nh_[nh]));
    nh_used_[a] = 2; // retired at once: free again after the next grace period
    retire(a, false);
    return a;
}

std::string Fib::route(const Update &u, bool add) {
    if (u.vrf >= vrfs_.size() || !vrfs_[u.vrf].v4) return "no VRF " + std::to_string(u.vrf);
    if (add && (u.nh >= kMaxNh || nh_used_[u.nh] != 1))
        return u.prefix.str() + ": next hop " + std::to_string(u.nh) + " does not exist";
    const auto &p = u.prefix;
    if (p.addr.is_v4()) {
        Dir24 &t = *vrfs_[u.vrf].v4;
        int rc = add ? t.add(p.addr.v4_host(), p.len, u.nh) : t.del(p.addr.v4_host(), p.len);
        if (rc > 0 || (rc == 0 && !add)) counters_.routes_v4 += add ? 1 : -1;
        if (rc < 0)
            return p.str() + ": " + (add ? "add" : "delete") + " failed: " + rte_strerror(-rc);
        return {};
    }
    apply_deferred_v6(false);
    if (!v6_deferred_.empty() || (add && v6_blocked())) {
        v6_deferred_.push_back(u);
        v6_queued_++;
        counters_.v6_deferred++;
        return {};
    }
    return route6(u, add);
}

bool Fib::v6_blocked() {
    if (v6_deleted_) take_token();
    if (v6_pending_ && over(v6_token_)) v6_pending_ = false;
    return v6_pending_;
}

void Fib::apply_deferred_v6(bool wait_over) {
    while (!v6_deferred_.empty()) {
        Update u = v6_deferred_.front();
        bool add = u.op == Update::Op::RouteAdd;
        if (add && v6_blocked()) {
            if (!wait_over) return;
            wait(v6_token_, false);
            v6_pending_ = false;
        }
        v6_deferred_.pop_front();
        v6_applied_++;
        std::string err = route6(u, add);
        if (err.empty()) continue;
        counters_.applied--; // counted when it was accepted
        counters_.failed++;
        deferred_errors_ += (deferred_errors_.empty() ? "" : "; ") + err;
    }
}

int Fib::add6(rte_fib6 *t, const uint8_t *ip, uint8_t len, NhId nh, bool published) {
    if (parent_nh(rte_fib6_get_rib(t), ip, len) == nh) {
        // kMaxNh: no next hop has that id, and it is gone before anyone reads `t`.
        int rc = rte_fib6_add(t, ip, len, published ? alias(nh) : kMaxNh);
        if (rc < 0) return rc;
    }
    return rte_fib6_add(t, ip, len, nh);
}

rte_fib6 *Fib::create6(uint32_t vrf) {
    rte_fib6_conf c6{};
    c6.type = RTE_FIB6_TRIE;
    c6.default_nh = kNhNoRoute;
    c6.max_routes = static_cast<int>(max_v6_[vrf]);
    c6.trie.nh_sz = RTE_FIB6_TRIE_4B;
    c6.trie.num_tbl8 = std::max<uint32_t>(1024, max_v6_[vrf]);
    // rte_rib6 names its node pool "MP_" + this, in at most 25 characters; a table 10^7
    // rebuilds old, the only one that could have the same name, is long freed.
    auto name = table_name("fib6_", vrf) + "." + std::to_string(v6_generation_++ % 10000000);
    return rte_fib6_create(name.c_str(), socket_, &c6);
}

std::string Fib::rebuild6(uint32_t vrf) {
    uint64_t t0 = rte_rdtsc();
    rte_fib6 *fresh = create6(vrf);
    if (!fresh && !old_v6_.empty()) { // what is missing may be a replaced table's memory
        wait(old_v6_.back().token, false);
        reclaim();
        fresh = create6(vrf);
    }
    if (!fresh) return "no DPDK memory for a second IPv6 table to rebuild the VRF's into";
    struct Route {
        std::array<uint8_t, 16> ip;
        uint8_t len;
        uint64_t nh;
    };
    std::vector<Route> routes;
    rte_rib6 *rib = rte_fib6_get_rib(vrfs_[vrf].v6);
    const uint8_t any[16] = {};
    auto keep = [&routes](const rte_rib6_node *n) {
        Route r{};
        rte_rib6_get_ip(n, r.ip.data());
        rte_rib6_get_depth(n, &r.len);
        rte_rib6_get_nh(n, &r.nh);
        routes.push_back(r);
    };
    if (const rte_rib6_node *n = rte_rib6_lookup_exact(rib, any, 0)) keep(n); // not a "next"
    for (rte_rib6_node *n = nullptr; (n = rte_rib6_get_nxt(rib, any, 0, n, RTE_RIB6_GET_NXT_ALL));)
        keep(n);
    // Parents first, as the trie reserves for a route by its parent's length.
    std::sort(routes.begin(), routes.end(),
              [](const Route &a, const Route &b) { return a.len < b.len; });
    for (const Route &r : routes)
        if (int rc = add6(fresh, r.ip.data(), r.len, NhId(r.nh), false); rc < 0) {
            rte_fib6_free(fresh);
            return std::string("the VRF's live routes do not fit a fresh table: ") +
                   rte_strerror(-rc);
        }
    rte_fib6 *old = vrfs_[vrf].v6;
    __atomic_store_n(&vrfs_[vrf].v6, fresh, __ATOMIC_RELEASE);
    last_token_ = rte_rcu_qsbr_start(rcu_);
    counters_.grace_periods++;
    old_v6_.push_back({last_token_, old});
    counters_.v6_rebuilds++;
    counters_.v6_rebuild_ns += (rte_rdtsc() - t0) * 1000000000ull / rte_get_tsc_hz();
    return {};
}

std::string Fib::route6(const Update &u, bool add) {
    // A delete tells by its result whether the route was there (-ENOENT): only adds pay
    // for another walk of the rte_rib6 tree to know it.
    rte_fib6 *t = vrfs_[u.vrf].v6;
    const Prefix &p = u.prefix;
    const uint8_t *ip = p.addr.bytes.data();
    bool existed = !add || rte_rib6_lookup_exact(rte_fib6_get_rib(t), ip, p.len) != nullptr;
    int rc = !add      ? rte_fib6_delete(t, ip, p.len)
             : existed ? rte_fib6_add(t, ip, p.len, u.nh)
                       : add6(t, ip, p.len, u.nh, true);
    std::string why;
    if (rc == -ENOSPC && !existed) {
        why = rebuild6(u.vrf);
        if (why.empty()) rc = add6(vrfs_[u.vrf].v6, ip, p.len, u.nh, true);
    }
    if (rc == 0 && add != existed) counters_.routes_v6 += add ? 1 : -1;
    if (rc == 0 && !add) v6_deleted_ = true;
    if (rc < 0)
        return p.str() + ": " + (add ? "add" : "delete") + " failed: " + rte_strerror(-rc) +
               (why.empty() ? "" : " (" + why + ")");
    return {};
}

std::string Fib::apply(const Update &u) {
    std::string err;
    switch (u.op) {
    case Update::Op::NexthopSet:
        err = set_nexthop(u.nh, u.nexthop);
        break;
    case Update::Op::NexthopDel:
        err = del_nexthop(u.nh);
        break;
    case Update::Op::RouteAdd:
        err = route(u, true);
        break;
    case Update::Op::RouteDel:
        err = route(u, false);
        break;
    default:
        err = overlay_->apply(u);
        break;
    }
    if (err.empty())
        counters_.applied++;
    else
        counters_.failed++;
    if (!deferred_errors_.empty())
        err += (err.empty() ? "" : "; ") + std::exchange(deferred_errors_, {});
    return err;
}

} // namespace vleaf::dp
