#include "dataplane/lb_tables.hpp"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vleaf::dp {

namespace {

uint32_t hash_key(const LbKey &k) {
    return rte_hash_crc(&k, sizeof k, 0);
}

void set_bit(uint64_t *bits, uint16_t port) {
    bits[port >> 6] |= uint64_t(1) << (port & 63);
}

} // namespace

void LbIndex::build(const std::vector<std::pair<LbKey, uint32_t>> &items) {
    uint32_t size = 8;
    while (size < items.size() * 2) size <<= 1;
    keys_.assign(size, LbKey{});
    vals_.assign(size, kNone);
    mask_ = size - 1;
    for (const auto &[k, v] : items) {
        uint32_t at = hash_key(k) & mask_;
        while (vals_[at] != kNone && std::memcmp(&keys_[at], &k, sizeof k) != 0)
            at = (at + 1) & mask_;
        if (vals_[at] != kNone) continue; // the first entry of a key wins
        keys_[at] = k;
        vals_[at] = v;
    }
}

uint32_t LbIndex::find(const LbKey &k) const {
    if (vals_.empty()) return kNone;
    for (uint32_t at = hash_key(k) & mask_;; at = (at + 1) & mask_) {
        if (vals_[at] == kNone) return kNone;
        if (std::memcmp(&keys_[at], &k, sizeof k) == 0) return vals_[at];
    }
}

Lb::Lb(rte_rcu_qsbr *rcu, unsigned workers, const LbLimits &limits, int socket)
    : rcu_(rcu), limits_(limits), flows_(workers) {
    static std::atomic<unsigned> serial{0};
    for (unsigned w = 0; w < workers; w++) {
        LbFlows &f = flows_[w];
        std::string name = "lbflows" + std::to_string(serial++);
        rte_hash_parameters p{};
        p.name = name.c_str();
        p.entries = limits.flows_per_worker;
        p.key_len = sizeof(FlowKey);
        p.hash_func = rte_hash_crc;
        p.socket_id = socket;
        // Extendable buckets: the table holds exactly `entries` flows whatever their hashes.
        p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
        f.h = rte_hash_create(&p);
        f.capacity = limits.flows_per_worker;
        f.e = static_cast<FlowEntry *>(
            rte_zmalloc_socket("lbflow_entries", sizeof(FlowEntry) * f.capacity, 64, socket));
        if (!f.h || !f.e) {
            for (auto &x : flows_) {
                rte_hash_free(x.h);
                rte_free(x.e);
            }
            throw std::runtime_error("lb.flows_per_worker: cannot allocate " +
                                     std::to_string(limits.flows_per_worker) +
                                     " flows per worker (out of DPDK memory)");
        }
        f.timeout = uint64_t(limits.idle_timeout_s) * rte_get_tsc_hz();
    }
    state_ = new LbState;
}

Lb::~Lb() {
    delete state_.load();
    for (auto &f : flows_) {
        rte_hash_free(f.h);
        rte_free(f.e);
    }
}

void Lb::set(uint32_t id, uint32_t vrf, const Service &s, const std::vector<uint32_t> &table) {
    auto svc = std::make_unique<LbService>();
    svc->id = id;
    svc->v6 = !s.vip.is_v4();
    svc->proto = s.proto;
    svc->mode = s.mode;
    svc->vport_be = rte_cpu_to_be_16(s.port);
    std::memcpy(svc->vip, s.vip.bytes.data(), 16);
    std::memcpy(svc->encap_src, s.encap_source.bytes.data(), 16);
    svc->table_size = static_cast<uint32_t>(table.size());
    svc->table = table;
    for (const auto &b : s.backends) {
        LbBackend be{};
        std::memcpy(be.addr, b.addr.bytes.data(), 16);
        const IpAddr &node = b.node.is_unspecified() ? b.addr : b.node;
        std::memcpy(be.node, node.bytes.data(), 16);
        be.port_be = rte_cpu_to_be_16(b.port);
        svc->backends.push_back(be);
    }
    if (s.mode == LbMode::Dnat)
        for (const auto &be : svc->backends) set_bit(bport_bits_, rte_be_to_cpu_16(be.port_be));
    std::unique_ptr<LbService> old;
    if (auto it = live_.find(id); it != live_.end()) old = std::move(it->second.svc);
    live_[id] = Live{vrf, std::move(svc)};
    publish();
    // `old` is freed here, after publish() waited for the grace period.
}

void Lb::del(uint32_t id) {
    auto it = live_.find(id);
    if (it == live_.end()) return;
    std::unique_ptr<LbService> old = std::move(it->second.svc);
    live_.erase(it);
    publish();
}

void Lb::publish() {
    auto next = std::make_unique<LbState>();
    std::vector<std::pair<LbKey, uint32_t>> vips;
    for (const auto &[id, live] : live_) {
        const LbService &s = *live.svc;
        vips.push_back({lb_key(s.vip, live.vrf, s.vport_be, s.proto, s.v6),
                        static_cast<uint32_t>(next->svc.size())});
        next->svc.push_back(&s);
        set_bit(next->vport_bits, rte_be_to_cpu_16(s.vport_be));
    }
    std::memcpy(next->bport_bits, bport_bits_, sizeof bport_bits_);
    next->vips.build(vips);
    const LbState *old = state_.exchange(next.release(), std::memory_order_acq_rel);
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    delete old;
}

} // namespace vleaf::dp
