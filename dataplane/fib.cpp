#include "dataplane/fib.hpp"

#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_rib.h>
#include <rte_rib6.h>

#include <stdexcept>

namespace vleaf::dp {

namespace {
constexpr uint32_t kMaxGroups = 1 << 16;

std::string table_name(const char *what, uint32_t vrf) {
    return std::string("vleaf_") + what + std::to_string(vrf);
}
} // namespace

Fib::Fib(const std::vector<VrfSpec> &specs, rte_rcu_qsbr *rcu, int socket)
    : rcu_(rcu), overlay_(std::make_unique<Overlay>(rcu, socket)) {
    uint32_t n_vrfs = 0;
    for (auto &s : specs) n_vrfs = std::max(n_vrfs, s.id + 1);
    vrfs_.resize(n_vrfs);
    for (auto &s : specs) {
        auto &t = vrfs_[s.id];
        rte_fib_conf c4{};
        c4.type = RTE_FIB_DIR24_8;
        c4.default_nh = kNhNoRoute;
        c4.max_routes = static_cast<int>(s.max_v4);
        c4.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
        // A group per /24 holding longer prefixes: 1/8 of the routes covers Internet-like
        // tables; a table of only /26 pod blocks needs 1/4 (raise max_routes_v4 for that).
        c4.dir24_8.num_tbl8 = std::max<uint32_t>(1024, s.max_v4 / 8);
        auto n4 = table_name("fib4_", s.id);
        t.v4 = rte_fib_create(n4.c_str(), socket, &c4);
        if (!t.v4)
            throw std::runtime_error("vrf " + std::to_string(s.id) +
                                     ": rte_fib_create: " + rte_strerror(rte_errno));

        rte_fib6_conf c6{};
        c6.type = RTE_FIB6_TRIE;
        c6.default_nh = kNhNoRoute;
        c6.max_routes = static_cast<int>(s.max_v6);
        c6.trie.nh_sz = RTE_FIB6_TRIE_4B;
        c6.trie.num_tbl8 = std::max<uint32_t>(1024, s.max_v6);
        auto n6 = table_name("fib6_", s.id);
        t.v6 = rte_fib6_create(n6.c_str(), socket, &c6);
        if (!t.v6)
            throw std::runtime_error("vrf " + std::to_string(s.id) +
                                     ": rte_fib6_create: " + rte_strerror(rte_errno));
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
    for (auto &t : vrfs_) {
        rte_fib_free(t.v4);
        rte_fib6_free(t.v6);
    }
    rte_free(nh_);
    rte_free(groups_);
}

void Fib::set_port_mac(uint16_t port, const rte_ether_addr &mac) {
    if (counters_.nexthops)
        throw std::logic_error("Fib::set_port_mac after next hops were set: they keep the old MAC");
    port_mac_.at(port) = mac;
}

void Fib::quiesce() {
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    deleted_since_quiesce_ = false;
}

void Fib::before_add() {
    if (deleted_since_quiesce_) quiesce();
}

uint32_t Fib::alloc_group() {
    if (free_groups_.empty()) return UINT32_MAX;
    uint32_t g = free_groups_.back();
    free_groups_.pop_back();
    counters_.ecmp_groups++;
    return g;
}

std::string Fib::set_nexthop(NhId id, const Nexthop &n) {
    if (id < kFirstDynamicNh || id >= kMaxNh)
        return "next hop id " + std::to_string(id) + " out of range";
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
    if (n.kind == NhKind::Ecmp) {
        if (n.n_members == 0 || n.n_members > kMaxEcmp) return "ECMP group needs 1..16 members";
        for (unsigned i = 0; i < n.n_members; i++)
            if (n.members[i] >= kMaxNh || !nh_used_[n.members[i]])
                return "ECMP member " + std::to_string(n.members[i]) + " is not a next hop";
        // A new group slot, published with the next hop; workers may still read the old one.
        uint32_t g = alloc_group();
        if (g == UINT32_MAX) return "out of ECMP groups";
        for (unsigned i = 0; i < kMaxEcmp; i++) groups_[g].members[i] = n.members[i % n.n_members];
        next.set_group(g);
        next.n_members = n.n_members;
    }
    if (!nh_used_[id]) counters_.nexthops++;
    nh_used_[id] = 1;
    nh_store(&nh_[id], next);
    if (old.kind == NhKind::Ecmp) {
        quiesce();
        free_groups_.push_back(old.group());
        counters_.ecmp_groups--;
    }
    return {};
}

std::string Fib::del_nexthop(NhId id) {
    if (id < kFirstDynamicNh || id >= kMaxNh || !nh_used_[id])
        return "next hop " + std::to_string(id) + " does not exist";
    Nh old = nh_load(&nh_[id]);
    Nh gone{};
    gone.kind = NhKind::NoRoute;
    nh_store(&nh_[id], gone);
    // The id may be reused as soon as this returns: no worker may still hold it.
    quiesce();
    if (old.kind == NhKind::Ecmp) {
        free_groups_.push_back(old.group());
        counters_.ecmp_groups--;
    }
    nh_used_[id] = 0;
    counters_.nexthops--;
    return {};
}

std::string Fib::route(const Update &u, bool add) {
    if (u.vrf >= vrfs_.size() || !vrfs_[u.vrf].v4) return "no VRF " + std::to_string(u.vrf);
    if (add && (u.nh >= kMaxNh || !nh_used_[u.nh]))
        return u.prefix.str() + ": next hop " + std::to_string(u.nh) + " does not exist";
    auto &t = vrfs_[u.vrf];
    const auto &p = u.prefix;
    int rc;
    bool existed;
    if (add) before_add();
    if (p.addr.is_v4()) {
        uint32_t ip = p.addr.v4_host();
        existed = rte_rib_lookup_exact(rte_fib_get_rib(t.v4), ip, p.len) != nullptr;
        rc = add ? rte_fib_add(t.v4, ip, p.len, u.nh) : rte_fib_delete(t.v4, ip, p.len);
        if (rc == 0 && add != existed) counters_.routes_v4 += add ? 1 : -1;
    } else {
        existed =
            rte_rib6_lookup_exact(rte_fib6_get_rib(t.v6), p.addr.bytes.data(), p.len) != nullptr;
        rc = add ? rte_fib6_add(t.v6, p.addr.bytes.data(), p.len, u.nh)
                 : rte_fib6_delete(t.v6, p.addr.bytes.data(), p.len);
        if (rc == 0 && add != existed) counters_.routes_v6 += add ? 1 : -1;
    }
    if (rc == 0 && !add) deleted_since_quiesce_ = true;
    if (rc < 0) return p.str() + ": " + (add ? "add" : "delete") + " failed: " + rte_strerror(-rc);
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
    return err;
}

} // namespace vleaf::dp
