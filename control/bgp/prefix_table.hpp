// The Loc-RIB's unicast prefix table: open addressing with linear probing, the key and
// its entry in one slot. A full table is a million prefixes: a node-based hash map
// allocated a node per prefix and took two or three cache misses per lookup (bucket,
// node before, node); here a lookup is one miss and an insert allocates nothing. The
// slots are in huge pages (64 MB at 1M prefixes): in 4 KiB pages each lookup also missed
// the TLB, and the prefetch meant to hide the miss stalled on the page walk instead.
#pragma once

#include "vleaf/huge_pages.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace vleaf::bgp {

// Key: equality-comparable, with `static Key none()` that no real key equals (marks an
// empty slot). Entry: default-constructible and movable.
template <class Key, class Entry, class Hash> class PrefixTable {
  public:
    size_t size() const { return size_; }

    // The entry of `k`, default-constructed if absent. References stay valid until the
    // next insertion of a new key or erase.
    Entry &operator[](const Key &k) {
        // Load at most 3/4: linear probing's runs grow quickly beyond.
        if ((size_ + 1) * 4 > slots_.size() * 3) grow();
        size_t i = home(k);
        while (!(slots_[i].key == Key::none())) {
            if (slots_[i].key == k) return slots_[i].entry;
            i = (i + 1) & mask_;
        }
        slots_[i].key = k;
        ++size_;
        return slots_[i].entry;
    }

    // The table is far larger than the caches: a caller about to look up a run of keys
    // prefetches the slot of a key some iterations ahead, so the misses overlap.
    void prefetch(const Key &k) const {
        if (!slots_.empty()) __builtin_prefetch(&slots_[home(k)], 1);
    }

    Entry *find(const Key &k) { return const_cast<Entry *>(std::as_const(*this).find(k)); }
    const Entry *find(const Key &k) const {
        if (slots_.empty()) return nullptr;
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            if (slots_[i].key == k) return &slots_[i].entry;
            if (slots_[i].key == Key::none()) return nullptr;
        }
    }

    void erase(const Key &k) {
        if (slots_.empty()) return;
        size_t i = home(k);
        while (!(slots_[i].key == k)) {
            if (slots_[i].key == Key::none()) return;
            i = (i + 1) & mask_;
        }
        erase_at(i);
    }

    // Erases the entries for which `dead` holds. Not during for_each.
    template <class Pred> void erase_if(Pred dead) {
        // Backward-shift deletion fills the hole at i from the slots after it, none of
        // them scanned yet, except at the end of the table, where entries from slot 0
        // on (already kept) may wrap back into it and are looked at twice.
        for (size_t i = 0; i < slots_.size();) {
            if (!(slots_[i].key == Key::none()) && dead(slots_[i].entry))
                erase_at(i); // slot i holds another candidate now
            else
                ++i;
        }
    }

    // fn(const Key &, Entry &) for every entry; fn must not insert or erase.
    template <class Fn> void for_each(Fn fn) {
        for (auto &s : slots_)
            if (!(s.key == Key::none())) fn(std::as_const(s.key), s.entry);
    }
    template <class Fn> void for_each(Fn fn) const {
        for (auto &s : slots_)
            if (!(s.key == Key::none())) fn(s.key, s.entry);
    }

  private:
    struct Slot {
        Key key = Key::none();
        Entry entry;
    };

    // Fibonacci hashing: the top bits of the product depend on every bit of the hash,
    // whose low bits alone may not vary (IPv6 prefixes differ in their middle bytes).
    size_t home(const Key &k) const {
        return size_t((uint64_t(Hash{}(k)) * 0x9e3779b97f4a7c15ull) >> shift_);
    }

    void grow() {
        Slots old = std::exchange(slots_, Slots(next_capacity()));
        mask_ = slots_.size() - 1;
        shift_ = 64 - unsigned(std::countr_zero(slots_.size()));
        for (auto &s : old) {
            if (s.key == Key::none()) continue;
            size_t i = home(s.key);
            while (!(slots_[i].key == Key::none())) i = (i + 1) & mask_;
            slots_[i].key = s.key;
            slots_[i].entry = std::move(s.entry);
        }
    }
    size_t next_capacity() const { return slots_.empty() ? 16 : slots_.size() * 2; }

    // Removes slot i and shifts back the entries of its probe run that may move into it
    // (linear probing stays free of tombstones).
    void erase_at(size_t i) {
        for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
            if (slots_[j].key == Key::none()) break;
            size_t h = home(slots_[j].key);
            // j's entry may fill the hole at i if its home is not in (i, j] cyclically.
            bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (stays) continue;
            slots_[i].key = slots_[j].key;
            slots_[i].entry = std::move(slots_[j].entry);
            i = j;
        }
        slots_[i].key = Key::none();
        slots_[i].entry = Entry{};
        --size_;
    }

    using Slots = std::vector<Slot, HugePageAllocator<Slot>>;
    Slots slots_;
    size_t mask_ = 0;
    unsigned shift_ = 63;
    size_t size_ = 0;
};

} // namespace vleaf::bgp
