// The FIB programmer's routes by VRF and prefix: open addressing (linear probing,
// backward-shift deletion) in one array. A node-based map costs an allocation per route
// and a bucket plus a node per lookup; at 1M routes that was the top of the table
// writer's profile. A slot also carries the route's operation in the programmer's open
// batch, so the batch finds the earlier operations on a prefix without a search.
#pragma once

#include "vleaf/huge_pages.hpp"
#include "vleaf/prefetch.hpp"
#include "vleaf/update.hpp"

#include <cstring>
#include <vector>

namespace vleaf::fib {

enum class RouteType : uint8_t { Connected, Local, Static, Neighbor, Blackhole, Vxlan, Bgp, Evpn };

struct RouteKey {
    uint32_t vrf;
    Prefix prefix;
    // What the defaulted one compares, without its call of memcmp for the address (a
    // probe compares a key per slot it passes).
    bool operator==(const RouteKey &o) const {
        uint64_t a[2], b[2];
        std::memcpy(a, prefix.addr.bytes.data(), 16);
        std::memcpy(b, o.prefix.addr.bytes.data(), 16);
        return vrf == o.vrf && prefix.len == o.prefix.len &&
               prefix.addr.family == o.prefix.addr.family && ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
    }
};

struct RouteSlot {
    RouteKey key;
    uint32_t hash = 0;
    bool used = false;    // the slot holds `key`
    bool present = false; // false: deleted in the open batch, erased when the batch leaves
    RouteType type = RouteType::Bgp;
    uint32_t resync_gen = 0; // BGP: the resync that last confirmed it
    NhId nh = kNhNoRoute;
    uint32_t batch = 0; // the batch that `op` (an index into its operations) belongs to
    uint32_t op = 0;
};

class RouteTable {
  public:
    RouteTable();
    RouteSlot *find(const RouteKey &k);
    const RouteSlot *find(const RouteKey &k) const;
    // The slot of `k`, a new one (not present) if there was none. Moves other slots.
    RouteSlot &slot(const RouteKey &k);
    void erase(const RouteKey &k);
    // Brings the slot where the probe for `k` starts, and the next one, into the cache:
    // at the table's load a probe or an erase's backward shift often reads the second.
    void prefetch(const RouteKey &k) const {
        size_t i = hash(k) & mask_;
        size_t n = i < mask_ ? 2 : 1;
        const char *s = reinterpret_cast<const char *>(&slots_[i]);
        // A slot may span two lines.
        for (size_t off = 0; off < n * sizeof(RouteSlot); off += 32) prefetch_write(s + off);
        prefetch_write(s + n * sizeof(RouteSlot) - 1);
    }
    template <class F> void for_each(F f) const {
        for (const RouteSlot &s : slots_)
            if (s.used) f(s);
    }
    template <class F> void for_each(F f) {
        for (RouteSlot &s : slots_)
            if (s.used) f(s);
    }

  private:
    static uint32_t hash(const RouteKey &k) {
        uint64_t a, b;
        std::memcpy(&a, k.prefix.addr.bytes.data(), 8);
        std::memcpy(&b, k.prefix.addr.bytes.data() + 8, 8);
        uint64_t h = (a ^ (uint64_t(k.vrf) << 40 | k.prefix.len)) * 0x9e3779b97f4a7c15ull;
        h ^= (b + 0x632be59bd9b4e019ull) * 0xff51afd7ed558ccdull;
        return uint32_t(h ^ (h >> 32));
    }
    size_t probe(const RouteKey &k, uint32_t h) const; // its slot, or the empty one to use
    void grow();

    using Slots = std::vector<RouteSlot, HugePageAllocator<RouteSlot>>;
    Slots slots_;
    size_t mask_;
    size_t used_ = 0;
};

} // namespace vleaf::fib
