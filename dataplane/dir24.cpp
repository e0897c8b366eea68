#include "dataplane/dir24.hpp"

#include "vleaf/huge_pages.hpp"

#include <rte_eal.h>
#include <rte_malloc.h>

#include <bit>
#include <cerrno>
#include <stdexcept>

namespace vleaf::dp {

namespace {
uint32_t mask(unsigned len) {
    return len ? ~uint32_t(0) << (32 - len) : 0;
}
} // namespace

Dir24::Dir24(uint32_t max_rules, uint32_t tbl8_groups, rte_rcu_qsbr *rcu, int socket)
    : n_groups_(tbl8_groups), max_rules_(max_rules), huge_(rte_eal_has_hugepages() != 0), rcu_(rcu),
      rules_(max_rules), group_rules_(tbl8_groups), group_base_(tbl8_groups) {
    if (tbl8_groups >= uint32_t(1) << (32 - kGroupShift))
        throw std::invalid_argument("DIR-24-8: too many tbl8 groups");
    tbl24_ = alloc_table("vleaf_tbl24", size_t(1) << 24, socket);
    tbl8_ = alloc_table("vleaf_tbl8", size_t(256) * tbl8_groups, socket);
    if (!tbl24_ || !tbl8_) {
        free_table(tbl24_, size_t(1) << 24);
        free_table(tbl8_, size_t(256) * tbl8_groups);
        throw std::runtime_error("DIR-24-8 tables: out of memory");
    }
    free_.reserve(tbl8_groups);
    for (uint32_t g = tbl8_groups; g-- > 0;) free_.push_back(g);
}

Dir24::~Dir24() {
    free_table(tbl24_, size_t(1) << 24);
    free_table(tbl8_, size_t(256) * n_groups_);
}

// Without hugepages (--no-huge) EAL's memory is a shared memfd in 4 KiB pages, which
// transparent huge pages do not back (shmem_enabled is "never" by default): every
// random tbl24 or tbl8 access of the writer and the workers then also misses the TLB. An
// anonymous mapping of our own gets transparent huge pages there.
uint32_t *Dir24::alloc_table(const char *name, size_t entries, int socket) const {
    if (huge_)
        return static_cast<uint32_t *>(
            rte_zmalloc_socket(name, sizeof(uint32_t) * entries, 64, socket));
    try {
        // tbl24 is a mapping of its own, which the kernel zeroes; tbl8 groups are written
        // whole before use.
        static_assert(sizeof(uint32_t) << 24 >= HugePageAllocator<uint32_t>::kHugePage);
        return HugePageAllocator<uint32_t>{}.allocate(entries);
    } catch (const std::bad_alloc &) {
        return nullptr;
    }
}

void Dir24::free_table(uint32_t *t, size_t entries) const {
    if (!t) return;
    if (huge_)
        rte_free(t);
    else
        HugePageAllocator<uint32_t>{}.deallocate(t, entries);
}

void Dir24::count_depth(unsigned len, int delta) {
    depth_rules_[len] += delta;
    if (depth_rules_[len])
        depths_ |= uint64_t(1) << len;
    else
        depths_ &= ~(uint64_t(1) << len);
}

uint32_t Dir24::covering(uint32_t ip, unsigned len, unsigned lo) const {
    uint64_t cand = depths_ & ((uint64_t(1) << len) - 1) & ~((uint64_t(1) << lo) - 1);
    // The probes are independent: their cache misses overlap.
    for (uint64_t c = cand; c; c &= c - 1) {
        unsigned d = unsigned(std::countr_zero(c));
        rules_.prefetch(ip & mask(d), uint8_t(d));
    }
    while (cand) {
        unsigned d = 63 - unsigned(std::countl_zero(cand));
        NhId nh;
        if (rules_.find(ip & mask(d), uint8_t(d), nh)) return entry(nh, d);
        cand &= ~(uint64_t(1) << d);
    }
    return 0;
}

void Dir24::prefetch(uint32_t ip, uint8_t len, bool add) const {
    if (len > 32) return;
    ip &= mask(len);
    __builtin_prefetch(&tbl24_[ip >> 8], 1);
    rules_.prefetch(ip, len);
    if (add) return;
    // The covering rule a delete puts back: the probes of covering().
    unsigned lo = len > 24 ? 25 : 0;
    uint64_t cand = depths_ & ((uint64_t(1) << len) - 1) & ~((uint64_t(1) << lo) - 1);
    for (; cand; cand &= cand - 1) {
        unsigned d = unsigned(std::countr_zero(cand));
        rules_.prefetch(ip & mask(d), uint8_t(d));
    }
}

template <class Replace>
void Dir24::write24(uint32_t first, uint32_t count, uint32_t e, Replace replace) {
    for (uint32_t i = first; i < first + count; i++) {
        uint32_t cur = tbl24_[i];
        if (!(cur & kExt)) {
            if (replace(depth_of(cur))) store(&tbl24_[i], e);
            continue;
        }
        uint32_t g = group_of(cur);
        if (replace(depth_of(group_base_[g]))) group_base_[g] = e;
        uint32_t *t8 = &tbl8_[size_t(g) << 8];
        for (unsigned k = 0; k < 256; k++)
            if (replace(depth_of(t8[k]))) store(&t8[k], e);
    }
}

uint32_t Dir24::alloc_group() {
    if (free_.empty()) {
        // Whatever finished its grace period; failing that, wait for the oldest.
        bool wait = true;
        while (!retired_.empty() && rte_rcu_qsbr_check(rcu_, retired_.front().token, wait) == 1) {
            free_.push_back(retired_.front().group);
            retired_.pop_front();
            wait = false;
        }
        if (free_.empty()) return UINT32_MAX;
    }
    uint32_t g = free_.back();
    free_.pop_back();
    return g;
}

void Dir24::retire_group(uint32_t g) {
    retired_.push_back({rte_rcu_qsbr_start(rcu_), g});
}

int Dir24::add(uint32_t ip, uint8_t len, NhId nh) {
    if (len > 32) return -EINVAL;
    ip &= mask(len);
    NhId old;
    bool fresh = !rules_.find(ip, len, old);
    if (fresh && rules_.size() >= max_rules_) return -ENOSPC;
    uint32_t e = entry(nh, len);
    if (len <= 24) {
        write24(ip >> 8, uint32_t(1) << (24 - len), e, [len](unsigned d) { return d <= len; });
    } else {
        uint32_t i = ip >> 8, first = ip & 0xff, last = first + (uint32_t(1) << (32 - len));
        uint32_t cur = tbl24_[i];
        uint32_t g;
        if (cur & kExt) {
            g = group_of(cur);
            uint32_t *t8 = &tbl8_[size_t(g) << 8];
            for (uint32_t k = first; k < last; k++)
                if (depth_of(t8[k]) <= len) store(&t8[k], e);
        } else {
            g = alloc_group();
            if (g == UINT32_MAX) return -ENOSPC;
            uint32_t *t8 = &tbl8_[size_t(g) << 8];
            for (uint32_t k = 0; k < 256; k++) store(&t8[k], k >= first && k < last ? e : cur);
            group_base_[g] = cur;
            group_rules_[g] = 0;
            // The group is complete before any worker can reach it.
            __atomic_store_n(&tbl24_[i], ext_entry(g), __ATOMIC_RELEASE);
        }
        group_rules_[g] += fresh;
    }
    rules_.set(ip, len, nh);
    if (fresh) count_depth(len, 1);
    return fresh;
}

int Dir24::del(uint32_t ip, uint8_t len) {
    if (len > 32) return -EINVAL;
    ip &= mask(len);
    if (!rules_.erase(ip, len)) return -ENOENT;
    count_depth(len, -1);
    if (len <= 24) {
        uint32_t e = covering(ip, len, 0);
        write24(ip >> 8, uint32_t(1) << (24 - len), e, [len](unsigned d) { return d == len; });
        return 0;
    }
    uint32_t i = ip >> 8;
    uint32_t g = group_of(tbl24_[i]);
    if (--group_rules_[g] == 0) {
        // Only the /24's covering rule is left in the group: the tbl24 entry takes it.
        store(&tbl24_[i], group_base_[g]);
        retire_group(g);
        return 0;
    }
    uint32_t e = covering(ip, len, 25);
    if (!e) e = group_base_[g];
    uint32_t *t8 = &tbl8_[size_t(g) << 8];
    for (uint32_t k = ip & 0xff, last = k + (uint32_t(1) << (32 - len)); k < last; k++)
        if (depth_of(t8[k]) == len) store(&t8[k], e);
    return 0;
}

} // namespace vleaf::dp
