// The BGP speaker: one thread, one epoll loop serving the listening socket, every
// session's connections and (through add_fd) other control-plane fds. Timers are the
// FSM deadlines; epoll_wait sleeps until the earliest one.
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/rib.hpp"
#include "control/bgp/session.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace vleaf::bgp {

struct SpeakerCounters {
    uint64_t accepted = 0;
    uint64_t rejected_unknown = 0;   // connection from an address no peer matches
    uint64_t rejected_collision = 0; // RFC 4271 6.8
    uint64_t dynamic_created = 0;
};

class Speaker {
  public:
    explicit Speaker(const BgpConfig &cfg);
    ~Speaker();
    Speaker(const Speaker &) = delete;
    Speaker &operator=(const Speaker &) = delete;

    // listen() then start_peers().
    void start();
    // Opens the listening socket. Throws std::runtime_error if that fails.
    void listen();
    // Installs the configured announcements and starts every configured peer.
    void start_peers();
    // Runs the loop until `stop` becomes true (checked at least every 100 ms).
    void run(const std::atomic<bool> &stop);
    // One loop iteration: waits at most `max_wait_ms` for events, handles them, fires
    // due timers and flushes output.
    void poll(int max_wait_ms);
    // Stops every session with a Cease/Administrative Shutdown NOTIFICATION (so that
    // peers flush our routes at once instead of waiting for their hold timer).
    void shutdown();
    // Serves another fd from this loop (e.g. the management socket).
    void add_fd(int fd, std::function<void()> on_readable);

    // Originates (or replaces) / withdraws one of our own prefixes at run time, besides
    // the configured `announce` list (e.g. a service VIP while it has healthy backends).
    void announce(const Announce &a);
    void withdraw(const Prefix &p);

    // The FIB programmer subscribes here (Rib::on_change) to best-path changes.
    Rib &rib() { return rib_; }

    nlohmann::json show_summary() const;
    nlohmann::json show_neighbors(const std::string &address) const; // "" = all
    nlohmann::json show_routes(RouteFamily f, const std::string &prefix) const;

  private:
    LocalParams local_params(const PeerConfig &pc) const;
    void watch(int fd, Watch *w, uint32_t events);
    void set_interest(Conn &c);

    // Connections
    void on_accept();
    void adopt(Session &s, std::unique_ptr<Conn> &slot, int fd, bool outgoing);
    void start_connect(Session &s);
    void on_conn_event(Conn &c, uint32_t events);
    void close_conn(Conn &c);
    void read_conn(Conn &c);
    bool flush_conn(Conn &c);
    void run_actions(Conn &c, const FsmActions &actions);
    void resolve_collision(Session &s);
    void drop_other(Session &s);

    // Messages
    void on_message(Conn &c, MsgType type, ByteView body);
    void on_update(Session &s, ByteView body);
    // `attrs` null: withdraw.
    void import_prefixes(Session &s, RouteFamily f, std::span<const PrefixNlri> nlri,
                         const AttrData *attrs);
    void import_evpn(Session &s, std::span<const EvpnNlri> nlri, const AttrData *attrs);
    void import_mp(Session &s, AfiSafi family, std::span<const PrefixNlri> prefixes,
                   std::span<const EvpnNlri> evpn, const AttrData *attrs);
    void withdraw_all(Session &s, const Update &u);
    void check_max_prefix(Session &s);
    void session_up(Session &s, Conn &c);
    void session_down(Session &s);
    void send(Conn &c, const Bytes &msg);

    // Adj-RIB-Out (export.cpp)
    void on_rib_change(const RibChange &ch);
    bool exportable(const Session &s, const Path &p, const Prefix *prefix) const;
    const AttrData *export_attrs(Session &s, const Path &p, RouteFamily family);
    void queue_full_table(Session &s, FamilyMask families);
    void flush_out(Session &s);
    void clear_out(Session &s);
    NextHop self_next_hop(const Session &s, RouteFamily f) const;

    void originate();
    void fire_timers(TimePoint now);
    int wait_ms(int max_wait_ms) const;
    Session *find_session(const IpAddr &a);
    void reap_dynamic();

    BgpConfig cfg_;
    Rib rib_;
    int epfd_ = -1;
    int listen_fd_ = -1;
    uint16_t listen_port_ = 0;
    Watch listen_watch_;
    std::list<std::unique_ptr<Session>> sessions_;
    std::vector<std::unique_ptr<Watch>> extra_watches_;
    SpeakerCounters counters_;
    UpdateResult scratch_; // reused by every UPDATE decode
    Bytes read_buf_;       // every connection reads into this
};

} // namespace vleaf::bgp
