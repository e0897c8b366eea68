#include "dataplane/lb_flows.hpp"

namespace vleaf::dp {

namespace {

constexpr unsigned kSearch = 128; // buckets a cuckoo search looks at

int free_way(const FlowBucket &bk) {
    for (unsigned w = 0; w < kFlowWays; w++)
        if (!bk.way[w].key.k1) return int(w);
    return -1;
}

void move_way(FlowWay &to, FlowWay &from) {
    to = from;
    from.key = {};
}

// Frees a way of bucket `start` by moving a chain of keys each to its other bucket. The
// shortest chain that ends in a free way is searched breadth first, then moved from its
// end, so no key is ever out of the table.
int make_room(LbFlows &f, uint32_t start) {
    struct Node {
        uint32_t b;
        int parent;   // -1: start
        unsigned way; // the way of the parent's bucket whose key moves here
    };
    Node q[kSearch];
    unsigned n = 1;
    q[0] = {start, -1, 0};
    for (unsigned head = 0; head < n; head++) {
        for (unsigned w = 0; w < kFlowWays; w++) {
            const uint32_t b = q[head].b;
            const uint32_t next = flow_bucket2(f, b, flow_sig(f.bucket[b].way[w].key));
            bool on_path = false; // moving through a bucket twice would lose a key
            for (int a = int(head); a >= 0 && !on_path; a = q[a].parent) on_path = q[a].b == next;
            if (on_path) continue;
            if (int fw = free_way(f.bucket[next]); fw >= 0) {
                move_way(f.bucket[next].way[fw], f.bucket[b].way[w]);
                unsigned freed = w;
                for (int at = int(head); q[at].parent >= 0; at = q[at].parent) {
                    move_way(f.bucket[q[at].b].way[freed],
                             f.bucket[q[q[at].parent].b].way[q[at].way]);
                    freed = q[at].way;
                }
                return int(freed);
            }
            if (n < kSearch) q[n++] = {next, int(head), w};
        }
    }
    return -1;
}

} // namespace

FlowWay *flow_insert(LbFlows &f, const FlowKey &k, uint32_t sig) {
    FlowKind kind = FlowKind(k.k1 >> 56);
    bool v6 = kind == kFlowRequest6 || kind == kFlowReply6;
    if (f.used == f.capacity || (v6 && !f.nfree6)) return nullptr;
    uint32_t b1 = flow_bucket1(f, sig), b2 = flow_bucket2(f, b1, sig);
    uint32_t b = b1;
    int w = free_way(f.bucket[b1]);
    if (w < 0) w = free_way(f.bucket[b = b2]);
    if (w < 0) w = make_room(f, b = b1);
    if (w < 0) w = make_room(f, b = b2);
    if (w < 0) return nullptr;
    f.used++;
    FlowWay &way = f.bucket[b].way[w];
    way.key = k;
    if (v6) way.to = f.free6[--f.nfree6];
    return &way;
}

} // namespace vleaf::dp
