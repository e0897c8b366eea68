// Best path selection, RFC 4271 9.1.2.2 with the usual extensions (locally originated
// first, router id / ORIGINATOR_ID and CLUSTER_LIST length from RFC 4456 9, peer
// address last), and the ECMP sibling rule.
#include "control/bgp/rib.hpp"

#include <algorithm>

namespace vleaf::bgp {

namespace {

size_t path_len(const PathAttrs &a) {
    return a.as_path ? a.as_path->length() : 0;
}

uint8_t origin_rank(const PathAttrs &a) {
    return uint8_t(a.origin.value_or(Origin::Incomplete));
}

// The AS a path entered ours from; 0 for routes originated inside our AS.
uint32_t neighbor_as(const PathAttrs &a) {
    if (!a.as_path) return 0;
    return a.as_path->first_as().value_or(0);
}

} // namespace

bool Rib::better(const Path &a, const Path &b) const {
    const AttrData &x = *a.attrs, &y = *b.attrs;
    if (x.local_pref() != y.local_pref()) return x.local_pref() > y.local_pref();
    bool xl = a.peer == kLocalPeer, yl = b.peer == kLocalPeer;
    if (xl != yl) return xl;
    size_t xlen = path_len(x.attrs), ylen = path_len(y.attrs);
    if (xlen != ylen) return xlen < ylen;
    if (origin_rank(x.attrs) != origin_rank(y.attrs))
        return origin_rank(x.attrs) < origin_rank(y.attrs);
    if (opt_.always_compare_med || neighbor_as(x.attrs) == neighbor_as(y.attrs)) {
        // RFC 4271 9.1.2.2 c: a missing MED counts as 0.
        uint32_t xm = x.attrs.med.value_or(0), ym = y.attrs.med.value_or(0);
        if (xm != ym) return xm < ym;
    }
    bool xe = !peers_[a.peer].ibgp && !xl, ye = !peers_[b.peer].ibgp && !yl;
    if (xe != ye) return xe;
    // IGP cost to the next hop: every next hop is treated as directly reachable (0).
    uint32_t xid = x.attrs.originator_id.value_or(peers_[a.peer].router_id);
    uint32_t yid = y.attrs.originator_id.value_or(peers_[b.peer].router_id);
    if (xid != yid) return xid < yid;
    if (x.attrs.cluster_list.size() != y.attrs.cluster_list.size())
        return x.attrs.cluster_list.size() < y.attrs.cluster_list.size();
    if (peers_[a.peer].address != peers_[b.peer].address)
        return peers_[a.peer].address < peers_[b.peer].address;
    return a.path_id < b.path_id;
}

bool Rib::multipath_equal(const Path &a, const Path &best) const {
    const AttrData &x = *a.attrs, &y = *best.attrs;
    if (a.peer == kLocalPeer || best.peer == kLocalPeer) return false;
    if (x.local_pref() != y.local_pref()) return false;
    if (path_len(x.attrs) != path_len(y.attrs)) return false;
    if (origin_rank(x.attrs) != origin_rank(y.attrs)) return false;
    if (x.attrs.med.value_or(0) != y.attrs.med.value_or(0)) return false;
    if (peers_[a.peer].ibgp != peers_[best.peer].ibgp) return false;
    // Without relax, the paths must have come through the same neighboring AS path.
    if (!opt_.multipath_relax && x.attrs.as_path != y.attrs.as_path) return false;
    // Two paths to the same next hop add no forwarding diversity.
    return x.next_hop.addr != y.next_hop.addr;
}

void Rib::select(RouteEntry &e) const {
    Path *p = e.data();
    if (e.n == 0) {
        e.n_best = 0;
        return;
    }
    size_t b = 0;
    for (size_t i = 1; i < e.n; ++i)
        if (better(p[i], p[b])) b = i;
    std::swap(p[0], p[b]);
    uint16_t k = 1;
    for (size_t i = 1; i < e.n && k < opt_.max_paths; ++i) {
        if (!multipath_equal(p[i], p[0])) continue;
        bool dup = false;
        for (size_t j = 1; j < k; ++j)
            dup |= p[j].attrs->next_hop.addr == p[i].attrs->next_hop.addr;
        if (dup) continue;
        std::swap(p[k++], p[i]);
    }
    // Siblings in preference order, so that the set is the same whatever the arrival order.
    std::sort(p + 1, p + k, [this](const Path &x, const Path &y) { return better(x, y); });
    e.n_best = k;
}

} // namespace vleaf::bgp
