// One BGP neighbor: its configuration, its connection(s) with their FSMs and buffers,
// its counters and its pending Adj-RIB-Out. The speaker drives sessions; the socket
// level (non-blocking connect, TCP-MD5, TTL and GTSM, reads and writes) lives here.
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/fsm.hpp"
#include "control/bgp/message.hpp"
#include "control/bgp/rib.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace vleaf::bgp {

struct Session;

// Registered with epoll: what to call when its fd is ready.
struct Watch {
    std::function<void(uint32_t events)> on_event;
};

// A TCP connection to the peer and the FSM that runs it (RFC 4271 keeps one FSM per
// connection: two exist briefly during a collision).
struct Conn {
    Conn(Session &s, const LocalParams &lp) : session(s), fsm(lp) {}
    Session &session;
    Fsm fsm;
    int fd = -1;
    bool outgoing = false;   // we initiated it
    bool connecting = false; // non-blocking connect in progress
    IpAddr local_addr;
    uint16_t local_port = 0, remote_port = 0;
    Bytes rbuf; // the start of a message still arriving
    Bytes wbuf; // bytes to send [wpos, wbuf.size())
    size_t wpos = 0;
    bool want_write = false; // EPOLLOUT registered
    bool want_read = true;   // EPOLLIN registered (see Speaker::pause_reads)
    Watch watch;

    size_t unsent() const { return wbuf.size() - wpos; }
};

struct SessionCounters {
    uint64_t opens_in = 0, opens_out = 0;
    uint64_t updates_in = 0, updates_out = 0;
    uint64_t keepalives_in = 0, keepalives_out = 0;
    uint64_t notifications_in = 0, notifications_out = 0;
    uint64_t refreshes_in = 0, refreshes_out = 0;                  // ROUTE-REFRESH requests
    uint64_t borr_in = 0, eorr_in = 0, borr_out = 0, eorr_out = 0; // RFC 7313 markers
    uint64_t prefixes_announced_in = 0, prefixes_withdrawn_in = 0;
    uint64_t prefixes_announced_out = 0, prefixes_withdrawn_out = 0;
    uint64_t treat_as_withdraw = 0, attribute_discard = 0; // RFC 7606 outcomes
    uint64_t import_rejected = 0;                          // loops and import policy
    uint64_t established = 0;                              // transitions to Established
    uint64_t dropped = 0;                                  // transitions away from Established
};

// Routes waiting to be sent to one peer, coalesced per prefix: the last word wins.
// A null attribute set means withdraw.
struct PrefixHash {
    size_t operator()(const Prefix &p) const;
};
struct PendingOut {
    std::array<std::unordered_map<Prefix, const AttrData *, PrefixHash>, 2> unicast; // v4, v6
    std::map<EvpnNlri, const AttrData *, EvpnKeyLess> evpn;
    FamilyMask eor = 0; // End-of-RIB still to send after the initial dump
    // RFC 7313: a refresh we answer starts with BoRR (before anything queued) and ends
    // with EoRR once the queue has drained.
    FamilyMask borr = 0, eorr = 0;

    size_t size() const { return unicast[0].size() + unicast[1].size() + evpn.size(); }
    bool pending() const { return size() || eor || borr || eorr; }
};

struct Session {
    Session(const PeerConfig &c, const IpAddr &remote, LocalParams lp, bool dyn)
        : cfg(c), remote(remote), local(lp), dynamic(dyn), main(std::make_unique<Conn>(*this, lp)) {
    }

    PeerConfig cfg;
    IpAddr remote;
    LocalParams local;
    bool dynamic = false; // accepted from a range: deleted when it goes down
    bool removed = false; // no longer configured: deleted once its connections are closed
    PeerId rib_id = 0;
    std::unique_ptr<Conn> main;
    std::unique_ptr<Conn> other; // an incoming connection during a collision
    SessionCounters counters;
    Negotiated neg;  // of the Established connection
    bool up = false; // Established and announced to the RIB
    TimePoint up_since{};
    // First and last UPDATE of the current session: the benchmark's load time.
    std::optional<TimePoint> first_update, last_update;
    std::string last_error;
    // A NOTIFICATION was sent or received since Established: RFC 4724 graceful restart
    // does not apply (we do not negotiate the RFC 8538 N bit).
    bool notified = false;
    IpAddr local_addr; // of the Established connection: our next hop to this peer
    bool ibgp() const { return local.asn == local.remote_as; }
    // Graceful restart helper: the peer's routes are stale until this deadline.
    std::optional<TimePoint> gr_deadline;
    FamilyMask gr_stale = 0;
    FamilyMask eor_in = 0; // End-of-RIB received since Established
    // Enhanced route refresh: families between the peer's BoRR and EoRR, whose paths
    // not re-sent by EoRR are stale, and when each family's stale paths go without EoRR.
    FamilyMask refresh_stale = 0;
    std::array<std::optional<TimePoint>, kRouteFamilies> refresh_deadline;
    PendingOut out;
    // Export rewrites computed during one burst: (source set, source peer) -> exported
    // set. export_keys holds a reference on each source set so that its address is not
    // reused while cached.
    std::unordered_map<uint64_t, const AttrData *> export_cache;
    std::vector<const AttrData *> export_keys;
};

// Socket level. All functions return -1 / false with errno set on failure.
int open_listen_socket(const IpAddr &addr, uint16_t port);
// Non-blocking connect to the session's peer with its socket options applied.
int open_active_socket(const Session &s);
// TCP-MD5 key for a peer or a prefix (len < max: a range) on a socket; empty key deletes.
bool set_md5(int fd, const IpAddr &peer, uint8_t prefix_len, const std::string &key,
             bool v6_socket);
// TTL for eBGP (1 or multihop) or GTSM (255 out, 254 minimum in) on a connected socket.
bool set_ttl_options(int fd, const Session &s);
// Local and remote address/port of a connected socket.
bool socket_addresses(int fd, IpAddr &local, uint16_t &lport, IpAddr &remote, uint16_t &rport);

} // namespace vleaf::bgp
