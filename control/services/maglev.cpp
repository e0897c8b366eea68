#include "control/services/maglev.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <tuple>

namespace vleaf::svc {

bool is_prime(uint32_t n) {
    if (n < 2) return false;
    for (uint64_t d = 2; d * d <= n; d++)
        if (n % d == 0) return false;
    return true;
}

namespace {

// FNV-1a over the backend's identity, then a finaliser; the seed separates the offset and
// skip hashes as the paper's two hash functions. Bytes, not structs, so padding, pointers
// and endianness never leak in.
uint64_t identity_hash(const Backend &b, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    auto eat = [&h](uint8_t byte) { h = (h ^ byte) * 0x100000001b3ULL; };
    eat(static_cast<uint8_t>(b.addr.family));
    for (int i = 0; i < (b.addr.is_v4() ? 4 : 16); i++) eat(b.addr.bytes[i]);
    eat(static_cast<uint8_t>(b.port >> 8));
    eat(static_cast<uint8_t>(b.port));
    return mix64(h);
}

constexpr uint64_t kOffsetSeed = 0x6d61676c65762d6fULL, kSkipSeed = 0x6d61676c65762d73ULL;

} // namespace

std::vector<uint32_t> build(uint32_t table_size, const std::vector<Backend> &backends) {
    if (table_size < kDefaultTableSize || !is_prime(table_size))
        throw std::invalid_argument("maglev table size " + std::to_string(table_size) +
                                    " must be a prime >= 65537");
    // Canonical turn order: who claims a contested slot first must not depend on input order.
    std::vector<uint32_t> order(backends.size());
    std::iota(order.begin(), order.end(), 0u);
    auto key = [&](uint32_t i) { return std::tie(backends[i].addr, backends[i].port); };
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return key(a) < key(b); });
    for (size_t k = 1; k < order.size(); k++)
        if (key(order[k - 1]) == key(order[k]))
            throw std::invalid_argument("maglev backend " + backends[order[k]].addr.str() +
                                        " port " + std::to_string(backends[order[k]].port) +
                                        " listed twice");
    std::erase_if(order, [&](uint32_t i) { return backends[i].weight == 0; });

    std::vector<uint32_t> table(table_size, kNoBackend);
    if (order.empty()) return table;
    uint32_t g = 0;
    for (uint32_t i : order) g = std::gcd(g, backends[i].weight);

    struct Perm {
        uint32_t offset, skip, next;
    };
    std::vector<Perm> perm;
    perm.reserve(order.size());
    for (uint32_t i : order)
        perm.push_back(
            {static_cast<uint32_t>(identity_hash(backends[i], kOffsetSeed) % table_size),
             static_cast<uint32_t>(identity_hash(backends[i], kSkipSeed) % (table_size - 1)) + 1,
             0});
    // skip in [1, M-1] and M prime: each backend's sequence visits every slot exactly once,
    // so a turn always finds a free slot while the table is not full.
    uint32_t filled = 0;
    while (true) {
        for (size_t k = 0; k < order.size(); k++) {
            for (uint32_t t = backends[order[k]].weight / g; t > 0; t--) {
                Perm &p = perm[k];
                uint32_t slot;
                do {
                    slot =
                        static_cast<uint32_t>((p.offset + uint64_t(p.next) * p.skip) % table_size);
                    p.next++;
                } while (table[slot] != kNoBackend);
                table[slot] = order[k];
                if (++filled == table_size) return table;
            }
        }
    }
}

} // namespace vleaf::svc
