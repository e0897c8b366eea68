// The dataplane's next-hop table: 16-byte entries indexed by the id a route lookup
// returns. Entries are replaced whole with one aligned 16-byte store, so a worker
// reading concurrently sees either the old or the new entry, never a mix (16-byte
// aligned SSE loads/stores are single-copy atomic on AVX-capable x86 CPUs).
#pragma once

#include "vleaf/update.hpp"

#include <immintrin.h>
#include <rte_ether.h>

#include <cstddef>
#include <cstring>

namespace vleaf::dp {

struct alignas(16) Nh {
    // Forward: the new Ethernet addresses in header order (the next hop's, then the egress
    // port's), so that a worker rewrites both with one 16-byte blend.
    rte_ether_addr mac; // destination MAC: Forward, Bridge; inner destination MAC: Tunnel
    rte_ether_addr src; // Forward: the egress port's MAC
    uint16_t port;      // Forward: egress port; Tunnel: remote VTEP; Bridge: bridge domain
    NhKind kind;
    uint8_t n_members; // Ecmp

    // Ecmp: index into the group table; Tunnel: VNI. Kept in bytes 8-11, which only a
    // Forward next hop uses (for its source MAC).
    uint32_t group() const {
        uint32_t g;
        std::memcpy(&g, src.addr_bytes + 2, 4);
        return g;
    }
    void set_group(uint32_t g) { std::memcpy(src.addr_bytes + 2, &g, 4); }
};
static_assert(sizeof(Nh) == 16);
static_assert(offsetof(Nh, src) == 6 && offsetof(Nh, port) == 12 && offsetof(Nh, kind) == 14);

struct alignas(64) EcmpGroup {
    NhId members[kMaxEcmp];
};

inline Nh nh_load(const Nh *slot) {
    Nh n;
    _mm_store_si128(reinterpret_cast<__m128i *>(&n),
                    _mm_load_si128(reinterpret_cast<const __m128i *>(slot)));
    return n;
}

inline void nh_store(Nh *slot, const Nh &n) {
    _mm_store_si128(reinterpret_cast<__m128i *>(slot),
                    _mm_load_si128(reinterpret_cast<const __m128i *>(&n)));
}

} // namespace vleaf::dp
