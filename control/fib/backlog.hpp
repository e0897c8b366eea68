// The feed's backlog: keys waiting for room in the route ring, in arrival order, each
// waiting at most once (a prefix changed ten times while waiting is sent once).
//
// Flat, unlike the std::unordered_set it replaced: one open-addressing table whose slot
// holds the key and its place in the arrival order, so adding allocates nothing, and a
// key that is sent stays in its slot (its place, now behind the sending position, says
// it no longer waits) so that sending needs no hash lookup at all. With a producer faster
// than the table writer the ring is full most of the time and most changes go through
// here: the set's node allocation and its erase per sent key cost as much as the RIB.
// The table is rebuilt from the waiting keys only when it fills, and emptied when the
// last waiting key is sent. Its slots are in huge pages: a full table's backlog is tens
// of MB, and in 4 KiB pages each add missed the TLB as well as the cache.
#pragma once

#include "vleaf/huge_pages.hpp"
#include "vleaf/prefetch.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace vleaf::fib {

// Key: equality-comparable, trivially copyable. Hash: size_t operator()(const Key &).
template <class Key, class Hash> class Backlog {
  public:
    // Adds `k` unless it already waits. True if added.
    bool add(const Key &k) {
        if ((used_ + 1) * 4 > slots_.size() * 3 || order_.size() >= 2 * slots_.size()) rebuild();
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            Slot &s = slots_[i];
            if (s.place == 0) {
                used_++;
                s.key = k;
            } else if (!(s.key == k)) {
                continue;
            } else if (s.place > next_) {
                return false; // waiting already
            }
            order_.push_back(k);
            s.place = uint32_t(order_.size()); // 1-based: 0 marks an empty slot
            return true;
        }
    }

    // Brings the slot of `k` into the cache ahead of its add(): one miss per add otherwise.
    void prefetch(const Key &k) const {
        if (!slots_.empty()) prefetch_write(&slots_[home(k)]);
    }

    size_t size() const { return order_.size() - next_; }
    bool empty() const { return next_ == order_.size(); }
    // The i-th waiting key, 0 the next to send.
    const Key &at(size_t i) const { return order_[next_ + i]; }
    // The next key was sent.
    void pop() {
        if (++next_ == order_.size()) reset();
    }
    // Forgets every key and gives the memory back.
    void release() {
        Slots().swap(slots_);
        std::vector<Key>().swap(order_);
        next_ = used_ = 0;
        mask_ = 0;
    }

  private:
    struct Slot {
        Key key;
        uint32_t place = 0; // 1 + the key's index in order_ when it was last added; 0: empty
    };
    // Past this many slots an emptied backlog gives its memory back rather than zeroing it.
    static constexpr size_t kKeepSlots = 1 << 16; // 2 MB

    size_t home(const Key &k) const {
        return size_t(uint64_t(Hash{}(k)) * 0x9e3779b97f4a7c15ull >> shift_);
    }

    void reset() {
        if (slots_.size() > kKeepSlots || order_.capacity() > 2 * kKeepSlots) {
            release();
            return;
        }
        std::fill(slots_.begin(), slots_.end(), Slot{});
        order_.clear();
        next_ = used_ = 0;
    }

    // A table at most half full of the waiting keys alone (1M waiting: 64 MB, as the node
    // set took); the sent ones are dropped.
    void rebuild() {
        std::vector<Key> waiting(order_.begin() + std::ptrdiff_t(next_), order_.end());
        size_t cap = std::max<size_t>(16, std::bit_ceil(2 * (waiting.size() + 1)));
        slots_.assign(cap, Slot{});
        mask_ = cap - 1;
        shift_ = 64 - unsigned(std::countr_zero(cap));
        order_.clear();
        next_ = used_ = 0;
        for (const Key &k : waiting) add(k);
    }

    using Slots = std::vector<Slot, HugePageAllocator<Slot>>;
    Slots slots_;
    std::vector<Key> order_; // keys in the order they were added; order_[next_..] wait
    size_t next_ = 0;
    size_t used_ = 0; // slots holding a key
    size_t mask_ = 0;
    unsigned shift_ = 64;
};

} // namespace vleaf::fib
