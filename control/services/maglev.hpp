// Maglev consistent hashing (Eisenbud et al., NSDI 2016): every vleaf instance given the
// same backend set builds the same lookup table, so routers ECMP-ing a VIP across several
// instances still send a flow to one backend, and a backend change moves few flows.
#pragma once

#include "vleaf/addr.hpp"

#include <cstdint>
#include <vector>

namespace vleaf::svc {

struct Backend {
    IpAddr addr;
    uint16_t port = 0;
    uint32_t weight = 1; // 0 drains the backend: it keeps no slot
};

constexpr uint32_t kDefaultTableSize = 65537;
constexpr uint32_t kNoBackend = UINT32_MAX;

bool is_prime(uint32_t n);

// Returns table_size slots, each an index into `backends` (kNoBackend when no backend has
// a weight). Weights are integer multiplicities of turns: in each round of the population
// loop a backend claims `weight` slots (weights are first divided by their gcd), so its
// share of the table is proportional to its weight to within one round.
// The table depends only on the set of (addr, port, weight): permutations come from a fixed
// seeded hash of addr+port and turns are taken in (addr, port) order, so any ordering of the
// same backends gives the same table once indices are mapped back to backends.
// Throws std::invalid_argument if table_size is not a prime >= 65537 or a backend repeats.
std::vector<uint32_t> build(uint32_t table_size, const std::vector<Backend> &backends);

// Flow hashes for slot selection, identical on every instance and machine: inputs are
// numbers in host byte order (convert from the packet with ntohl/ntohs), the seed is fixed,
// and no per-process randomness is used. Inline so the dataplane shares the exact code.
inline uint64_t mix64(uint64_t h) {
    // The MurmurHash3 finaliser: every input bit reaches every output bit.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

constexpr uint64_t kFlowSeed = 0x766c656166u; // "vleaf"

inline uint32_t flow_hash4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport,
                           uint16_t dport) {
    uint64_t h = mix64(((uint64_t(src) << 32) | dst) ^ kFlowSeed);
    h = mix64(h ^ ((uint64_t(proto) << 32) | (uint32_t(sport) << 16) | dport));
    return static_cast<uint32_t>(h >> 32);
}

// Addresses as 16 bytes in network order (as in the packet); read byte by byte so the
// result does not depend on the machine's endianness.
inline uint32_t flow_hash6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto,
                           uint16_t sport, uint16_t dport) {
    auto word = [](const uint8_t *p) {
        uint64_t w = 0;
        for (int i = 0; i < 8; i++) w = (w << 8) | p[i];
        return w;
    };
    uint64_t h = kFlowSeed;
    for (const uint8_t *p : {src, src + 8, dst, dst + 8}) h = mix64(h ^ word(p));
    h = mix64(h ^ ((uint64_t(proto) << 32) | (uint32_t(sport) << 16) | dport));
    return static_cast<uint32_t>(h >> 32);
}

// Maps a 32-bit hash onto [0, table_size) evenly without a division.
inline uint32_t slot_of(uint32_t hash, uint32_t table_size) {
    return static_cast<uint32_t>((uint64_t(hash) * table_size) >> 32);
}

} // namespace vleaf::svc
