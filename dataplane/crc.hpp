// crc32c of a 64-bit word, the hash of the dataplane's own tables (LB flows, ACL exact
// match): the instruction itself when the build targets it (rte_hash_crc_8byte chooses
// its implementation at run time, on every call, and is not inlined).
#pragma once

#include <rte_hash_crc.h>

#include <cstdint>

#ifdef __SSE4_2__
#include <nmmintrin.h>
#endif

namespace vleaf::dp {

inline uint32_t crc32c64(uint64_t w, uint32_t init) {
#ifdef __SSE4_2__
    return uint32_t(_mm_crc32_u64(init, w));
#else
    return rte_hash_crc_8byte(w, init);
#endif
}

} // namespace vleaf::dp
