#include "dataplane/lb_tables.hpp"

#include "dataplane/csum.hpp"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vleaf::dp {

namespace {

void set_bit(uint64_t *bits, uint32_t bit) {
    bits[bit >> 6] |= uint64_t(1) << (bit & 63);
}

} // namespace

void LbIndex::build(const std::vector<std::pair<LbKey, uint32_t>> &items) {
    uint32_t size = 8; // find() relies on a free slot
    while (size < items.size() * 2) size <<= 1;
    keys_.assign(size, LbKey{});
    vals_.assign(size, kNone);
    mask_ = size - 1;
    for (const auto &[k, v] : items) {
        uint32_t at = hash(k) & mask_;
        while (vals_[at] != kNone && !(keys_[at] == k)) at = (at + 1) & mask_;
        if (vals_[at] != kNone) continue; // the first entry of a key wins
        keys_[at] = k;
        vals_[at] = v;
    }
}

Lb::Lb(rte_rcu_qsbr *rcu, unsigned workers, const LbLimits &limits, int socket)
    : rcu_(rcu), limits_(limits), flows_(workers) {
    uint32_t buckets = 2;
    while (uint64_t{buckets} * kFlowWays < 2 * uint64_t(limits.flows_per_worker)) buckets <<= 1;
    for (unsigned w = 0; w < workers; w++) {
        LbFlows &f = flows_[w];
        f.bucket = static_cast<FlowBucket *>(
            rte_zmalloc_socket("lbflow_buckets", sizeof(FlowBucket) * buckets, 4096, socket));
        f.e6 = static_cast<FlowEntry6 *>(rte_malloc_socket(
            "lbflow_entries6", sizeof(FlowEntry6) * limits.flows_per_worker, 64, socket));
        f.free6 = static_cast<uint32_t *>(rte_malloc_socket(
            "lbflow_free6", sizeof(uint32_t) * limits.flows_per_worker, 64, socket));
        if (!f.bucket || !f.e6 || !f.free6) {
            free_flows();
            throw std::runtime_error("lb.flows_per_worker: cannot allocate " +
                                     std::to_string(limits.flows_per_worker) +
                                     " flows per worker (out of DPDK memory)");
        }
        f.mask = buckets - 1;
        f.capacity = f.nfree6 = limits.flows_per_worker;
        // Entries are handed out from the low indices first: few flows, few lines.
        for (uint32_t k = 0; k < f.capacity; k++) f.free6[k] = f.capacity - 1 - k;
        // Rounded up, plus the unit a last-seen time is truncated by: never aged early.
        const uint64_t unit = uint64_t(1) << kFlowTimeShift;
        f.timeout = uint32_t((limits.idle_timeout_s * rte_get_tsc_hz() + unit - 1) / unit + 1);
    }
    state_ = new LbState;
}

Lb::~Lb() {
    delete state_.load();
    free_flows();
}

void Lb::free_flows() {
    for (auto &f : flows_) {
        rte_free(f.bucket);
        rte_free(f.e6);
        rte_free(f.free6);
        f = {};
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
        const unsigned words = svc->v6 ? 8 : 2;
        uint16_t vip[9], to[9];
        std::memcpy(vip, svc->vip, sizeof(uint16_t) * words);
        std::memcpy(to, be.addr, sizeof(uint16_t) * words);
        vip[words] = svc->vport_be;
        to[words] = be.port_be;
        be.ip_delta = csum_delta(vip, to, words);
        be.l4_delta = csum_delta(vip, to, words + 1);
        be.reply_ip_delta = csum_delta(to, vip, words);
        be.reply_l4_delta = csum_delta(to, vip, words + 1);
        svc->backends.push_back(be);
    }
    if (s.mode == LbMode::Dnat)
        for (const auto &be : svc->backends) {
            set_bit(bport_bits_, rte_be_to_cpu_16(be.port_be));
            set_bit(baddr_bits_, addr_bit(be.addr, svc->v6));
        }
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
        vips.emplace_back(lb_key(s.vip, s.v6, live.vrf, s.vport_be, s.proto),
                          static_cast<uint32_t>(next->svc.size()));
        next->svc.push_back(&s);
        set_bit(next->vport_bits, rte_be_to_cpu_16(s.vport_be));
        set_bit(next->vaddr_bits, addr_bit(s.vip, s.v6));
    }
    std::memcpy(next->bport_bits, bport_bits_, sizeof bport_bits_);
    std::memcpy(next->baddr_bits, baddr_bits_, sizeof baddr_bits_);
    next->vips.build(vips);
    const LbState *old = state_.exchange(next.release(), std::memory_order_acq_rel);
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    delete old;
}

} // namespace vleaf::dp
