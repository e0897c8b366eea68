#include "dataplane/acl_exact.hpp"

#include "dataplane/crc.hpp"

#include <rte_malloc.h>
#include <rte_prefetch.h>

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <stdexcept>

namespace vleaf::dp {

namespace {

constexpr uint32_t kKindPort = 0, kKindProto = 1 << 8, kKindAny = 2 << 8;

inline uint16_t be16(const uint8_t *p) {
    return uint16_t(p[0] << 8 | p[1]);
}

} // namespace

template <unsigned Bytes> uint32_t AclExact<Bytes>::hash(const Word *addr, uint32_t tag) const {
    if constexpr (Bytes == 4) {
        return crc32c64(uint64_t(addr[0]) << 32 | tag, seed_);
    } else {
        return crc32c64(tag, crc32c64(addr[1], crc32c64(addr[0], seed_)));
    }
}

// The group offset of the slot with `sig`, 0 if none; without branches on which slot it
// is, since that is unpredictable.
template <unsigned Bytes> inline uint32_t AclExact<Bytes>::slot(const Bucket &b, uint32_t sig) {
#ifdef __AVX2__
    __m256i eq = _mm256_cmpeq_epi32(_mm256_load_si256(reinterpret_cast<const __m256i *>(b.sig)),
                                    _mm256_set1_epi32(int(sig)));
    auto hit = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(eq)));
    return hit ? b.at[__builtin_ctz(hit)] : 0;
#else
    uint32_t at = 0;
    for (unsigned s = 0; s < 8; s++) at |= b.at[s] & (0u - uint32_t(b.sig[s] == sig));
    return at;
#endif
}

template <unsigned Bytes>
inline const typename AclExact<Bytes>::Group *
AclExact<Bytes>::resolve(const Word *addr, uint32_t tag, uint32_t h) const {
    uint32_t at = slot(buckets_[h & mask_], h | 1);
    if (!at) return nullptr;
    const auto *g = reinterpret_cast<const Group *>(pool_ + at);
    return std::memcmp(g->addr, addr, Bytes) == 0 && g->tag == tag ? g : nullptr;
}

template <unsigned Bytes>
inline AclMatch AclExact<Bytes>::scan(const Group *g, const uint8_t *in, unsigned other) {
    Word a[kWords];
    std::memcpy(a, in + other, Bytes);
    const uint16_t l4[2] = {be16(in + kL4), be16(in + kL4 + 2)};
    const auto *e = reinterpret_cast<const Entry *>(g + 1);
    auto hit = [&](const Entry &x) {
        bool m =
            (uint16_t(l4[0] - x.lo[0]) <= x.span[0]) & (uint16_t(l4[1] - x.lo[1]) <= x.span[1]);
        for (unsigned w = 0; w < kWords; w++) m &= (a[w] & x.mask[w]) == x.addr[w];
        return m;
    };
    AclMatch r{kNoRank, kNoRank, 0, 0};
    for (unsigned k = 0; k < g->decide; k++)
        if (hit(e[k])) {
            r.decide = e[k].rank, r.rule = e[k].rule;
            break;
        }
    for (unsigned k = g->decide; k < g->decide + g->count; k++)
        if (hit(e[k])) {
            r.count = e[k].rank, r.counted = e[k].rule;
            break;
        }
    return r;
}

template <unsigned Bytes>
void AclExact<Bytes>::lookup(const uint8_t *const in[], unsigned n, AclMatch out[]) const {
    uint32_t h[64], tag[64];
    const Group *g[64];
    // Passes over the burst, so that the bucket and group misses of all packets overlap
    // instead of following one another: hash and prefetch the bucket; find the group and
    // prefetch it, or when the packet's port has no group, hash and prefetch the next
    // key to try; check the groups.
    for (unsigned i = 0; i < n; i++) {
        Word a[kWords];
        std::memcpy(a, in[i] + key_, Bytes);
        tag[i] = in[i][0] | kKindPort | uint32_t(be16(in[i] + kL4 + 2)) << 16;
        h[i] = hash(a, tag[i]);
        __builtin_prefetch(&buckets_[h[i] & mask_]);
    }
    for (unsigned i = 0; i < n; i++) {
        uint32_t at = slot(buckets_[h[i] & mask_], h[i] | 1);
        g[i] = at ? reinterpret_cast<const Group *>(pool_ + at) : nullptr;
        if (at) {
            __builtin_prefetch(g[i]);
        } else if (any_port_ | any_) {
            Word a[kWords];
            std::memcpy(a, in[i] + key_, Bytes);
            tag[i] = any_port_ ? in[i][0] | kKindProto : kKindAny;
            h[i] = hash(a, tag[i]);
            __builtin_prefetch(&buckets_[h[i] & mask_]);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        Word a[kWords];
        std::memcpy(a, in[i] + key_, Bytes);
        const uint32_t kind = tag[i] & 0xff00;
        const Group *gi = g[i];
        if (gi)
            gi = std::memcmp(gi->addr, a, Bytes) == 0 && gi->tag == tag[i] ? gi : nullptr;
        else if (kind != kKindPort)
            gi = resolve(a, tag[i], h[i]);
        // Whatever is left to try: the protocol's group, then the address's.
        if (!gi && any_port_ && kind == kKindPort) gi = find(a, in[i][0] | kKindProto);
        if (!gi && any_ && kind != kKindAny) gi = find(a, kKindAny);
        out[i] = gi ? scan(gi, in[i], other_) : AclMatch{kNoRank, kNoRank, 0, 0};
    }
}

template <unsigned Bytes>
bool AclExact<Bytes>::place(const std::vector<uint32_t> &offsets, unsigned log2_buckets,
                            uint32_t seed) {
    seed_ = seed;
    mask_ = (1u << log2_buckets) - 1;
    std::vector<Bucket> table(size_t(1) << log2_buckets);
    for (uint32_t off : offsets) {
        const auto *g = reinterpret_cast<const Group *>(pool_ + off);
        uint32_t h = hash(g->addr, g->tag), sig = h | 1;
        Bucket &b = table[h & mask_];
        unsigned free = 8;
        for (unsigned s = 8; s-- > 0;) {
            if (b.sig[s] == sig) return false; // a lookup could not tell the two apart
            if (!b.sig[s]) free = s;
        }
        if (free == 8) return false;
        b.sig[free] = sig;
        b.at[free] = off;
    }
    size_t size = table.size() * sizeof(Bucket);
    rte_free(buckets_);
    buckets_ = static_cast<Bucket *>(rte_malloc_socket("acl_exact", size, 64, socket_));
    if (!buckets_) throw std::runtime_error("acl exact-match table: out of memory");
    std::memcpy(static_cast<void *>(buckets_), table.data(), size);
    return true;
}

template <unsigned Bytes>
std::unique_ptr<AclExact<Bytes>>
AclExact<Bytes>::build(const AclPolicy &p, const std::vector<uint32_t> &which,
                       const std::vector<uint32_t> &rank, bool key_src, int socket) {
    using Key = std::pair<std::array<uint8_t, Bytes>, uint32_t>; // address, tag
    std::map<Key, std::vector<uint32_t>> own;
    for (uint32_t i : which) {
        const AclRule &r = p.rules[i];
        Key k;
        std::copy_n((key_src ? r.src : r.dst).addr.bytes.begin(), Bytes, k.first.begin());
        if (!r.proto)
            k.second = kKindAny;
        else if (acl_has_ports(*r.proto) && r.dport_lo == r.dport_hi)
            k.second = *r.proto | kKindPort | uint32_t(r.dport_lo) << 16;
        else
            k.second = *r.proto | kKindProto;
        own[k].push_back(i);
    }

    std::unique_ptr<AclExact> t(new AclExact);
    t->socket_ = socket;
    t->key_ = key_src ? kSrc : kDst;
    t->other_ = key_src ? kDst : kSrc;
    std::vector<uint8_t> pool(64); // offset 0 means "no group"
    std::vector<uint32_t> offsets;
    for (const auto &kv : own) {
        const Key &k = kv.first;
        const uint32_t kind = k.second & 0xff00;
        std::vector<uint32_t> rules = kv.second;
        auto add = [&](uint32_t tag) {
            if (auto it = own.find(Key{k.first, tag}); it != own.end())
                rules.insert(rules.end(), it->second.begin(), it->second.end());
        };
        if (kind == kKindPort) add((k.second & 0xff) | kKindProto);
        if (kind != kKindAny) add(kKindAny);
        if (rules.size() > kMaxGroup) return nullptr;
        t->any_port_ |= kind == kKindProto;
        t->any_ |= kind == kKindAny;
        std::sort(rules.begin(), rules.end(),
                  [&](uint32_t a, uint32_t b) { return rank[a] < rank[b]; });
        auto counts = std::stable_partition(rules.begin(), rules.end(), [&](uint32_t i) {
            return p.rules[i].action != AclAction::Count;
        });

        Group g{};
        std::memcpy(g.addr, k.first.data(), Bytes);
        g.tag = k.second;
        g.decide = uint16_t(counts - rules.begin());
        g.count = uint16_t(rules.end() - counts);
        const size_t size = sizeof(Group) + rules.size() * sizeof(Entry);
        size_t off = (pool.size() + alignof(Entry) - 1) / alignof(Entry) * alignof(Entry);
        if (size <= 64 && off / 64 != (off + size - 1) / 64) off = (off + 63) / 64 * 64;
        pool.resize(off + size);
        std::memcpy(&pool[off], &g, sizeof g);
        for (size_t j = 0; j < rules.size(); j++) {
            const AclRule &r = p.rules[rules[j]];
            const Prefix &o = key_src ? r.dst : r.src;
            std::array<uint8_t, Bytes> addr{}, mask{};
            for (unsigned bit = 0; bit < o.len; bit++) mask[bit / 8] |= uint8_t(0x80 >> (bit % 8));
            for (unsigned b = 0; b < Bytes; b++) addr[b] = o.addr.bytes[b] & mask[b];
            Entry e{};
            std::memcpy(e.addr, addr.data(), Bytes);
            std::memcpy(e.mask, mask.data(), Bytes);
            // As rte_acl sees them (acl_set.cpp): an ICMP type is the first L4 byte.
            uint16_t lo = r.sport_lo, hi = r.sport_hi;
            if (r.icmp_type) lo = uint16_t(*r.icmp_type << 8), hi = uint16_t(lo | 0xff);
            e.lo[0] = lo, e.span[0] = uint16_t(hi - lo);
            e.lo[1] = r.dport_lo, e.span[1] = uint16_t(r.dport_hi - r.dport_lo);
            e.rank = rank[rules[j]];
            e.rule = rules[j] | (r.action == AclAction::Deny ? kAclDenyBit : 0);
            std::memcpy(&pool[off + sizeof(Group) + j * sizeof(Entry)], &e, sizeof e);
        }
        offsets.push_back(uint32_t(off));
    }

    t->pool_ = static_cast<uint8_t *>(rte_malloc_socket("acl_exact", pool.size(), 64, socket));
    if (!t->pool_) throw std::runtime_error("acl exact-match groups: out of memory");
    std::memcpy(t->pool_, pool.data(), pool.size());
    // Two keys per bucket of eight on average; a few seeds per size, then twice the size.
    unsigned log2 = 0;
    while ((size_t(2) << log2) < offsets.size()) log2++;
    for (unsigned attempt = 0; attempt < 12; attempt++)
        if (t->place(offsets, log2 + attempt / 3, 0x61636c00u + attempt)) return t;
    return nullptr;
}

template <unsigned Bytes> AclExact<Bytes>::~AclExact() {
    rte_free(buckets_);
    rte_free(pool_);
}

template class AclExact<4>;
template class AclExact<16>;

} // namespace vleaf::dp
