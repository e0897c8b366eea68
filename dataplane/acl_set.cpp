#include "dataplane/acl_set.hpp"

#include <rte_malloc.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <netinet/in.h>
#include <numeric>
#include <stdexcept>
#include <string>

namespace vleaf::dp {

namespace {

// rte_acl reads each packet at fixed offsets from one pointer: the protocol byte first
// (rte_acl's first field is one byte), then 4-byte groups, in network byte order. The
// offsets are those of a plain IP header from its protocol byte on (IPv4: the byte at 9,
// src at 12, dst at 16, ports at 20; IPv6: next header at 6, src at 8, dst at 24, ports at
// 40), so plain packets are classified in place. Only packets whose L4 header is elsewhere
// (IPv4 options, IPv6 extension headers), later fragments and truncated packets get a key
// copied into this same layout.
struct Key4 {
    uint8_t proto, skip[2];
    uint8_t src[4], dst[4];
    uint8_t l4[4]; // source and destination port, or ICMP type and code
};
struct Key6 {
    uint8_t proto, skip;
    uint8_t src[16], dst[16];
    uint8_t l4[4];
};
static_assert(offsetof(Key4, src) == 12 - 9 && offsetof(Key4, l4) == 20 - 9);
static_assert(offsetof(Key6, src) == 8 - 6 && offsetof(Key6, l4) == 40 - 6);
// The exact-match part reads the same layout.
static_assert(offsetof(Key4, src) == AclExact<4>::kSrc && offsetof(Key4, l4) == AclExact<4>::kL4);
static_assert(offsetof(Key6, src) == AclExact<16>::kSrc && offsetof(Key6, l4) == AclExact<16>::kL4);

enum Cat : uint32_t { kDecide = 1, kCount = 2 };
constexpr unsigned kChunk = 64;
constexpr size_t kSseRules = 1000;

rte_acl_field_def field(uint8_t type, uint8_t size, uint8_t index, uint8_t input, size_t off) {
    return {type, size, index, input, static_cast<uint32_t>(off)};
}

// proto | address words | l4: the address fields are 32-bit masks, one per word.
template <typename Key> std::vector<rte_acl_field_def> layout() {
    constexpr size_t words = sizeof(Key::src) / 4;
    std::vector<rte_acl_field_def> defs{
        field(RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, offsetof(Key, proto))};
    for (size_t w = 0; w < 2 * words; w++) {
        size_t off = (w < words ? offsetof(Key, src) : offsetof(Key, dst)) + 4 * (w % words);
        defs.push_back(field(RTE_ACL_FIELD_TYPE_MASK, 4, uint8_t(1 + w), uint8_t(1 + w), off));
    }
    uint8_t f = uint8_t(1 + 2 * words);
    defs.push_back(field(RTE_ACL_FIELD_TYPE_RANGE, 2, f, f, offsetof(Key, l4)));
    defs.push_back(field(RTE_ACL_FIELD_TYPE_RANGE, 2, uint8_t(f + 1), f, offsetof(Key, l4) + 2));
    return defs;
}

void check(const AclRule &r, size_t i) {
    if (std::string e = acl_rule_error(r); !e.empty())
        throw std::invalid_argument("acl rule " + std::to_string(i) + ": " + e);
}

// The layout RTE_ACL_RULE_DEF declares, as a template over the field count.
template <size_t Fields> struct AclRuleN {
    rte_acl_rule_data data;
    rte_acl_field field[Fields];
};

template <typename Key, size_t Fields> void fill(AclRuleN<Fields> &out, const AclRule &r) {
    out.field[0].value.u8 = r.proto.value_or(0);
    out.field[0].mask_range.u8 = r.proto ? 0xff : 0;
    constexpr size_t words = sizeof(Key::src) / 4;
    const Prefix *pfx[2] = {&r.src, &r.dst};
    for (size_t w = 0; w < 2 * words; w++) {
        const Prefix &p = *pfx[w / words];
        const uint8_t *b = p.addr.bytes.data() + 4 * (w % words);
        int bits = std::clamp(int(p.len) - 32 * int(w % words), 0, 32);
        // Rules are in host byte order (the input is in network order).
        uint32_t v = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
        out.field[1 + w].value.u32 = bits ? v & (~0u << (32 - bits)) : 0;
        out.field[1 + w].mask_range.u32 = static_cast<uint32_t>(bits);
    }
    // The first two L4 bytes are the source port, or ICMP type then code.
    uint16_t lo = r.sport_lo, hi = r.sport_hi;
    if (r.icmp_type) lo = uint16_t(*r.icmp_type << 8), hi = uint16_t(lo | 0xff);
    out.field[1 + 2 * words] = {{.u16 = lo}, {.u16 = hi}};
    out.field[2 + 2 * words] = {{.u16 = r.dport_lo}, {.u16 = r.dport_hi}};
}

// Compiles rules `which` (of family `fam`) into rte_acl; `rank[i]` orders rules (0 is the
// best) and is what a match returns, plus one.
template <typename Key>
rte_acl_ctx *compile_acl(const AclPolicy &p, Family fam, const std::vector<uint32_t> &which,
                         const std::vector<uint32_t> &rank, uint32_t categories, int socket) {
    constexpr size_t kFields = 3 + 2 * (sizeof(Key::src) / 4);
    using Rule = AclRuleN<kFields>;
    std::vector<Rule> rules;
    for (uint32_t i : which) {
        const AclRule &r = p.rules[i];
        Rule &out = rules.emplace_back();
        std::memset(&out, 0, sizeof out);
        out.data.category_mask = r.action == AclAction::Count ? kCount : kDecide;
        // rte_acl prefers the highest priority and leaves ties unspecified: make all distinct.
        out.data.priority = static_cast<int32_t>(RTE_ACL_MAX_PRIORITY - rank[i]);
        out.data.userdata = rank[i] + 1; // 0 means "no match"
        fill<Key, kFields>(out, r);
    }
    if (rules.empty()) return nullptr;

    // rte_acl_create returns an existing context of the same name: names must be unique.
    static std::atomic<unsigned> serial{0};
    std::string name = "acl" + std::to_string(int(fam)) + "_" + std::to_string(serial++);
    rte_acl_param param{name.c_str(), socket, RTE_ACL_RULE_SZ(kFields), uint32_t(rules.size())};
    rte_acl_ctx *ctx = rte_acl_create(&param);
    if (!ctx) throw std::runtime_error("rte_acl_create " + name + " failed");
    rte_acl_config cfg{};
    cfg.num_categories = categories;
    auto defs = layout<Key>();
    cfg.num_fields = static_cast<uint32_t>(defs.size());
    std::copy(defs.begin(), defs.end(), cfg.defs);
    int rc = rte_acl_add_rules(ctx, reinterpret_cast<const rte_acl_rule *>(rules.data()),
                               uint32_t(rules.size()));
    if (rc == 0) rc = rte_acl_build(ctx, &cfg);
    if (rc != 0) {
        rte_acl_free(ctx);
        throw std::runtime_error("rte_acl build of " + std::to_string(rules.size()) + " IPv" +
                                 std::to_string(int(fam)) + " rules failed: " + std::to_string(rc));
    }
    // rte_acl picks its widest method (AVX2: 16 lookups in flight). Measured on Zen 3
    // (bench/README.md), SSE's 8 are cheaper while the trie fits in L2 (up to ~1000 rules)
    // and AVX2 hides more cache misses beyond. Without SSE4.1 the default stays.
    if (rules.size() <= kSseRules) rte_acl_set_ctx_classify(ctx, RTE_ACL_CLASSIFY_SSE);
    return ctx;
}

void set_l4(uint8_t out[4], const uint8_t *l4, const uint8_t *end) {
    if (l4 + 4 <= end)
        std::memcpy(out, l4, 4);
    else
        std::memset(out, 0, 4);
}

void key_of(const uint8_t *ip, uint16_t len, Key4 &k) {
    if (len < 20) { // too short to classify: all-zero key, only wildcard rules match
        std::memset(&k, 0, sizeof k);
        return;
    }
    k.proto = ip[9];
    std::memcpy(k.src, ip + 12, 4);
    std::memcpy(k.dst, ip + 16, 4);
    unsigned ihl = (ip[0] & 0xfu) * 4u;
    bool later_fragment = ((ip[6] & 0x1fu) << 8 | ip[7]) != 0;
    if (ihl < 20 || later_fragment)
        std::memset(k.l4, 0, 4);
    else
        set_l4(k.l4, ip + ihl, ip + len);
}

void key_of(const uint8_t *ip, uint16_t len, Key6 &k) {
    if (len < 40) {
        std::memset(&k, 0, sizeof k);
        return;
    }
    std::memcpy(k.src, ip + 8, 16);
    std::memcpy(k.dst, ip + 24, 16);
    const uint8_t *end = ip + len, *p = ip + 40;
    uint8_t nh = ip[6];
    // Bounded walk: a chain longer than this is classified at the header it stops at.
    for (int hops = 0; hops < 8 && p + 8 <= end; hops++) {
        if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
            nh = p[0];
            p += (size_t{p[1]} + 1) * 8;
        } else if (nh == IPPROTO_AH) {
            nh = p[0];
            p += (size_t{p[1]} + 2) * 4;
        } else if (nh == IPPROTO_FRAGMENT) {
            nh = p[0];
            if (((p[2] << 8 | p[3]) & 0xfff8) != 0)
                p = end; // later fragment: no L4 header
            else
                p += 8;
        } else {
            break;
        }
    }
    k.proto = nh;
    set_l4(k.l4, p, end);
}

// Where rte_acl reads the packet: in place when the header is plain, else a copied key.
const uint8_t *input(const uint8_t *ip, uint16_t len, Key4 &k) {
    if (len >= 24 && ip[0] == 0x45 && ((ip[6] & 0x1fu) | ip[7]) == 0) return ip + 9;
    key_of(ip, len, k);
    return &k.proto;
}

const uint8_t *input(const uint8_t *ip, uint16_t len, Key6 &k) {
    if (len >= 44) {
        uint8_t nh = ip[6];
        if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
            nh != IPPROTO_AH && nh != IPPROTO_FRAGMENT)
            return ip + 6;
    }
    key_of(ip, len, k);
    return &k.proto;
}

} // namespace

std::unique_ptr<const AclSet> AclSet::build(const AclPolicy &p, unsigned workers, int socket) {
    if (workers == 0) throw std::invalid_argument("acl set needs at least one worker");
    if (p.default_action == AclAction::Count)
        throw std::invalid_argument("acl default action must be allow or deny");
    for (size_t i = 0; i < p.rules.size(); i++) check(p.rules[i], i);

    std::unique_ptr<AclSet> s(new AclSet);
    std::vector<uint32_t> order(p.rules.size()), rank(p.rules.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return p.rules[a].priority < p.rules[b].priority;
    });
    for (uint32_t r = 0; r < order.size(); r++) rank[order[r]] = r;
    s->default_ = p.default_action;
    for (uint32_t i : order)
        s->by_rank_.push_back(i | (p.rules[i].action == AclAction::Deny ? kAclDenyBit : 0));
    s->workers_ = workers;
    s->stride_ = (p.rules.size() + 1 + 7) / 8 * 8; // + the default's; rows of whole lines
    s->hits_ = static_cast<uint64_t *>(
        rte_zmalloc_socket("acl_hits", s->stride_ * workers * sizeof(uint64_t), 64, socket));
    if (!s->hits_) throw std::runtime_error("acl hit counters: out of memory");
    compile<4, Key4>(p, Family::V4, rank, s->exact4_, s->part4_, socket);
    compile<16, Key6>(p, Family::V6, rank, s->exact6_, s->part6_, socket);
    return s;
}

template <unsigned Bytes, typename Key>
void AclSet::compile(const AclPolicy &p, Family fam, const std::vector<uint32_t> &rank,
                     std::unique_ptr<AclExact<Bytes>> &exact, Part &part, int socket) {
    constexpr uint8_t host = Bytes * 8;
    std::vector<uint32_t> all;
    size_t dst_host = 0, src_host = 0;
    for (uint32_t i = 0; i < p.rules.size(); i++) {
        const AclRule &r = p.rules[i];
        if (r.src.addr.family != fam) continue;
        all.push_back(i);
        dst_host += r.dst.len == host;
        src_host += r.src.len == host;
    }
    const bool key_src = src_host > dst_host;
    std::vector<uint32_t> pinned, rest;
    uint32_t best_rest = kNoRank;
    for (uint32_t i : all) {
        if ((key_src ? p.rules[i].src : p.rules[i].dst).len == host) {
            pinned.push_back(i);
        } else {
            rest.push_back(i);
            best_rest = std::min(best_rest, rank[i]);
        }
    }
    size_t ahead = 0;
    for (uint32_t i : pinned) ahead += rank[i] < best_rest;
    if (!pinned.empty() &&
        (rest.empty() || 2 * ahead >= pinned.size() || pinned.size() > rest.size()))
        exact = AclExact<Bytes>::build(p, pinned, rank, key_src, socket);
    if (exact)
        part.exact_rules = pinned.size();
    else
        rest = all;
    for (uint32_t i : rest) {
        uint32_t &best = p.rules[i].action == AclAction::Count ? part.count : part.decide;
        best = std::min(best, rank[i]);
    }
    if (part.count != kNoRank) part.categories = RTE_ACL_RESULTS_MULTIPLIER;
    part.ctx = compile_acl<Key>(p, fam, rest, rank, part.categories, socket);
}

AclSet::~AclSet() {
    rte_acl_free(part4_.ctx);
    rte_acl_free(part6_.ctx);
    rte_free(hits_);
}

template <typename Key, unsigned Bytes>
void AclSet::classify(const Part &part, const AclExact<Bytes> *exact, const uint8_t *const l3[],
                      const uint16_t len[], unsigned n, AclVerdict out[], unsigned worker) const {
    for (unsigned base = 0; base < n; base += kChunk) {
        unsigned c = std::min(kChunk, n - base);
        Key keys[kChunk]; // filled only for packets not read in place
        const uint8_t *data[kChunk];
        for (unsigned i = 0; i < c; i++) data[i] = input(l3[base + i], len[base + i], keys[i]);
        decide<true>(part, exact, data, nullptr, c, out + base, worker);
    }
}

template <bool kVerdicts, unsigned Bytes>
uint64_t AclSet::decide(const Part &part, const AclExact<Bytes> *exact, const uint8_t *const data[],
                        const uint32_t *home, unsigned n, AclVerdict out[], unsigned worker) const {
    uint64_t *row = hits_ + worker * stride_;
    const uint32_t none = static_cast<uint32_t>(size()); // the default's counter
    AclMatch r[kChunk];
    if (exact)
        exact->lookup(data, n, r, home);
    else
        std::fill_n(r, n, AclMatch{kNoRank, kNoRank, 0, 0});
    if (part.ctx) {
        // Only the packets for which a rule in rte_acl could still change the outcome.
        const uint8_t *sub[kChunk];
        uint8_t at[kChunk];
        unsigned m = 0;
        for (unsigned i = 0; i < n; i++)
            if (r[i].decide > part.decide || r[i].count > part.count) {
                sub[m] = data[i];
                at[m++] = uint8_t(i);
            }
        uint32_t res[kChunk * RTE_ACL_RESULTS_MULTIPLIER];
        if (m) rte_acl_classify(part.ctx, sub, res, m, part.categories);
        for (unsigned j = 0; j < m; j++) {
            AclMatch &x = r[at[j]];
            const uint32_t *got = res + size_t(j) * part.categories;
            // A match returns its rank + 1, 0 for none.
            uint32_t d = got[0] - 1;
            if (d < x.decide) x.decide = d, x.rule = by_rank_[d];
            if (part.categories > 1) {
                uint32_t k = got[1] - 1;
                if (k < x.count) x.count = k, x.counted = by_rank_[k];
            }
        }
    }
    const bool deny_default = default_ == AclAction::Deny;
    uint64_t deny = 0;
    for (unsigned i = 0; i < n; i++) {
        const bool decided = r[i].decide != kNoRank, counted = r[i].count != kNoRank;
        const uint32_t rule = decided ? r[i].rule & ~kAclDenyBit : kAclDefault;
        const bool denied = decided ? (r[i].rule & kAclDenyBit) != 0 : deny_default;
        deny |= uint64_t(denied) << i;
        row[decided ? rule : none]++;
        if (counted) row[r[i].counted]++;
        if constexpr (kVerdicts)
            out[i] = {denied ? AclAction::Deny : AclAction::Allow, rule,
                      counted ? r[i].counted : kAclDefault};
    }
    return deny;
}

void AclSet::classify4(const uint8_t *const l3[], const uint16_t len[], unsigned n,
                       AclVerdict out[], unsigned worker) const {
    classify<Key4>(part4_, exact4_.get(), l3, len, n, out, worker);
}

uint64_t AclSet::deny4_plain(const uint8_t *const frame[], unsigned proto, const uint32_t home[],
                             unsigned n, unsigned worker) const {
    static_assert(offsetof(Key4, proto) == 0);
    const uint8_t *data[kChunk];
    for (unsigned i = 0; i < n; i++) data[i] = frame[i] + proto;
    return decide<false>(part4_, exact4_.get(), data, home, n, nullptr, worker);
}

void AclSet::classify6(const uint8_t *const l3[], const uint16_t len[], unsigned n,
                       AclVerdict out[], unsigned worker) const {
    classify<Key6>(part6_, exact6_.get(), l3, len, n, out, worker);
}

uint64_t AclSet::hits(uint32_t rule) const {
    size_t col = rule == kAclDefault ? size() : rule;
    if (col > size()) return 0;
    uint64_t sum = 0;
    for (unsigned w = 0; w < workers_; w++) sum += hits_[w * stride_ + col];
    return sum;
}

} // namespace vleaf::dp
