// Per-worker flow table of the LB stage (see lb_tables.hpp for what it holds and why).
//
// A bucketized cuckoo hash: every key has two candidate buckets of four slots, one cache
// line each, holding the slots' signatures, entry indices, services and last-seen times;
// the key and the flow's destination sit in a 64-byte entry. Buckets number at least half
// the flow limit (twice as many slots as flows), so a free entry practically always finds a
// slot after a few cuckoo moves; entries are exactly the flow limit. Lookups of a whole burst
// issue their bucket and entry prefetches before waiting on any of them (lb.hpp), so a
// packet of an established flow costs about two overlapped cache misses. Written only by
// its worker; the control thread reads `used` and `capacity`.
#pragma once

#include "vleaf/service.hpp"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_hash_crc.h>
#include <rte_prefetch.h>

#include <cstring>

namespace vleaf::dp {

struct FlowKey {
    uint8_t src[16], dst[16];
    uint16_t sport, dport; // network order
    uint8_t proto, v6;
    uint16_t vrf; // | kReplyKey for the reply of a DNAT flow
};
inline constexpr uint16_t kReplyKey = 0x8000;
static_assert(sizeof(FlowKey) == 40 && RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN);

// Read-only once made (until the slot is aged), so its line stays clean in the caches.
struct alignas(64) FlowEntry {
    FlowKey key;
    uint8_t to[16];   // DNAT: the backend; DSR: the backend's node; reply: the VIP
    uint16_t port_be; // DNAT: the backend's port; reply: the VIP's port
    LbMode mode;      // of the service when the flow was pinned
};
static_assert(sizeof(FlowEntry) == 64);

inline constexpr unsigned kFlowWays = 4;

struct alignas(64) FlowBucket {
    uint32_t sig[kFlowWays]; // flow_sig() of the key; 0: free slot
    uint32_t idx[kFlowWays]; // FlowEntry index
    uint32_t service[kFlowWays];
    uint32_t seen[kFlowWays]; // flow_now() of the flow's last packet
};
static_assert(sizeof(FlowBucket) == 64);

// Last-seen times are tsc >> kFlowTimeShift in 32 bits: ~100 us units that wrap after days
// (the ager compares modulo 2^32; the longest idle timeout is one day).
inline constexpr unsigned kFlowTimeShift = 18;

inline uint32_t flow_now() {
    return uint32_t(rte_rdtsc() >> kFlowTimeShift);
}

struct LbFlows {
    FlowBucket *bucket = nullptr;
    FlowEntry *e = nullptr;
    uint32_t *free = nullptr; // stack of free entry indices
    uint32_t nfree = 0;
    uint32_t mask = 0; // buckets - 1
    uint32_t capacity = 0;
    uint32_t used = 0;
    uint32_t cursor = 0;  // next bucket the ager looks at
    uint32_t timeout = 0; // idle flow_now() units before a flow is forgotten
};

// Of the key's five words (flow_key() in lb.hpp).
inline uint32_t flow_sig(const uint64_t w[5]) {
    uint32_t h = rte_hash_crc_8byte(w[0], 0x766c6561);
    for (unsigned i = 1; i < 5; i++) h = rte_hash_crc_8byte(w[i], h);
    return h ? h : 1;
}

inline uint32_t flow_bucket1(const LbFlows &f, uint32_t sig) {
    return sig & f.mask;
}

// The other bucket of a key in bucket `b`: an involution, and never `b` itself.
inline uint32_t flow_bucket2(const LbFlows &f, uint32_t b, uint32_t sig) {
    uint32_t x = sig * 0x9e3779b1u;
    return (b ^ (((x >> 16) | (x << 16)) | 1)) & f.mask;
}

struct FlowSlot {
    FlowBucket *b = nullptr;
    unsigned way = 0;
};

inline FlowSlot flow_find(const LbFlows &f, const FlowKey &k, uint32_t sig) {
    uint32_t b1 = flow_bucket1(f, sig);
    for (uint32_t b : {b1, flow_bucket2(f, b1, sig)}) {
        FlowBucket &bk = f.bucket[b];
        for (unsigned w = 0; w < kFlowWays; w++)
            if (bk.sig[w] == sig && std::memcmp(&f.e[bk.idx[w]].key, &k, sizeof k) == 0)
                return {&bk, w};
    }
    return {};
}

// Burst lookups, step 1 of 3: bring in the primary bucket.
inline void flow_prefetch_bucket(const LbFlows &f, uint32_t sig) {
    rte_prefetch0(&f.bucket[flow_bucket1(f, sig)]);
}

// Step 2: the entry of the first matching signature in the primary bucket, else the
// secondary bucket (flows there, and new flows, pay a second round).
inline void flow_prefetch_entry(const LbFlows &f, uint32_t sig) {
    uint32_t b1 = flow_bucket1(f, sig);
    const FlowBucket &bk = f.bucket[b1];
    for (unsigned w = 0; w < kFlowWays; w++)
        if (bk.sig[w] == sig) return rte_prefetch0(&f.e[bk.idx[w]]);
    rte_prefetch0(&f.bucket[flow_bucket2(f, b1, sig)]);
}

// Step 3 is flow_find(). Adds `k` (known absent) in a free slot, moving other keys to
// their other bucket when both of its buckets are full. False when no entry or slot is free.
bool flow_insert(LbFlows &f, const FlowKey &k, uint32_t sig, FlowSlot &at);

} // namespace vleaf::dp
