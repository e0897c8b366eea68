// The dataplane's next-hop table: 16-byte entries indexed by the id a route lookup
// returns. Entries are replaced whole with one aligned 16-byte store, so a worker
// reading concurrently sees either the old or the new entry, never a mix (16-byte
// aligned SSE loads/stores are single-copy atomic on AVX-capable x86 CPUs).
#pragma once

#include "vleaf/update.hpp"

#include <immintrin.h>
#include <rte_ether.h>

namespace vleaf::dp {

struct alignas(16) Nh {
    rte_ether_addr mac; // destination MAC: Forward, Bridge; inner destination MAC: Tunnel
    uint16_t port;      // Forward: egress port; Tunnel: remote VTEP; Bridge: bridge domain
    NhKind kind;
    uint8_t n_members; // Ecmp
    uint16_t unused;
    uint32_t group; // Ecmp: index into the group table; Tunnel: VNI
};
static_assert(sizeof(Nh) == 16);

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
