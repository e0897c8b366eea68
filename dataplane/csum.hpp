// Incremental Internet checksum updates (RFC 1624 eqn. 3) over 16-bit words as they sit in
// the packet: one's complement sums do not depend on byte order, so nothing is swapped.
#pragma once

#include <cstdint>

namespace vleaf::dp {

// What replacing the words `old` by `now` adds to a checksummed sum; computed once per
// rewrite target, applied per packet by csum_apply().
inline uint16_t csum_delta(const uint16_t *old, const uint16_t *now, unsigned words) {
    uint32_t s = 0;
    for (unsigned k = 0; k < words; k++) s += uint16_t(~old[k]) + uint32_t(now[k]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return uint16_t(s);
}

inline uint16_t csum_apply(uint16_t sum, uint16_t delta) {
    uint32_t s = uint32_t(uint16_t(~sum)) + delta;
    s = (s & 0xffff) + (s >> 16);
    return uint16_t(~s);
}

} // namespace vleaf::dp
