// The producer of the route ring, on the BGP thread: follows the Loc-RIB's best-path
// changes and sends each changed prefix's forwarding state to the table writer.
//
// It never blocks the BGP thread and never loses a change. A change goes straight into
// the ring; when the ring is full the prefix is remembered in a backlog instead (a set:
// a prefix changed ten times while waiting is sent once, with its state at the time it
// leaves, so an add then a delete becomes one delete), and the backlog is sent as the
// writer makes room (flush(), called by the BGP loop every iteration and every
// millisecond while anything waits). Past `backlog_limit` waiting prefixes the backlog
// is dropped and the whole RIB is sent again between ResyncBegin and ResyncEnd; the
// writer then removes every BGP route the RIB no longer has.
#pragma once

#include "control/bgp/rib.hpp"
#include "control/fib/backlog.hpp"
#include "control/fib/ring.hpp"

#include <functional>

namespace vleaf::fib {

struct FeedCounters {
    uint64_t changes = 0;    // best-path changes seen
    uint64_t pushed = 0;     // messages put in the ring
    uint64_t ring_full = 0;  // pushes that found the ring full
    uint64_t backlogged = 0; // prefixes that went through the backlog
    uint64_t resyncs = 0;    // full resyncs started
    uint64_t backlog_max = 0;
};

class Feed {
  public:
    // `wake` tells the writer that messages are waiting (an eventfd write); called at
    // most once per flush().
    Feed(bgp::Rib &rib, RouteRing &ring, size_t backlog_limit, std::function<void()> wake);

    // Sends what waits, as far as the ring has room, then wakes the writer.
    void flush();
    // Something still waits for ring space (the caller should flush again soon).
    bool pending() const { return !backlog_.empty() || resync_ != Resync::Idle; }
    // Sends the whole RIB again (the writer asked, or the backlog overflowed).
    void request_resync();

    size_t backlog() const { return backlog_.size(); }
    bool resyncing() const { return resync_ != Resync::Idle; }
    const FeedCounters &counters() const { return c_; }

  private:
    struct Key {
        bgp::RouteFamily family;
        uint32_t vrf;
        Prefix prefix;
        bool operator==(const Key &) const = default;
    };
    struct KeyHash {
        size_t operator()(const Key &k) const;
    };
    enum class Resync { Idle, Begin, Streaming };

    void on_change(const bgp::RibChange &ch);
    // The message for a prefix whose best paths are `best` (empty: withdrawn).
    RouteMsg make(const Key &k, std::span<const bgp::Path> best) const;
    bool push(const RouteMsg &m);
    void remember(const Key &k);

    bgp::Rib &rib_;
    RouteRing &ring_;
    size_t limit_;
    std::function<void()> wake_;
    size_t since_wake_ = 0;
    Backlog<Key, KeyHash> backlog_;
    Resync resync_ = Resync::Idle;
    FeedCounters c_;
};

} // namespace vleaf::fib
