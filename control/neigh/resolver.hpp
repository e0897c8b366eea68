// The ARP / IPv6 Neighbor Discovery resolver of the control thread. Workers punt every
// ARP and ND frame and every packet whose next hop has no MAC yet; the resolver answers
// for our addresses, learns neighbors, resolves with retries and re-verifies them, and
// reports each neighbor's MAC (or its loss) so the FIB can install or remove host routes.
// Single-threaded; time is passed in so that tests drive it with a fake clock.
#pragma once

#include "control/config/config.hpp"
#include "control/neigh/packets.hpp"
#include "vleaf/addr.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <variant>
#include <vector>

namespace vleaf::neigh {

// An interface as the resolver sees it: addresses with their subnet length. The IPv6
// link-local address (fe80::/64, EUI-64 of `mac`) is implied and need not be listed.
struct NeighIf {
    uint16_t id = 0;
    MacAddr mac;
    std::vector<Prefix> ipv4, ipv6;
};

// What the caller does with a frame given to on_frame().
enum class Verdict : uint8_t {
    Consumed, // handled here (answered, learned from or ignored); do not pass on
    Kernel,   // also hand it to the interface's kernel tap (replies, NAs, RS/RA, redirects)
    Invalid,  // malformed (counted under its Bad reason) or unknown interface: dropped
};

enum class State : uint8_t {
    Incomplete, // requests going out as broadcast / solicited-node multicast
    Reachable,  // MAC confirmed within reachable_ms
    Stale,      // MAC known but unconfirmed; probed on the next tick
    Probe,      // MAC still used while unicast requests re-verify it
    Failed,     // no answer; kept retries x retrans_ms so that traffic cannot storm requests
};
const char *state_name(State s);

struct Entry {
    uint16_t ifid = 0;
    IpAddr ip;
    std::optional<MacAddr> mac;
    State state = State::Incomplete;
    uint64_t age_ms = 0; // since the last state change or confirmation
    uint32_t probes = 0; // requests sent in the current state
    uint32_t held = 0;   // packets waiting for this neighbor
};

#define VLEAF_NEIGH_COUNTERS(X)                                                                    \
    X(arp_requests_sent)                                                                           \
    X(arp_replies_sent)                                                                            \
    X(ns_sent)                                                                                     \
    X(na_sent)                                                                                     \
    X(learned)                /* new entry, or incomplete entry resolved */                        \
    X(mac_changed)            /* a known neighbor moved to another MAC */                          \
    X(failed)                 /* resolution gave up after `retries` requests */                    \
    X(expired)                /* known neighbor stopped answering unicast probes */                \
    X(held)                   /* packets queued for resolution */                                  \
    X(held_released)          /* held packets handed back for forwarding */                        \
    X(held_dropped)           /* held packets handed back to be freed (failed, overflow, ...) */   \
    X(requests_not_ours)      /* ARP requests / NS for addresses we do not own */                  \
    X(unsolicited_ignored)    /* reply/NA for a neighbor we neither know nor resolve */            \
    X(off_subnet_ignored)     /* sender outside the interface's subnets: not learned */            \
    X(address_conflicts)      /* someone else claims one of our addresses */                       \
    X(not_for_us)             /* unicast to another MAC (promiscuous port) */                      \
    X(own_frames)             /* our own frame reflected back to us */                             \
    X(not_neigh)              /* frame was neither ARP nor ND: passed to the kernel */             \
    X(unknown_interface)      /* frame or resolve() on an interface not registered */              \
    X(resolve_off_subnet)     /* resolve() target in none of the interface's subnets */            \
    X(resolve_invalid_target) /* resolve() of a multicast/broadcast/unspecified/own address */

struct Counters {
#define X(name) uint64_t name = 0;
    VLEAF_NEIGH_COUNTERS(X)
#undef X
    uint64_t bad[static_cast<size_t>(Bad::count)] = {};
};

struct Callbacks {
    // Transmit a complete Ethernet frame out of interface `ifid`.
    std::function<void(uint16_t ifid, std::vector<uint8_t> frame)> send;
    // Neighbor reachable or moved (mac set), or failed / gone (nullopt). Reported once
    // per transition; probes that confirm the same MAC are silent. Called before the
    // packets held for that neighbor are released, so the next hop can be installed first.
    std::function<void(uint16_t ifid, const IpAddr &ip, std::optional<MacAddr> mac)> changed;
    // A packet given to resolve(): resolved = re-inject it into the dataplane (its next
    // hop now has a MAC); false = free it.
    std::function<void(void *held, bool resolved)> release;
};

class Resolver {
  public:
    Resolver(const config::Neighbors &timers, Callbacks cb);

    // Registers or replaces an interface. On replacement, neighbors no longer inside its
    // subnets are removed and reported gone.
    void add_interface(const NeighIf &nif);
    // Removes the interface and all its neighbors (reported gone, held packets freed).
    void remove_interface(uint16_t ifid);

    Verdict on_frame(uint16_t ifid, std::span<const uint8_t> frame, uint64_t now_ms);

    // Starts resolving `target` on `ifid` unless known or in progress, and queues `held`
    // (if any) until then. A known MAC releases `held` at once.
    void resolve(uint16_t ifid, const IpAddr &target, uint64_t now_ms, void *held = nullptr);

    // Retransmits, fails, ages and re-probes. Call at least every retrans_ms.
    void tick(uint64_t now_ms);

    // Ages are relative to the latest time passed to any of the calls above.
    std::vector<Entry> entries() const;
    const Counters &counters() const { return counters_; }

  private:
    using Key = std::pair<uint16_t, IpAddr>;
    struct Neighbor {
        State state = State::Incomplete;
        std::optional<MacAddr> mac;
        uint64_t since_ms = 0; // last state change or confirmation
        uint64_t next_ms = 0;  // when tick() next acts on it
        uint32_t probes = 0;
        std::deque<void *> held;
    };
    struct Iface {
        NeighIf cfg;
        IpAddr ll; // derived link-local
    };
    // Callbacks run after the state is consistent, so they may call back into us.
    struct Send {
        uint16_t ifid;
        std::vector<uint8_t> frame;
    };
    struct Change {
        uint16_t ifid;
        IpAddr ip;
        std::optional<MacAddr> mac;
    };
    struct Release {
        void *held;
        bool resolved;
    };
    using Event = std::variant<Send, Change, Release>;

    Verdict on_arp(const Iface &itf, const ArpMsg &m, uint64_t now);
    Verdict on_nd(const Iface &itf, const NdMsg &m, uint64_t now);
    // Learns `mac` for `ip` (nullopt: the neighbor's current MAC, e.g. an NA without a
    // target link-layer option). `create`: make an entry if none exists; `confirmed`: the
    // neighbor proved reachable, else a new or moved MAC is Stale until probed;
    // `override_mac`: replace a different known MAC (an NA without the O flag must not).
    // Returns false when there was nothing to learn into.
    bool learn(const Iface &itf, const IpAddr &ip, std::optional<MacAddr> mac, bool create,
               bool confirmed, bool override_mac, uint64_t now);
    void enter(Neighbor &n, State s, uint64_t now) const;
    void send_request(const Iface &itf, const IpAddr &target,
                      const std::optional<MacAddr> &unicast);
    // Frees held packets and reports the loss unless already reported as failed.
    void drop_entry(uint16_t ifid, const IpAddr &ip, Neighbor &n);
    void release_all(Neighbor &n, bool resolved);
    void flush();

    bool is_ours(const Iface &itf, const IpAddr &ip) const;
    bool on_subnet(const Iface &itf, const IpAddr &ip) const;
    bool is_subnet_broadcast(const Iface &itf, const IpAddr &ip) const;
    // Our address to send from when talking to `target`, if it is on one of our subnets.
    std::optional<IpAddr> source_for(const Iface &itf, const IpAddr &target) const;
    const Iface *iface(uint16_t id) const;

    config::Neighbors timers_;
    Callbacks cb_;
    std::map<uint16_t, Iface> ifaces_;
    std::map<Key, Neighbor> neigh_;
    std::vector<Event> out_;
    uint64_t now_ = 0;
    Counters counters_;
};

} // namespace vleaf::neigh
