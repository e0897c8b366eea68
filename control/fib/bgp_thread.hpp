// The BGP speaker embedded in vleafd: its own thread running the speaker's event loop
// and the route ring's producer (Feed). The daemon thread is the ring's consumer (the
// table writer, see ring.hpp) and the producer of the event ring back.
//
// Everything the speaker owns is touched by the BGP thread only; other threads reach it
// through call()/post() (a mailbox the BGP loop serves) or the two rings.
#pragma once

#include "control/bgp/speaker.hpp"
#include "control/config/config.hpp"
#include "control/fib/evpn.hpp"
#include "control/fib/feed.hpp"

#include <deque>
#include <mutex>
#include <thread>

namespace vleaf::fib {

class BgpThread {
  public:
    // Opens the listening socket (throws naming the address on failure); no thread yet.
    // `evpn_vrfs`: the dataplane VRF id of each EVPN IP-VRF name.
    BgpThread(const bgp::BgpConfig &cfg, const config::FibRings &rings,
              std::map<std::string, uint32_t> evpn_vrfs = {});
    ~BgpThread(); // stop()
    BgpThread(const BgpThread &) = delete;
    BgpThread &operator=(const BgpThread &) = delete;

    void start();
    // Ends every session with a Cease NOTIFICATION and joins the thread; idempotent.
    void stop();

    // Consumer side of the route ring, for the table writer only.
    RouteRing &routes() { return routes_; }
    // Consumer side of the EVPN ring (evpn.hpp), for the table writer only.
    EvpnRing &evpn_ring() { return evpn_ring_; }
    // Readable (eventfd) when route messages wait; the writer reads it to clear.
    int wake_fd() const { return wake_fd_; }
    void clear_wake();

    // Writer -> BGP thread. False (and counted) if the event ring is full.
    bool send_event(const Event &e);
    uint64_t events_dropped() const { return events_dropped_; }

    // Runs `fn` on the BGP thread and returns its result; throws if the thread does not
    // answer within 5 s. Blocks the caller meanwhile: for rare requests (show commands).
    nlohmann::json call(const std::function<nlohmann::json()> &fn);
    // Runs `fn` on the BGP thread soon; does not wait.
    void post(std::function<void()> fn);

    // Originates or withdraws one of our prefixes through the speaker (e.g. a service VIP).
    void announce(const bgp::Announce &a);
    void withdraw(const Prefix &p);

    // BGP thread only (inside call()/post()).
    bgp::Speaker &speaker() { return speaker_; }
    const Feed &feed() const { return feed_; }
    const EvpnFeed &evpn_feed() const { return evpn_; }
    uint64_t neighbor_events() const { return neighbor_events_; }

  private:
    void run();
    void serve_mail();
    void serve_events();

    bgp::Speaker speaker_;
    RouteRing routes_;
    EventRing events_;
    size_t pause_mark_; // backlog beyond which the peers are not read (flow control)
    int wake_fd_ = -1;
    int mail_fd_ = -1;
    Feed feed_;
    EvpnRing evpn_ring_;
    EvpnFeed evpn_;
    std::mutex mu_;
    std::deque<std::function<void()>> mail_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    uint64_t events_dropped_ = 0;  // writer thread
    uint64_t neighbor_events_ = 0; // BGP thread
};

} // namespace vleaf::fib
