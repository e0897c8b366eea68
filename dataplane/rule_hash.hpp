// The IPv4 rule store of the table writer: prefix/length -> next hop, in one open-addressed
// hash (linear probing, backward-shift deletion, no tombstones). A rule is found, added
// or removed in about one cache miss, where rte_rib walks a tree of up to 32 levels with
// a miss per level. Writer only: workers never read it.
#pragma once

#include "vleaf/huge_pages.hpp"
#include "vleaf/update.hpp"

#include <bit>
#include <cstdint>
#include <vector>

namespace vleaf::dp {

class RuleHash {
  public:
    // Holds up to `max_rules` rules at a load of at most 2/3.
    explicit RuleHash(uint32_t max_rules)
        : slots_(std::bit_ceil(std::max<uint64_t>(64, uint64_t(max_rules) * 3 / 2))),
          mask_(slots_.size() - 1), shift_(64 - std::countr_zero(slots_.size())) {}

    uint32_t size() const { return size_; }

    // Brings the slot where the rule would start its probe into the cache.
    void prefetch(uint32_t ip, uint8_t len) const {
        __builtin_prefetch(&slots_[home(key(ip, len))]);
    }

    // The rule's next hop, or false.
    bool find(uint32_t ip, uint8_t len, NhId &nh) const {
        uint64_t k = key(ip, len);
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            uint64_t s = slots_[i];
            if (s == 0) return false;
            if (s >> kNhBits == k) {
                nh = NhId(s & kNhMask);
                return true;
            }
        }
    }

    // Adds the rule or replaces its next hop; true if it is new. The caller keeps
    // size() below max_rules.
    bool set(uint32_t ip, uint8_t len, NhId nh) {
        uint64_t k = key(ip, len);
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            uint64_t s = slots_[i];
            if (s == 0 || s >> kNhBits == k) {
                slots_[i] = k << kNhBits | nh;
                size_ += s == 0;
                return s == 0;
            }
        }
    }

    // Removes the rule; false if there was none.
    bool erase(uint32_t ip, uint8_t len) {
        uint64_t k = key(ip, len);
        size_t i = home(k);
        for (;; i = (i + 1) & mask_) {
            uint64_t s = slots_[i];
            if (s == 0) return false;
            if (s >> kNhBits == k) break;
        }
        // Moves back each later slot of the run that may sit at or before the hole.
        for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
            uint64_t s = slots_[j];
            if (s == 0) break;
            size_t h = home(s >> kNhBits);
            if (((j - h) & mask_) >= ((j - i) & mask_)) {
                slots_[i] = s;
                i = j;
            }
        }
        slots_[i] = 0;
        size_--;
        return true;
    }

  private:
    static constexpr unsigned kNhBits = 24;
    static constexpr uint64_t kNhMask = (uint64_t(1) << kNhBits) - 1;
    static_assert(kMaxNh <= kNhMask + 1);

    // Never 0 (the empty slot): the length is stored plus one.
    static uint64_t key(uint32_t ip, uint8_t len) { return uint64_t(ip) << 8 | (len + 1u); }
    size_t home(uint64_t k) const { return size_t((k * 0x9E3779B97F4A7C15ull) >> shift_); }

    std::vector<uint64_t, HugePageAllocator<uint64_t>> slots_; // key << 24 | next hop; 0: empty
    size_t mask_;
    unsigned shift_;
    uint32_t size_ = 0;
};

} // namespace vleaf::dp
