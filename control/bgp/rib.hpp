// Adj-RIB-In and Loc-RIB of the speaker. Every prefix has one entry holding the paths
// of all peers (the union of the Adj-RIBs-In after import policy), the best path first
// followed by its multipath siblings. Attribute sets are interned: a path is 16 bytes
// pointing at a shared, reference-counted attribute object.
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/message.hpp"
#include "control/bgp/prefix_table.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace vleaf::bgp {

using PeerId = uint16_t;
inline constexpr PeerId kLocalPeer = 0; // routes we originate

// One interned attribute set: the path attributes and the next hop they came with.
struct AttrData {
    PathAttrs attrs;
    NextHop next_hop;
    size_t hash = 0;
    mutable uint32_t refs = 0;

    uint32_t local_pref() const { return attrs.local_pref.value_or(100); }
};

// Hash-consing pool: equal attribute sets share one AttrData.
class AttrPool {
  public:
    const AttrData *intern(PathAttrs &&attrs, const NextHop &nh);
    static void ref(const AttrData *a) { ++a->refs; }
    void unref(const AttrData *a);
    // Frees a set that intern() returned but no path took (all its routes filtered).
    void discard_unused(const AttrData *a);
    size_t size() const { return set_.size(); }

  private:
    struct Hash {
        size_t operator()(const AttrData *a) const { return a->hash; }
    };
    struct Eq {
        bool operator()(const AttrData *a, const AttrData *b) const {
            return a->hash == b->hash && a->next_hop == b->next_hop && a->attrs == b->attrs;
        }
    };
    std::unordered_set<const AttrData *, Hash, Eq> set_;
};

struct Path {
    static constexpr uint8_t kStale = 1; // kept for a restarting peer (RFC 4724)
    const AttrData *attrs = nullptr;
    uint32_t path_id = 0;
    PeerId peer = kLocalPeer;
    uint8_t flags = 0;
    uint8_t reserved = 0;

    bool same(const Path &o) const {
        return attrs == o.attrs && peer == o.peer && path_id == o.path_id;
    }
};
static_assert(sizeof(Path) == 16, "a path record stays 16 bytes: 1M paths must fit 150 MB");

// All paths of one prefix. paths[0..n_best) is the best path and its ECMP siblings. One
// path, the usual case, is held inline: a prefix costs no allocation of its own.
struct RouteEntry {
    uint16_t n = 0;
    uint16_t cap = 1;
    uint16_t n_best = 0;

    RouteEntry() : one_{} {}
    RouteEntry(RouteEntry &&o) noexcept : n(o.n), cap(o.cap), n_best(o.n_best), one_{} {
        if (cap > 1)
            heap_ = o.heap_;
        else
            one_ = o.one_;
        o.release();
    }
    RouteEntry &operator=(RouteEntry &&o) noexcept {
        if (this == &o) return *this;
        if (cap > 1) delete[] heap_;
        n = o.n;
        cap = o.cap;
        n_best = o.n_best;
        if (cap > 1)
            heap_ = o.heap_;
        else
            one_ = o.one_;
        o.release();
        return *this;
    }
    RouteEntry(const RouteEntry &) = delete;
    RouteEntry &operator=(const RouteEntry &) = delete;
    ~RouteEntry() {
        if (cap > 1) delete[] heap_;
    }

    Path *data() { return cap > 1 ? heap_ : &one_; }
    const Path *data() const { return cap > 1 ? heap_ : &one_; }
    std::span<const Path> all() const { return {data(), n}; }
    std::span<const Path> best() const { return {data(), n_best}; }
    // Makes room for one more path.
    void reserve_one();

  private:
    void release() {
        n = n_best = 0;
        cap = 1;
        one_ = Path{};
    }
    union {
        Path one_;   // cap == 1
        Path *heap_; // cap > 1
    };
};

// What the RIB knows about each peer (best-path tie-breakers, reflection, counters).
struct RibPeer {
    IpAddr address;
    uint32_t router_id = 0;
    uint32_t asn = 0;
    bool ibgp = false;
    bool rr_client = false;
    bool in_use = false;
    std::array<uint32_t, kRouteFamilies> accepted{}; // paths in the RIB, stale included
};

struct RibOptions {
    uint32_t asn = 0;
    uint32_t router_id = 0;
    uint32_t cluster_id = 0; // RFC 4456; default router id
    uint16_t max_paths = 1;
    bool multipath_relax = false;
    bool always_compare_med = false;
};

// A change of the best path set of one prefix. Delivered synchronously while both sets
// are valid; `now` empty means withdrawn.
struct RibChange {
    RouteFamily family;
    // 0: the global tables. Otherwise an IP-VRF's Loc-RIB (EVPN imports, see
    // EvpnTables), named vrf_name; its paths lead to VTEPs (next hop) with the router MAC
    // among the extended communities and the L3VNI in now_vni (one per path of `now`).
    uint32_t vrf = 0;
    const Prefix *prefix = nullptr; // unicast families
    const EvpnNlri *evpn = nullptr; // L2VPN EVPN (path_id 0)
    std::span<const Path> before;
    std::span<const Path> now;
    std::string_view vrf_name;
    std::span<const uint32_t> now_vni;
};

// Why an UPDATE's route was not installed.
enum class ImportVerdict : uint8_t { Accepted, AsLoop, OriginatorLoop, ClusterLoop, Denied };

class Rib {
  public:
    explicit Rib(const RibOptions &opt);
    ~Rib();
    Rib(const Rib &) = delete;
    Rib &operator=(const Rib &) = delete;

    const RibOptions &options() const { return opt_; }

    PeerId add_peer(const RibPeer &p);
    RibPeer &peer(PeerId id) { return peers_[id]; }
    const RibPeer &peer(PeerId id) const { return peers_[id]; }
    // Withdraws everything the peer sent and frees the id.
    void remove_peer(PeerId id);

    // Import checks on a received path: AS-path, ORIGINATOR_ID and CLUSTER_LIST loops,
    // then the peer's import policy (which may rewrite attrs). Anything but Accepted
    // must be treated as a withdraw.
    ImportVerdict check_import(const Prefix *prefix, PathAttrs &attrs, const Policy &policy) const;

    const AttrData *intern(PathAttrs &&attrs, const NextHop &nh) {
        return pool_.intern(std::move(attrs), nh);
    }
    void discard_unused(const AttrData *a) { pool_.discard_unused(a); }
    // References held outside the RIB (e.g. routes waiting in an Adj-RIB-Out).
    static void ref(const AttrData *a) { AttrPool::ref(a); }
    void unref(const AttrData *a) { pool_.unref(a); }

    // Brings the prefix's entry into the cache ahead of its update or withdraw, and has
    // the prefetch listeners do the same with what they keep of the prefix (the FIB
    // feed's backlog slot, the next cache miss of a change).
    void prefetch(RouteFamily f, const Prefix &p) const {
        if (f == RouteFamily::Ipv4Unicast)
            v4_.prefetch(v4_key(p));
        else
            v6_.prefetch(v6_key(p));
        for (auto &l : prefetchers_) l(f, p);
    }
    void on_prefetch(std::function<void(RouteFamily, const Prefix &)> fn) {
        prefetchers_.push_back(std::move(fn));
    }
    // Adds or replaces the path (peer, path_id) of a prefix. `attrs` from intern().
    void update(PeerId peer, RouteFamily f, const Prefix &p, uint32_t path_id,
                const AttrData *attrs);
    void update(PeerId peer, const EvpnNlri &route, const AttrData *attrs);
    void withdraw(PeerId peer, RouteFamily f, const Prefix &p, uint32_t path_id);
    void withdraw(PeerId peer, const EvpnNlri &route);

    // Session loss. Families in `keep` are marked stale (graceful restart helper), the
    // rest withdrawn.
    void peer_down(PeerId peer, FamilyMask keep);
    // Marks every path of the peer in `families` stale: graceful restart, or the peer's
    // BoRR (RFC 7313) until its EoRR.
    void mark_stale(PeerId peer, FamilyMask families);
    // End-of-RIB from a restarted peer or its restart timer ran out: drop what is
    // still stale.
    void sweep_stale(PeerId peer, FamilyMask families);

    void on_change(std::function<void(const RibChange &)> cb) {
        listeners_.push_back(std::move(cb));
    }
    // Tells the listeners about a change of a table kept outside (an IP-VRF Loc-RIB).
    void notify(const RibChange &c) {
        if (deferring_) return;
        for (auto &l : listeners_) l(c);
    }
    // RFC 4724 4.1 route selection deferral of a restarting speaker: the tables fill in
    // silently, then end_deferral() tells the listeners every best path at once (as
    // changes from nothing).
    void defer() { deferring_ = true; }
    void end_deferral();
    bool deferring() const { return deferring_; }

    // Visits every entry of a family (unicast: prefix set, EVPN: evpn set).
    void for_each(
        RouteFamily f,
        const std::function<void(const Prefix *, const EvpnNlri *, const RouteEntry &)> &fn) const;
    const RouteEntry *find(RouteFamily f, const Prefix &p) const;
    size_t prefixes(RouteFamily f) const;
    size_t paths() const { return total_paths_; }
    size_t attr_sets() const { return pool_.size(); }

    // True if `a` is preferred over `b` (RFC 4271 9.1.2.2 and the usual extensions).
    bool better(const Path &a, const Path &b) const;
    // True if `a` may share the forwarding of best path `best` (ECMP).
    bool multipath_equal(const Path &a, const Path &best) const;

  private:
    struct V4Key {
        uint64_t v; // address << 8 | length
        bool operator==(const V4Key &) const = default;
        static V4Key none() { return {~uint64_t(0)}; }
    };
    struct V6Key {
        std::array<uint8_t, 16> a;
        uint8_t len;
        bool operator==(const V6Key &) const = default;
        static V6Key none() { return {{}, 0xff}; }
    };
    struct KeyHash {
        size_t operator()(const V4Key &k) const {
            return size_t(k.v * 0x9e3779b97f4a7c15ull >> 16);
        }
        size_t operator()(const V6Key &k) const;
    };
    // Inline, not Prefix::masked(): three of these per imported prefix (prefetch, update,
    // the feed's lookup) took 5-7 % of the BGP side's time as calls.
    static V4Key v4_key(const Prefix &p) {
        uint32_t a;
        std::memcpy(&a, p.addr.bytes.data(), 4);
        uint32_t mask = p.len >= 32 ? ~0u : p.len ? ~0u << (32 - p.len) : 0;
        return {uint64_t(__builtin_bswap32(a) & mask) << 8 | p.len};
    }
    static V6Key v6_key(const Prefix &p);
    static Prefix from_key(const V4Key &k);
    static Prefix from_key(const V6Key &k);

    // Applies `op` to an entry, recomputes its best set and tells the listeners.
    // Returns false if the entry became empty (the caller erases it).
    template <class Op>
    bool modify(RouteEntry &e, RouteFamily f, const Prefix *p, const EvpnNlri *ev, Op op);
    void set_path(RouteEntry &e, RouteFamily f, const Path &np);
    bool remove_path(RouteEntry &e, RouteFamily f, PeerId peer, uint32_t path_id);
    void select(RouteEntry &e) const;
    // Removes the peer's paths for which `pred` holds, in every table of `families`.
    template <class Pred> void remove_where(PeerId peer, FamilyMask families, Pred pred);

    RibOptions opt_;
    AttrPool pool_;
    std::vector<RibPeer> peers_;
    PrefixTable<V4Key, RouteEntry, KeyHash> v4_;
    PrefixTable<V6Key, RouteEntry, KeyHash> v6_;
    std::map<EvpnNlri, RouteEntry, EvpnKeyLess> evpn_;
    size_t total_paths_ = 0;
    std::vector<std::function<void(const RibChange &)>> listeners_;
    std::vector<std::function<void(RouteFamily, const Prefix &)>> prefetchers_;
    bool deferring_ = false;
    std::vector<Path> before_;              // scratch of modify()
    std::vector<const AttrData *> release_; // attribute sets to unref after notifying
};

const char *verdict_name(ImportVerdict v);

// RFC 4456 6: whether a path learned from `from` may be advertised to an internal peer.
// iBGP-learned paths go to other internal peers only through a reflector: when the
// source or the target is a route reflector client.
inline bool ibgp_may_advertise(PeerId from_id, const RibPeer &from, bool to_rr_client) {
    return from_id == kLocalPeer || !from.ibgp || from.rr_client || to_rr_client;
}
// RFC 4456 8: what a reflector adds to a reflected path.
void reflect_attrs(PathAttrs &a, uint32_t from_router_id, uint32_t cluster_id);

} // namespace vleaf::bgp
