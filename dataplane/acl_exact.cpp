#include "dataplane/acl_exact.hpp"

#include <rte_malloc.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <stdexcept>

namespace vleaf::dp {

namespace {

constexpr uint32_t kKindPort = 0, kKindProto = 1 << 8, kKindAny = 2 << 8;
// The tag of a free bucket: no group or packet has kind 0xff.
constexpr uint32_t kEmpty = 0xff << 8;
// A group further than this from its home bucket: the build tries another seed or size.
constexpr uint32_t kMaxProbes = 8;

inline uint16_t be16(const uint8_t *p) {
    return uint16_t(p[0] << 8 | p[1]);
}

} // namespace

template <unsigned Bytes>
inline const typename AclExact<Bytes>::Bucket *
AclExact<Bytes>::resolve(const Word *addr, uint32_t tag, uint32_t h) const {
    auto holds = [&](const Bucket &b) {
        return b.tag == tag && std::memcmp(b.addr, addr, Bytes) == 0;
    };
    const Bucket *b = &buckets_[h & mask_];
    if (holds(*b)) return b;
    if (!b->chain) return nullptr;
    for (uint32_t k = 1; k <= probes_; k++) {
        b = &buckets_[(h + k) & mask_];
        if (holds(*b)) return b;
        if (b->tag == kEmpty) return nullptr;
    }
    return nullptr;
}

template <unsigned Bytes>
inline AclMatch AclExact<Bytes>::scan(const Bucket *b, const uint8_t *in) const {
    Word a[kWords];
    std::memcpy(a, in + other_, Bytes);
    const uint16_t l4[2] = {be16(in + kL4), be16(in + kL4 + 2)};
    const unsigned decide = b->decide, all = decide + b->count;
    const Entry *e = all <= kInline ? b->rules : pool_ + b->more;
    auto hit = [&](const Entry &x) {
        bool m =
            (uint16_t(l4[0] - x.lo[0]) <= x.span[0]) & (uint16_t(l4[1] - x.lo[1]) <= x.span[1]);
        for (unsigned w = 0; w < kWords; w++) m &= (a[w] & x.mask[w]) == x.addr[w];
        return m;
    };
    AclMatch r{kNoRank, kNoRank, 0, 0};
    for (unsigned k = 0; k < decide; k++)
        if (hit(e[k])) {
            r.decide = e[k].rank, r.rule = e[k].rule;
            break;
        }
    for (unsigned k = decide; k < all; k++)
        if (hit(e[k])) {
            r.count = e[k].rank, r.counted = e[k].rule;
            break;
        }
    return r;
}

template <unsigned Bytes>
void AclExact<Bytes>::lookup(const uint8_t *const in[], unsigned n, AclMatch out[],
                             const uint32_t *home) const {
    static_assert(kKindPort == 0, "prefetch() leaves the kind out");
    uint32_t h[64];
    // Two passes over the burst, so that the bucket misses of all packets overlap instead
    // of following one another: hash and prefetch the home bucket (unless the caller did);
    // then find the group and check its rules. When the packet's port has no group, the
    // protocol's and then the address's are tried, without prefetch (port ranges, ICMP,
    // protocol-less rules).
    if (!home) {
        for (unsigned i = 0; i < n; i++) h[i] = prefetch(in[i]);
        home = h;
    }
    for (unsigned i = 0; i < n; i++) {
        Word a[kWords];
        std::memcpy(a, in[i] + key_, Bytes);
        const uint32_t proto = in[i][0];
        const Bucket *b =
            resolve(a, proto | kKindPort | uint32_t(be16(in[i] + kL4 + 2)) << 16, home[i]);
        if (!b && any_port_) b = find(a, proto | kKindProto);
        if (!b && any_) b = find(a, kKindAny);
        out[i] = b ? scan(b, in[i]) : AclMatch{kNoRank, kNoRank, 0, 0};
    }
}

template <unsigned Bytes>
bool AclExact<Bytes>::place(const std::vector<Bucket> &groups, unsigned log2_buckets,
                            uint32_t seed) {
    seed_ = seed;
    mask_ = (1u << log2_buckets) - 1;
    probes_ = 0;
    std::vector<Bucket> table(size_t(1) << log2_buckets);
    for (Bucket &b : table) b.tag = kEmpty;
    for (const Bucket &g : groups) {
        const uint32_t h = hash(g.addr, g.tag);
        uint32_t k = 0;
        while (table[(h + k) & mask_].tag != kEmpty)
            if (++k > kMaxProbes) return false;
        Bucket &b = table[(h + k) & mask_];
        const uint8_t chain = b.chain; // the flag belongs to the bucket, not to its group
        b = g;
        b.chain = chain;
        if (k) table[h & mask_].chain = 1;
        probes_ = std::max(probes_, k);
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
    std::vector<Bucket> groups;
    std::vector<Entry> pool;
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

        Bucket g{};
        std::memcpy(g.addr, k.first.data(), Bytes);
        g.tag = k.second;
        g.decide = uint8_t(counts - rules.begin());
        g.count = uint8_t(rules.end() - counts);
        g.more = uint32_t(pool.size());
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
            if (rules.size() <= kInline)
                g.rules[j] = e;
            else
                pool.push_back(e);
        }
        groups.push_back(g);
    }

    if (!pool.empty()) {
        const size_t size = pool.size() * sizeof(Entry);
        t->pool_ = static_cast<Entry *>(rte_malloc_socket("acl_exact", size, 64, socket));
        if (!t->pool_) throw std::runtime_error("acl exact-match groups: out of memory");
        std::memcpy(static_cast<void *>(t->pool_), pool.data(), size);
    }
    // At most one group per three buckets, so that most sit in their home bucket and a
    // missing key rarely probes further; a few seeds per size, then twice the size.
    unsigned log2 = 0;
    while ((size_t(1) << log2) < 3 * groups.size()) log2++;
    for (unsigned attempt = 0; attempt < 12; attempt++)
        if (t->place(groups, log2 + attempt / 3, 0x61636c00u + attempt)) return t;
    return nullptr;
}

template <unsigned Bytes> AclExact<Bytes>::~AclExact() {
    rte_free(buckets_);
    rte_free(pool_);
}

template class AclExact<4>;
template class AclExact<16>;

} // namespace vleaf::dp
