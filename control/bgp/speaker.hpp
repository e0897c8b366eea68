// The BGP speaker: one thread, one epoll loop serving the listening socket, every
// session's connections and (through add_fd) other control-plane fds. Timers are the
// FSM deadlines; epoll_wait sleeps until the earliest one.
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/evpn_tables.hpp"
#include "control/bgp/rib.hpp"
#include "control/bgp/session.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vleaf::bgp {

struct SpeakerCounters {
    uint64_t accepted = 0;
    uint64_t rejected_unknown = 0;   // connection from an address no peer matches
    uint64_t rejected_collision = 0; // RFC 4271 6.8
    uint64_t dynamic_created = 0;
    uint64_t read_pauses = 0; // pause_reads() that stopped reading
};

class Speaker {
  public:
    explicit Speaker(const BgpConfig &cfg);
    ~Speaker();
    Speaker(const Speaker &) = delete;
    Speaker &operator=(const Speaker &) = delete;

    // Before start(): we are the restarting speaker of RFC 4724 4.1. Our OPENs carry the
    // Restart State bit (and the Forwarding State bits with `forwarding_preserved`, when
    // the dataplane kept forwarding across the restart), route selection and updates wait
    // for End-of-RIB from every graceful-restart peer (or select_defer_time), then the
    // whole table goes out followed by End-of-RIB.
    void set_restarting(bool forwarding_preserved);
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
    // Flow control, when what the peers send cannot be passed on fast enough (the FIB
    // feed's backlog is large): the Established sessions' connections are not read for
    // `d` (TCP's window then holds the peers back), or until the pause is renewed.
    // Timers, keepalives and our own sending go on. A pause renewed for kMaxReadPause
    // lapses nevertheless, so that a round of reads comes through at least that often
    // and the peers' keepalives reach us well within any hold time (3 s at least).
    static constexpr std::chrono::milliseconds kMaxReadPause{1000};
    void pause_reads(Clock::duration d);
    bool reads_paused() const { return reads_paused_; }
    // Stops every session with a Cease/Administrative Shutdown NOTIFICATION (so that
    // peers flush our routes at once instead of waiting for their hold timer).
    void shutdown();
    // Applies a new configuration (SIGHUP of vleaf-bgpd) without disturbing what did not
    // change: see reload.cpp. Throws BgpConfigError, changing nothing, if it alters a
    // setting that needs a restart (AS, router id, listening socket, RIB options).
    void reload(const BgpConfig &cfg);
    const BgpConfig &config() const { return cfg_; }
    // Serves another fd from this loop (e.g. the management socket).
    void add_fd(int fd, std::function<void()> on_readable);

    // Asks the peer to send its routes again (ROUTE-REFRESH, RFC 2918) for the
    // negotiated families among `families`, as after an import policy change (the
    // speaker keeps no unfiltered Adj-RIB-In). False if the session is not Established
    // or the peer lacks the capability.
    bool request_refresh(const IpAddr &address, FamilyMask families = 0xff);
    // Sends the peer our whole table again (soft reset out).
    bool resend(const IpAddr &address);

    // The FIB programmer subscribes here (Rib::on_change) to best-path changes: the
    // global tables (vrf 0) and the IP-VRF Loc-RIBs fed by EVPN (vrf != 0).
    Rib &rib() { return rib_; }
    const EvpnTables &evpn() const { return evpn_; }
    // Remote MACs and flood lists of the L2VNIs, for the dataplane's bridge domains.
    void on_evpn_l2_change(std::function<void(const EvpnL2Change &)> cb) {
        evpn_.on_l2_change(std::move(cb));
    }

    // What the dataplane tells the speaker to announce. A MAC (with an IP, or alone)
    // learned locally in an L2VNI goes out as EVPN type 2, following RFC 7432 MAC
    // mobility; a sticky MAC never moves away.
    MacResult originate_mac_ip(uint32_t vni, const MacAddr &mac,
                               std::optional<IpAddr> ip = std::nullopt, bool sticky = false);
    bool withdraw_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip = std::nullopt);
    bool clear_evpn_duplicate(uint32_t vni, const MacAddr &mac);
    // A prefix of ours, e.g. a service VIP (/32, /128) with its communities and
    // local-pref, announced until withdrawn; independent of the configured `announce`.
    void originate_prefix(const Announce &a);
    bool withdraw_prefix(const Prefix &p);

    nlohmann::json show_summary() const;
    nlohmann::json show_neighbors(const std::string &address) const; // "" = all
    nlohmann::json show_routes(RouteFamily f, const std::string &prefix) const;
    // An IP-VRF's Loc-RIB (EVPN imports).
    nlohmann::json show_vrf_routes(const std::string &vrf, RouteFamily f) const;
    nlohmann::json show_evpn_vni() const;
    nlohmann::json show_evpn_mac(uint32_t vni) const; // 0 = every VNI
    nlohmann::json show_evpn_imet() const;

  private:
    LocalParams local_params(const PeerConfig &pc) const;
    Session &add_session(const PeerConfig &pc, const IpAddr &remote, bool dynamic);
    // Stops a session for good with a Cease NOTIFICATION; reap() deletes it.
    void deconfigure(Session &s, uint8_t cease_subcode);
    void set_listen_md5(const PeerConfig &pc, bool remove);
    void watch(int fd, Watch *w, uint32_t events);
    void set_interest(Conn &c);
    // Applies set_interest() to every connection (the read pause began or ended).
    void set_interest_all();

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
    void on_route_refresh(Session &s, const RouteRefresh &rr);
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
    bool exportable(const Session &s, const Path &p, const Prefix *prefix,
                    const Policy &policy) const;
    const AttrData *export_attrs(Session &s, const Path &p, RouteFamily family);
    // Queues every exportable best path; with `was_policy` (an export policy change) also
    // withdraws what that policy let out and the current one does not.
    void queue_full_table(Session &s, FamilyMask families, const Policy *was_policy = nullptr);
    void drop_export_cache(Session &s);
    void flush_out(Session &s);
    void clear_out(Session &s);
    NextHop self_next_hop(const Session &s, RouteFamily f) const;

    void originate();
    void install(const Announce &a);
    void fire_timers(TimePoint now);
    void check_deferral();
    void end_deferral(const char *why);
    int wait_ms(int max_wait_ms) const;
    Session *find_session(const IpAddr &a);
    void reap();

    BgpConfig cfg_;
    Rib rib_;
    EvpnTables evpn_{rib_};
    std::map<Prefix, Announce> api_announce_; // originate_prefix()
    bool restarting_ = false;
    bool forwarding_preserved_ = false;
    std::optional<TimePoint> defer_deadline_;
    bool reads_paused_ = false;
    TimePoint paused_since_{}, paused_until_{}; // pause_reads()
    std::string deferral_ended_;                // why route selection resumed
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
