// RFC 4271 section 8 finite state machine of one BGP connection, free of sockets and
// clocks: the session layer feeds events with the current time and carries out the
// actions returned; tests drive it with a fake clock.
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/message.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vleaf::bgp {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Seconds = std::chrono::seconds;

enum class FsmState : uint8_t { Idle, Connect, Active, OpenSent, OpenConfirm, Established };
const char *state_name(FsmState s);

// What we announce in our OPEN.
struct LocalParams {
    uint32_t asn = 0;
    uint32_t bgp_id = 0;    // host order
    uint32_t remote_as = 0; // the AS the peer must announce
    uint16_t hold = 90;     // 0 disables keepalives and the hold timer
    uint16_t keepalive = 30;
    uint16_t connect_retry = 10; // also the delay before an automatic restart from Idle
    FamilyMask families = 0;
    bool graceful_restart = true;
    uint16_t restart_time = 120;
    bool passive = false;
    // Restarting speaker (RFC 4724 4.1): the R bit while route selection is deferred
    // after our restart, and F bits when the dataplane kept forwarding meanwhile.
    bool restarting = false;
    bool forwarding_preserved = false;
};

// Builds our OPEN from the local parameters: MP families, route refresh, 4-octet AS,
// graceful restart, add-path receive and (IPv4 over IPv6) extended next hop.
Open local_open(const LocalParams &local);

// The session as agreed: both OPENs combined.
struct Negotiated {
    CodecContext ctx;
    uint16_t hold = 0;
    uint16_t keepalive = 0;
    FamilyMask families = 0;
    bool route_refresh = false;
    bool enhanced_refresh = false; // RFC 7313: BoRR/EoRR around a refresh
    bool peer_gr = false;
    bool peer_restarting = false; // R bit: the peer has just restarted
    uint16_t peer_restart_time = 0;
    FamilyMask peer_gr_families = 0;
    uint32_t remote_as = 0;
    uint32_t remote_id = 0;
};

// Checks the peer's OPEN against our configuration (peer AS, RFC 6286 identifier) on
// top of the codec's syntax checks, and combines both OPENs.
std::optional<Notification> check_open(const LocalParams &local, const Open &remote,
                                       Negotiated &out);

enum class FsmEvent : uint8_t {
    ManualStart,
    ManualStop,
    TcpConnected, // our active connection completed, or an incoming one was accepted
    TcpFailed,    // connect failed, or the connection closed/reset
    OpenReceived, // use Fsm::open_received
    KeepaliveReceived,
    UpdateReceived, // also ROUTE-REFRESH: anything that proves the peer alive
    NotificationReceived,
};

struct FsmAction {
    enum Kind : uint8_t {
        Connect,    // open an active TCP connection
        Disconnect, // close the TCP connection (after flushing a NOTIFICATION)
        SendOpen,
        SendKeepalive,
        SendNotification, // `error`
        Established,      // session up: start exchanging routes
        Down,             // session down from Established or OpenConfirm: flush routes
    };
    Kind kind;
    Notification error;
};
using FsmActions = std::vector<FsmAction>;

class Fsm {
  public:
    explicit Fsm(const LocalParams &local) : local_(local) {}

    FsmState state() const { return state_; }
    const Negotiated &negotiated() const { return neg_; }
    const LocalParams &local() const { return local_; }

    FsmActions handle(FsmEvent ev, TimePoint now);
    FsmActions open_received(const Open &open, TimePoint now);
    // A message error found by the decoder or the RIB (header, OPEN, UPDATE errors,
    // max-prefix): send the NOTIFICATION and drop the session.
    FsmActions error(const Notification &err, TimePoint now);
    // Fires every timer due at `now`.
    FsmActions expire(TimePoint now);
    // Earliest pending timer, if any.
    std::optional<TimePoint> next_deadline() const;
    // An accepted connection starts here, skipping Idle/Connect.
    void set_passive_open(TimePoint now);

  private:
    void enter_idle(FsmActions &out, TimePoint now, bool notify_down);
    void drop(FsmActions &out, TimePoint now, Notification err);
    void restart_hold(TimePoint now);

    LocalParams local_;
    Negotiated neg_;
    FsmState state_ = FsmState::Idle;
    bool started_ = false; // ManualStart seen and no ManualStop since
    std::optional<TimePoint> connect_retry_, hold_, keepalive_;
};

// RFC 4271 6.8: of two connections to the same peer, the one initiated by the speaker
// with the higher BGP identifier survives. True: keep the connection we initiated.
inline bool collision_keep_outgoing(uint32_t local_id, uint32_t remote_id) {
    return local_id > remote_id;
}

} // namespace vleaf::bgp
