#include "dataplane/overlay.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <cstring>
#include <stdexcept>

namespace vleaf::dp {

namespace {
constexpr unsigned kLearnRing = 4096;

std::string bd_name(uint16_t bd) {
    return "bridge domain " + std::to_string(bd);
}

// RemoteVtep::outer and sum4 for a VTEP of family `v6` at v.addr.
void build_outer(RemoteVtep &v, bool v6, const VxlanParams &p) {
    uint8_t *h = v.outer;
    std::memset(h, 0, sizeof v.outer);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(h);
    eth->ether_type = rte_cpu_to_be_16(v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    rte_udp_hdr *udp;
    if (!v6) {
        auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->fragment_offset = p.df ? rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG) : 0;
        ip->time_to_live = p.ttl;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = p.src4;
        std::memcpy(&ip->dst_addr, v.addr, 4);
        // Length, identification and checksum are 0 here; the sum of the byte-swapped
        // words is the byte-swapped sum.
        uint32_t sum = rte_be_to_cpu_16(rte_raw_cksum(ip, sizeof *ip)) + kGrows4;
        v.sum4 = static_cast<uint16_t>((sum & 0xffff) + (sum >> 16));
        udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    } else {
        auto *ip = reinterpret_cast<rte_ipv6_hdr *>(eth + 1);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = p.ttl;
        std::memcpy(ip->src_addr, p.src6, 16);
        std::memcpy(ip->dst_addr, v.addr, 16);
        udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    }
    udp->dst_port = p.port_be;
    reinterpret_cast<VxlanHdr *>(udp + 1)->flags = rte_cpu_to_be_32(kVxlanFlagI);
}
} // namespace

Overlay::Overlay(rte_rcu_qsbr *rcu, int socket, uint32_t mac_entries) : rcu_(rcu), socket_(socket) {
    static unsigned instance = 0;
    std::string tag = std::to_string(instance++);
    vteps_ = static_cast<RemoteVtep *>(
        rte_zmalloc_socket("vleaf_vteps", sizeof(RemoteVtep) * kMaxVtep, 64, socket));
    vni_ = static_cast<uint64_t *>(
        rte_zmalloc_socket("vleaf_vnis", sizeof(uint64_t) * kVniSlots, 64, socket));
    bds_ = static_cast<BridgeDomain *>(
        rte_zmalloc_socket("vleaf_bds", sizeof(BridgeDomain) * kMaxBd, 64, socket));
    slots_ = static_cast<MacSlot *>(
        rte_zmalloc_socket("vleaf_macs", sizeof(MacSlot) * mac_entries, 64, socket));
    if (!vteps_ || !vni_ || !bds_ || !slots_)
        throw std::runtime_error("overlay tables: out of DPDK memory");
    std::string hname = "vleaf_mac" + tag;
    rte_hash_parameters hp{};
    hp.name = hname.c_str();
    hp.entries = mac_entries;
    hp.key_len = sizeof(uint64_t);
    hp.hash_func = rte_hash_crc;
    hp.socket_id = socket;
    // Lock-free readers with one writer; deleted keys are freed after a grace period.
    hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
    mac_hash_ = rte_hash_create(&hp);
    std::string rname = "vleaf_learn" + tag;
    learn_ =
        rte_ring_create_elem(rname.c_str(), sizeof(LearnMsg), kLearnRing, socket, RING_F_SC_DEQ);
    if (!mac_hash_ || !learn_)
        throw std::runtime_error(std::string("MAC table: ") + rte_strerror(rte_errno));
    free_slots_.reserve(mac_entries);
    for (uint32_t s = mac_entries; s-- > 0;) free_slots_.push_back(s);
}

Overlay::~Overlay() {
    for (auto *a : access_) rte_free(a);
    rte_hash_free(mac_hash_);
    rte_ring_free(learn_);
    rte_free(vteps_);
    rte_free(vni_);
    rte_free(bds_);
    rte_free(slots_);
}

std::string Overlay::vtep_set(const Update &u) {
    if (u.ov.vtep >= kMaxVtep) return "VTEP id " + std::to_string(u.ov.vtep) + " out of range";
    if (u.nh >= kMaxNh) return "VTEP " + u.ov.addr.str() + ": bad underlay next hop";
    RemoteVtep &v = vteps_[u.ov.vtep];
    if (v.family) {
        // Its route moved: the new underlay next hop, one store.
        if (std::memcmp(v.addr, u.ov.addr.bytes.data(), 16) != 0)
            return "VTEP id " + std::to_string(u.ov.vtep) + " is already in use";
        __atomic_store_n(&v.underlay, u.nh, __ATOMIC_RELEASE);
        return {};
    }
    if (u.ov.addr.is_v4() ? !params_.has4 : !params_.has6)
        return "VTEP " + u.ov.addr.str() + ": no local VTEP address of its family";
    v.underlay = u.nh;
    std::memcpy(v.addr, u.ov.addr.bytes.data(), 16);
    build_outer(v, !u.ov.addr.is_v4(), params_);
    __atomic_store_n(&v.family, uint8_t(u.ov.addr.is_v4() ? 4 : 6), __ATOMIC_RELEASE);
    counters_.vteps++;
    return {};
}

std::string Overlay::vni_set(const Update &u) {
    uint32_t vni = u.ov.vni;
    if (vni == 0 || vni > kMaxVni) return "VNI " + std::to_string(vni) + " out of range";
    if (u.l3 && u.ov.vrf >= 256) return "VRF " + std::to_string(u.ov.vrf) + " out of range";
    if (!u.l3 && (u.ov.bd >= kMaxBd || !bds_[u.ov.bd].used))
        return "VNI " + std::to_string(vni) + ": no " + bd_name(u.ov.bd);
    uint64_t slot = kVniValid | uint64_t(vni) << 32 | (u.l3 ? kVniL3 | u.ov.vrf : u.ov.bd);
    if (u.l3) std::memcpy(rmac_[u.ov.vrf].addr_bytes, u.ov.mac.bytes.data(), 6);
    unsigned h = vni_hash(vni), free_at = kVniSlots;
    for (unsigned p = 0; p < kVniProbes; p++, h = (h + 1) % kVniSlots) {
        uint64_t s = vni_[h];
        if ((s & kVniValid) && uint32_t(s >> 32 & 0xffffff) == vni) {
            __atomic_store_n(&vni_[h], slot, __ATOMIC_RELEASE);
            return {};
        }
        if (!(s & kVniValid) && free_at == kVniSlots) free_at = h;
        if (s == 0) break;
    }
    if (free_at == kVniSlots) return "VNI " + std::to_string(vni) + ": VNI table crowded";
    __atomic_store_n(&vni_[free_at], slot, __ATOMIC_RELEASE);
    counters_.vnis++;
    return {};
}

std::string Overlay::vni_del(uint32_t vni) {
    for (unsigned p = 0, h = vni_hash(vni); p < kVniProbes; p++, h = (h + 1) % kVniSlots) {
        uint64_t s = vni_[h];
        if (s == 0) break;
        if ((s & kVniValid) && uint32_t(s >> 32 & 0xffffff) == vni) {
            // A tombstone (non-zero, not valid) keeps later probes going.
            __atomic_store_n(&vni_[h], uint64_t(1), __ATOMIC_RELEASE);
            counters_.vnis--;
            return {};
        }
    }
    return "VNI " + std::to_string(vni) + " is not mapped";
}

std::string Overlay::bd_set(const Update &u) {
    if (u.ov.bd >= kMaxBd) return bd_name(u.ov.bd) + " out of range";
    BridgeDomain &b = bds_[u.ov.bd];
    if (!b.used) counters_.bds++;
    b.vni = u.ov.vni;
    b.vrf = u.ov.vrf;
    std::memcpy(b.gw_mac.addr_bytes, u.ov.mac.bytes.data(), 6);
    b.has_gw = !u.ov.mac.is_zero();
    __atomic_store_n(&b.used, uint8_t(1), __ATOMIC_RELEASE);
    return {};
}

std::string Overlay::flood(const Update &u, bool add) {
    if (u.ov.bd >= kMaxBd || !bds_[u.ov.bd].used) return "no " + bd_name(u.ov.bd);
    if (u.ov.vtep >= kMaxVtep || !vteps_[u.ov.vtep].family)
        return "flood list: no VTEP " + std::to_string(u.ov.vtep);
    BridgeDomain &b = bds_[u.ov.bd];
    for (uint16_t k = 0; k < b.n_flood; k++) {
        if (b.flood[k] != u.ov.vtep) continue;
        if (add) return {};
        b.flood[k] = b.flood[b.n_flood - 1];
        __atomic_store_n(&b.n_flood, uint16_t(b.n_flood - 1), __ATOMIC_RELEASE);
        return {};
    }
    if (!add) return "VTEP " + std::to_string(u.ov.vtep) + " is not in the flood list";
    if (b.n_flood == kMaxFlood) return bd_name(u.ov.bd) + ": flood list full";
    b.flood[b.n_flood] = u.ov.vtep;
    __atomic_store_n(&b.n_flood, uint16_t(b.n_flood + 1), __ATOMIC_RELEASE);
    return {};
}

std::string Overlay::access_set(const Update &u, bool add) {
    if (u.ov.port >= RTE_MAX_ETHPORTS || u.ov.vlan > 4094) return "bad access port or VLAN";
    if (u.ov.bd >= kMaxBd || !bds_[u.ov.bd].used) return "no " + bd_name(u.ov.bd);
    BridgeDomain &b = bds_[u.ov.bd];
    uint16_t *&map = access_[u.ov.port];
    if (!map) {
        auto *m = static_cast<uint16_t *>(
            rte_zmalloc_socket("vleaf_access", sizeof(uint16_t) * 4096, 64, socket_));
        if (!m) return "access map: out of DPDK memory";
        __atomic_store_n(&map, m, __ATOMIC_RELEASE);
    }
    unsigned at = b.n_local;
    for (unsigned k = 0; k < b.n_local; k++)
        if (b.local[k].port == u.ov.port && b.local[k].vlan == u.ov.vlan) at = k;
    if (add) {
        if (at == b.n_local) {
            if (at == kMaxLocalPorts) return bd_name(u.ov.bd) + ": too many access ports";
            b.local[at] = AccessRef{u.ov.port, u.ov.vlan};
            __atomic_store_n(&b.n_local, uint16_t(at + 1), __ATOMIC_RELEASE);
        }
        __atomic_store_n(&map[u.ov.vlan], uint16_t(u.ov.bd + 1), __ATOMIC_RELEASE);
        return {};
    }
    __atomic_store_n(&map[u.ov.vlan], uint16_t(0), __ATOMIC_RELEASE);
    if (at == b.n_local)
        return "port " + std::to_string(u.ov.port) + " is not in " + bd_name(u.ov.bd);
    b.local[at] = b.local[b.n_local - 1];
    __atomic_store_n(&b.n_local, uint16_t(b.n_local - 1), __ATOMIC_RELEASE);
    return {};
}

std::string Overlay::mac_set(const Update &u) {
    if (u.ov.bd >= kMaxBd || !bds_[u.ov.bd].used) return "no " + bd_name(u.ov.bd);
    if (u.ov.dest.kind == MacDest::Kind::Remote &&
        (u.ov.dest.vtep >= kMaxVtep || !vteps_[u.ov.dest.vtep].family))
        return u.ov.mac.str() + ": no VTEP " + std::to_string(u.ov.dest.vtep);
    uint64_t key = mac_key(u.ov.bd, u.ov.mac.bytes.data());
    uint64_t dest = mac_dest::pack(u.ov.dest);
    uint32_t now = uint32_t(rte_rdtsc() >> kSeenShift);
    auto it = mac_shadow_.find(key);
    if (it != mac_shadow_.end()) {
        Shadow &s = it->second;
        if ((s.dest & mac_dest::kStatic) && !u.ov.dest.is_static) {
            counters_.learn_static_conflicts++;
            return {};
        }
        if ((s.dest & ~mac_dest::kStatic) != (dest & ~mac_dest::kStatic)) counters_.mac_moves++;
        s.dest = dest;
        __atomic_store_n(&slots_[s.slot].seen, now, __ATOMIC_RELAXED);
        __atomic_store_n(&slots_[s.slot].dest, dest, __ATOMIC_RELEASE);
        return {};
    }
    if (free_slots_.empty()) return u.ov.mac.str() + ": MAC table full";
    uint32_t slot = free_slots_.back();
    slots_[slot].seen = now;
    __atomic_store_n(&slots_[slot].dest, dest, __ATOMIC_RELEASE);
    int rc = rte_hash_add_key_data(mac_hash_, &key, reinterpret_cast<void *>(uintptr_t(slot)));
    if (rc < 0) return u.ov.mac.str() + ": MAC table: " + rte_strerror(-rc);
    free_slots_.pop_back();
    mac_shadow_[key] = Shadow{dest, slot};
    counters_.macs++;
    if (!u.ov.dest.is_static) counters_.macs_learned++;
    return {};
}

std::string Overlay::mac_del(uint64_t key) {
    auto it = mac_shadow_.find(key);
    if (it == mac_shadow_.end()) return "no such MAC";
    int32_t pos = rte_hash_del_key(mac_hash_, &key);
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    if (pos >= 0) rte_hash_free_key_with_position(mac_hash_, pos);
    free_slots_.push_back(it->second.slot);
    mac_shadow_.erase(it);
    counters_.macs--;
    return {};
}

unsigned Overlay::age(uint64_t now_tsc, uint64_t max_age, std::vector<uint64_t> *aged) {
    uint32_t now = uint32_t(now_tsc >> kSeenShift);
    uint32_t limit = uint32_t(max_age >> kSeenShift);
    unsigned n = remove_macs(
        [&](const Shadow &s) {
            if (s.dest & mac_dest::kStatic) return false;
            return uint32_t(now - __atomic_load_n(&slots_[s.slot].seen, __ATOMIC_RELAXED)) > limit;
        },
        aged);
    counters_.macs_aged += n;
    return n;
}

unsigned Overlay::remove_macs(const std::function<bool(const Shadow &)> &which,
                              std::vector<uint64_t> *removed) {
    std::vector<std::pair<uint64_t, int32_t>> gone;
    for (auto &[key, s] : mac_shadow_)
        if (which(s)) gone.emplace_back(key, rte_hash_del_key(mac_hash_, &key));
    if (gone.empty()) return 0;
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID); // one grace period for all
    for (auto &[key, pos] : gone) {
        if (pos >= 0) rte_hash_free_key_with_position(mac_hash_, pos);
        auto it = mac_shadow_.find(key);
        free_slots_.push_back(it->second.slot);
        mac_shadow_.erase(it);
        if (removed) removed->push_back(key);
    }
    counters_.macs -= gone.size();
    return unsigned(gone.size());
}

unsigned Overlay::drain_learned(LearnMsg *out, unsigned max) {
    return rte_ring_dequeue_burst_elem(learn_, out, sizeof(LearnMsg), max, nullptr);
}

std::vector<Overlay::MacView> Overlay::mac_table(uint64_t now_tsc) const {
    std::vector<MacView> out;
    uint32_t now = uint32_t(now_tsc >> kSeenShift);
    for (auto &[key, s] : mac_shadow_) {
        MacView v;
        v.bd = uint16_t(key >> 48);
        for (int i = 0; i < 6; i++) v.mac.bytes[i] = uint8_t(key >> (40 - 8 * i));
        v.dest.kind = (s.dest & mac_dest::kRemote) ? MacDest::Kind::Remote : MacDest::Kind::Local;
        v.dest.is_static = s.dest & mac_dest::kStatic;
        v.dest.port = mac_dest::port(s.dest);
        v.dest.vlan = mac_dest::vlan(s.dest);
        v.dest.vtep = mac_dest::vtep(s.dest);
        uint32_t seen = __atomic_load_n(&slots_[s.slot].seen, __ATOMIC_RELAXED);
        v.idle_tsc = uint64_t(uint32_t(now - seen)) << kSeenShift;
        out.push_back(v);
    }
    return out;
}

std::string Overlay::apply(const Update &u) {
    using Op = Update::Op;
    switch (u.op) {
    case Op::VtepSet:
        return vtep_set(u);
    case Op::VtepDel: {
        if (u.ov.vtep >= kMaxVtep || !vteps_[u.ov.vtep].family)
            return "no VTEP " + std::to_string(u.ov.vtep);
        __atomic_store_n(&vteps_[u.ov.vtep].family, uint8_t(0), __ATOMIC_RELEASE);
        // MACs learned behind it go with it (static ones went before, from the control
        // plane); the id may name another VTEP after the grace period.
        counters_.macs_flushed += remove_macs([&](const Shadow &s) {
            return (s.dest & mac_dest::kRemote) && mac_dest::vtep(s.dest) == u.ov.vtep;
        });
        rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
        counters_.vteps--;
        return {};
    }
    case Op::VniSet:
        return vni_set(u);
    case Op::VniDel:
        return vni_del(u.ov.vni);
    case Op::BdSet:
        return bd_set(u);
    case Op::BdDel: {
        if (u.ov.bd >= kMaxBd || !bds_[u.ov.bd].used) return "no " + bd_name(u.ov.bd);
        BridgeDomain &b = bds_[u.ov.bd];
        if (b.n_local || b.n_flood) return bd_name(u.ov.bd) + " still has ports or a flood list";
        __atomic_store_n(&b.used, uint8_t(0), __ATOMIC_RELEASE);
        counters_.bds--;
        return {};
    }
    case Op::FloodAdd:
    case Op::FloodDel:
        return flood(u, u.op == Op::FloodAdd);
    case Op::AccessSet:
    case Op::AccessDel:
        return access_set(u, u.op == Op::AccessSet);
    case Op::MacSet:
        return mac_set(u);
    case Op::MacDel:
        return mac_del(mac_key(u.ov.bd, u.ov.mac.bytes.data()));
    default:
        return "not an overlay update";
    }
}

} // namespace vleaf::dp
