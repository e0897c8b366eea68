// The exact-match part of a compiled ACL policy (acl_set.hpp), for the rules that pin one
// address to a single host: Kubernetes NetworkPolicy rules protect one pod (/32 or /128)
// and admit peers by CIDR, protocol and port. Such rules need no trie: a hash table keyed
// by (host address, protocol, destination port) gives the few rules of that key, which a
// packet checks with masked compares. rte_acl costs ~57 cycles per packet at best and
// grows with the trie (bench/README.md); a probe here is usually one bucket line.
//
// The key address is the destination, or the source for policies whose rules mostly pin
// the source (egress policies of a pod). A rule goes into the group of its key:
//   (address, protocol, port)  single destination port of tcp/udp/sctp
//   (address, protocol, any)   port range, any port, ICMP type, other protocols
//   (address, any, any)        no protocol
// and every group also holds the rules of the more general groups of its address, so a
// packet takes its most specific group that exists: one probe, and a second or third only
// when it misses. Within a group, rules are in rank order (rank 0: the best, acl_set.cpp),
// decisive (Allow/Deny) ones apart from Count ones, each with the other address's prefix,
// the first L4 16 bits' range (source port, or ICMP type << 8 | code) and the destination
// port range, exactly as rte_acl reads them.
//
// The table: one group per bucket, open addressing with linear probing, sized so that
// most groups sit in their home bucket. A bucket holds its group's key, counts and up to
// kInline rules, so that a lookup of a group that small reads one cache line (64 bytes for
// IPv4, 128 for IPv6); a larger group's rules are in a pool the bucket points to. A home
// bucket flags whether any of its keys lives further on, so a packet whose key has no group
// stops at its home bucket unless that flag is set.
#pragma once

#include "dataplane/crc.hpp"
#include "vleaf/acl.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace vleaf::dp {

inline constexpr uint32_t kNoRank = UINT32_MAX;
// Set in AclMatch::rule when the rule denies.
inline constexpr uint32_t kAclDenyBit = 1u << 31;

// The best matching decisive and Count rules: their ranks (the lowest; kNoRank for none)
// and indices in AclPolicy::rules (valid only with a rank), the decisive one's with
// kAclDenyBit if it denies, so that a verdict needs no further table.
struct AclMatch {
    uint32_t decide, count;
    uint32_t rule, counted;
};

// Bytes: 4 (IPv4) or 16 (IPv6). Packets are read in acl_set.cpp's key layout: protocol at
// 0, then source, destination, and the 4 L4 bytes, back to back from offset 3 (IPv4) or 2.
template <unsigned Bytes> class AclExact {
  public:
    static constexpr unsigned kSrc = Bytes == 4 ? 3 : 2, kDst = kSrc + Bytes, kL4 = kDst + Bytes;
    // More rules than this under one key: the policy stays on rte_acl (a scan would cost
    // more than the trie).
    static constexpr size_t kMaxGroup = 64;
    // The most rules a bucket holds itself.
    static constexpr unsigned kInline = 2;

    // Holds rules `which` of `p` (all of this family, each with a host prefix on the key
    // side); `rank[i]` orders rule i. Null when some key would have too many rules or the
    // keys cannot be hashed into the table.
    static std::unique_ptr<AclExact> build(const AclPolicy &p, const std::vector<uint32_t> &which,
                                           const std::vector<uint32_t> &rank, bool key_src,
                                           int socket);
    ~AclExact();
    AclExact(const AclExact &) = delete;
    AclExact &operator=(const AclExact &) = delete;

    // The best decisive and Count rules of this part matching each of n <= 64 packets
    // (`in`: the key layout above). `home`: what prefetch() returned for each, or null.
    void lookup(const uint8_t *const in[], unsigned n, AclMatch out[],
                const uint32_t *home = nullptr) const;
    // Prefetches the home bucket of a packet's most specific key and returns its hash, for
    // lookup(): a caller that reads the headers anyway (plain4's first loop) calls it there,
    // so that the bucket is on its way a whole loop before the lookup.
    uint32_t prefetch(const uint8_t *in) const {
        Word a[kWords];
        std::memcpy(a, in + key_, Bytes);
        const uint32_t h = hash(a, in[0] | uint32_t(in[kL4 + 2] << 8 | in[kL4 + 3]) << 16);
        const auto *line = reinterpret_cast<const char *>(&buckets_[h & mask_]);
        for (unsigned off = 0; off < sizeof(Bucket); off += 64) __builtin_prefetch(line + off);
        return h;
    }

  private:
    using Word = std::conditional_t<Bytes == 4, uint32_t, uint64_t>;
    static constexpr unsigned kWords = Bytes / sizeof(Word);
    struct Entry {
        Word addr[kWords], mask[kWords]; // the other address's prefix, network byte order
        uint16_t lo[2], span[2];         // L4 ranges [lo, lo + span], host byte order
        uint32_t rank, rule;             // rule: as in AclMatch
    };
    struct alignas(64) Bucket {
        Word addr[kWords]; // the key address, in network byte order
        uint32_t tag;      // protocol | kind << 8 | port << 16; kEmpty: no group
        uint8_t decide, count;
        uint8_t chain;        // some key whose home is this bucket sits in a later one
        uint32_t more;        // over kInline rules: the index of the first in pool_
        Entry rules[kInline]; // up to kInline rules: decisive ones by rank, then Count ones
    };
    static_assert(sizeof(Bucket) == (Bytes == 4 ? 64 : 128));

    AclExact() = default;
    uint32_t hash(const Word *addr, uint32_t tag) const {
        if constexpr (Bytes == 4)
            return crc32c64(uint64_t(addr[0]) << 32 | tag, seed_);
        else
            return crc32c64(tag, crc32c64(addr[1], crc32c64(addr[0], seed_)));
    }
    const Bucket *resolve(const Word *addr, uint32_t tag, uint32_t h) const;
    const Bucket *find(const Word *addr, uint32_t tag) const {
        return resolve(addr, tag, hash(addr, tag));
    }
    AclMatch scan(const Bucket *b, const uint8_t *in) const;
    bool place(const std::vector<Bucket> &groups, unsigned log2_buckets, uint32_t seed);

    Bucket *buckets_ = nullptr;
    uint32_t mask_ = 0, seed_ = 0;
    uint32_t probes_ = 0; // the furthest any group sits from its home bucket
    unsigned key_ = kDst, other_ = kSrc;
    Entry *pool_ = nullptr; // the rules of the groups over kInline
    int socket_ = 0;
    bool any_port_ = false, any_ = false; // groups of kind 1 / 2 exist
};

} // namespace vleaf::dp
