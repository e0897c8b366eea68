#include "dataplane/lb_flows.hpp"

#include <rte_malloc.h>

namespace vleaf::dp {

namespace {

constexpr unsigned kMaxMoves = 8; // length of a cuckoo path

int free_way(const FlowBucket &bk) {
    for (unsigned w = 0; w < kFlowWays; w++)
        if (!bk.sig[w]) return int(w);
    return -1;
}

void move_slot(FlowBucket &to, unsigned tw, FlowBucket &from, unsigned fw) {
    to.sig[tw] = from.sig[fw];
    to.idx[tw] = from.idx[fw];
    to.service[tw] = from.service[fw];
    to.seen[tw] = from.seen[fw];
    from.sig[fw] = 0;
}

// Frees a way of bucket `start` by moving a chain of keys each to its other bucket; the
// chain is found first and moved from its end, so no key is ever out of the table.
int make_room(LbFlows &f, uint32_t start, uint32_t seed) {
    uint32_t path[kMaxMoves];
    unsigned way[kMaxMoves];
    uint32_t b = start;
    for (unsigned d = 0; d < kMaxMoves; d++) {
        unsigned w = (seed + d) % kFlowWays;
        path[d] = b;
        way[d] = w;
        uint32_t next = flow_bucket2(f, b, f.bucket[b].sig[w]);
        for (unsigned k = 0; k <= d; k++)
            if (path[k] == next) return -1; // a cycle: try another chain
        if (int fw = free_way(f.bucket[next]); fw >= 0) {
            move_slot(f.bucket[next], unsigned(fw), f.bucket[b], w);
            for (unsigned k = d; k-- > 0;)
                move_slot(f.bucket[path[k + 1]], way[k + 1], f.bucket[path[k]], way[k]);
            return int(way[0]);
        }
        b = next;
    }
    return -1;
}

} // namespace

bool flow_insert(LbFlows &f, const FlowKey &k, uint32_t sig, FlowSlot &at) {
    if (!f.nfree) return false;
    uint32_t b1 = flow_bucket1(f, sig), b2 = flow_bucket2(f, b1, sig);
    uint32_t b = b1;
    int w = free_way(f.bucket[b1]);
    if (w < 0) w = free_way(f.bucket[b = b2]);
    for (uint32_t seed = 0; w < 0 && seed < 2 * kFlowWays; seed++)
        w = make_room(f, b = seed & 1 ? b2 : b1, sig + seed);
    if (w < 0) return false;
    uint32_t idx = f.free[--f.nfree];
    f.used++;
    std::memcpy(&f.e[idx].key, &k, sizeof k);
    FlowBucket &bk = f.bucket[b];
    bk.sig[w] = sig;
    bk.idx[w] = idx;
    at = {&bk, unsigned(w)};
    return true;
}

} // namespace vleaf::dp
