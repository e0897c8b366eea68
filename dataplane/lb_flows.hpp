// Per-worker flow table of the LB stage (see lb_tables.hpp for what it holds and why).
//
// A bucketized cuckoo hash: every key has two candidate buckets of two 32-byte ways, one
// cache line per bucket. An IPv4 flow lives entirely in its way (key, destination, checksum
// deltas, last-seen time), so a packet of an established flow costs one cache line: the
// burst prefetches every packet's primary bucket before reading any (lb.hpp), and only the
// few flows that sit in their secondary bucket, new flows and IPv6 flows (whose keys are
// too long for a way, so the way holds a 64-bit fingerprint and the index of a 64-byte
// entry with the whole key) pay a second round. Buckets number at least the flow limit
// (twice as many ways as flows), so a free way practically always turns up after a few
// cuckoo moves. Written only by its worker; the control thread reads `used` and `capacity`.
#pragma once

#include "dataplane/crc.hpp"
#include "vleaf/service.hpp"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>

namespace vleaf::dp {

// k1's top byte: what the way holds (0: nothing).
enum FlowKind : uint8_t { kFlowFree, kFlowRequest4, kFlowReply4, kFlowRequest6, kFlowReply6 };

// A way's key: the packet's 5-tuple and VRF as they come in, the kind telling a request to a
// VIP from a reply of a backend. IPv4: source and destination addresses in k0 (as loaded
// from the header), flow_tuple_word() in k1. IPv6: the fingerprint of the FlowKey6 in k0.
struct FlowKey {
    uint64_t k0, k1;
    bool operator==(const FlowKey &) const = default;
};

inline uint64_t flow_kind(FlowKind kind) {
    return uint64_t(kind) << 56;
}

// Source and destination ports (network order), protocol and VRF of a key (IPv4 k1 and
// IPv6 w[4]).
inline uint64_t flow_tuple_word(uint16_t sport_be, uint16_t dport_be, uint8_t proto, uint16_t vrf) {
    return sport_be | uint32_t(dport_be) << 16 | uint64_t(proto) << 32 | uint64_t(vrf) << 40;
}

struct FlowWay {
    FlowKey key;
    uint32_t to;       // IPv4: the new address (network order); IPv6: its FlowEntry6
    uint16_t port_be;  // the new port
    uint16_t ip_delta; // IPv4 header checksum update (csum_apply)
    uint16_t l4_delta; // TCP/UDP checksum update: address (pseudo-header) and port
    LbMode mode;       // of the service when the flow was pinned
    uint8_t svc;       // low byte of its id: a VIP given to a new service starts afresh
    uint32_t seen;     // flow_now() of the flow's last packet
};
static_assert(sizeof(FlowWay) == 32);

inline constexpr unsigned kFlowWays = 2;

struct alignas(64) FlowBucket {
    FlowWay way[kFlowWays];
};
static_assert(sizeof(FlowBucket) == 64);

// An IPv6 key: source and destination addresses, then flow_tuple_word() with the kind in
// its top byte as in k1.
struct FlowKey6 {
    uint64_t w[5];
    bool operator==(const FlowKey6 &) const = default;
};

struct alignas(64) FlowEntry6 {
    FlowKey6 key;
    uint8_t to[16]; // DNAT: the backend; DSR: the backend's node; reply: the VIP
};
static_assert(sizeof(FlowEntry6) == 64);

// Last-seen times are tsc >> kFlowTimeShift in 32 bits: units of 2^30 cycles (~0.4 s at
// 2.5 GHz), coarse so that a hit writes its way only when the unit has changed since the
// flow's last packet: a busy flow's line is not dirtied (and written back) on every packet.
// The ager compares modulo 2^32 (units wrap after decades).
inline constexpr unsigned kFlowTimeShift = 30;

inline uint32_t flow_now() {
    return uint32_t(rte_rdtsc() >> kFlowTimeShift);
}

// A hit: the way's line is written only when the time unit changed (see kFlowTimeShift).
inline void flow_touch(FlowWay &w, uint32_t now) {
    if (w.seen != now) w.seen = now;
}

struct LbFlows {
    FlowBucket *bucket = nullptr;
    FlowEntry6 *e6 = nullptr;
    uint32_t *free6 = nullptr; // stack of free FlowEntry6 indices
    uint32_t nfree6 = 0;
    uint32_t mask = 0; // buckets - 1
    uint32_t capacity = 0;
    uint32_t used = 0;
    uint32_t cursor = 0;  // next bucket the ager looks at
    uint32_t timeout = 0; // idle flow_now() units before a flow is forgotten
};

// crc32c is linear over GF(2): keys that differ in a few bits (clients of one subnet,
// consecutive ports) map to a few cosets and crowd some buckets while others stay empty.
// The high half of a 64-bit multiply mixes every bit of it into the bits flow_bucket1 uses.
inline uint32_t flow_sig(const FlowKey &k) {
    return crc32c64(k.k1, crc32c64(k.k0, 0x766c6561));
}

// The way key of an IPv6 key: two crc32 chains with different seeds.
inline FlowKey flow_key6(const FlowKey6 &k) {
    uint32_t a = 0x766c6561, b = 0x36;
    for (uint64_t w : k.w) {
        a = crc32c64(w, a);
        b = crc32c64(w, b);
    }
    return {uint64_t(a) << 32 | b, k.w[4] & flow_kind(FlowKind(0xff))};
}

inline uint32_t flow_bucket1(const LbFlows &f, uint32_t sig) {
    return sig & f.mask;
}

// Buckets of a 4 KB page: a key's two buckets share one (the bucket array is page aligned).
inline constexpr uint32_t kFlowPageBuckets = 4096 / 64;

// The other bucket of a key in bucket `b`: an involution, never `b` itself, and in the same
// page, so that a key's second line, read after its first (lb.hpp), costs no second TLB
// miss (on this project's VMs a miss also walks the host's 4 KB pages: ~75 cycles more).
inline uint32_t flow_bucket2(const LbFlows &f, uint32_t b, uint32_t sig) {
    const uint32_t x = sig * 0x9e3779b1u;
    return (b ^ ((x >> 26) | 1)) & f.mask;
}
static_assert(kFlowPageBuckets == 1u << (32 - 26));

inline void flow_prefetch_bucket(const LbFlows &f, uint32_t b) {
    rte_prefetch0(&f.bucket[b]);
}

// The way holding `k` in bucket `b`, or null. IPv6 ways match on the fingerprint only.
inline FlowWay *flow_in(const LbFlows &f, uint32_t b, const FlowKey &k) {
    FlowBucket &bk = f.bucket[b];
    for (FlowWay &w : bk.way)
        if (w.key == k) return &w;
    return nullptr;
}

// The way of an IPv4 key in either bucket, or null.
inline FlowWay *flow_find(const LbFlows &f, const FlowKey &k, uint32_t sig) {
    uint32_t b1 = flow_bucket1(f, sig);
    if (FlowWay *w = flow_in(f, b1, k)) return w;
    return flow_in(f, flow_bucket2(f, b1, sig), k);
}

// The way of an IPv6 key (`k` = flow_key6(full)) in either bucket, or null: fingerprints
// that collide are told apart by the entries' whole keys.
inline FlowWay *flow_find6(const LbFlows &f, const FlowKey &k, uint32_t sig, const FlowKey6 &full) {
    uint32_t b1 = flow_bucket1(f, sig);
    for (uint32_t b : {b1, flow_bucket2(f, b1, sig)})
        for (FlowWay &w : f.bucket[b].way)
            if (w.key == k && f.e6[w.to].key == full) return &w;
    return nullptr;
}

// Adds `k` (known absent) in a free way, moving other keys to their other bucket when both
// of its buckets are full; an IPv6 key also takes an entry (its index in `to`). Null when the
// table holds `capacity` flows or no way can be freed.
FlowWay *flow_insert(LbFlows &f, const FlowKey &k, uint32_t sig);

// Frees a way (and its IPv6 entry).
inline void flow_free(LbFlows &f, FlowWay &w) {
    FlowKind kind = FlowKind(w.key.k1 >> 56);
    if (kind == kFlowRequest6 || kind == kFlowReply6) f.free6[f.nfree6++] = w.to;
    w.key = {};
    f.used--;
}

} // namespace vleaf::dp
