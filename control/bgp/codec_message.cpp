// Message header, KEEPALIVE, NOTIFICATION and ROUTE-REFRESH.
#include "control/bgp/wire.hpp"

#include <cstdio>

namespace vleaf::bgp {

using namespace wire;

namespace {

const char *code_name(uint8_t code) {
    switch (code) {
    case err::kHeader:
        return "Message Header Error";
    case err::kOpen:
        return "OPEN Message Error";
    case err::kUpdate:
        return "UPDATE Message Error";
    case err::kHoldTimerExpired:
        return "Hold Timer Expired";
    case err::kFsm:
        return "Finite State Machine Error";
    case err::kCease:
        return "Cease";
    case err::kRouteRefresh:
        return "ROUTE-REFRESH Message Error";
    }
    return "Unknown Error";
}

const char *subcode_name(uint8_t code, uint8_t sub) {
    static const char *const header[] = {"Unspecific", "Connection Not Synchronized",
                                         "Bad Message Length", "Bad Message Type"};
    static const char *const open[] = {"Unspecific",
                                       "Unsupported Version Number",
                                       "Bad Peer AS",
                                       "Bad BGP Identifier",
                                       "Unsupported Optional Parameter",
                                       "Authentication Failure",
                                       "Unacceptable Hold Time",
                                       "Unsupported Capability"};
    static const char *const update[] = {"Unspecific",
                                         "Malformed Attribute List",
                                         "Unrecognized Well-known Attribute",
                                         "Missing Well-known Attribute",
                                         "Attribute Flags Error",
                                         "Attribute Length Error",
                                         "Invalid ORIGIN Attribute",
                                         "AS Routing Loop",
                                         "Invalid NEXT_HOP Attribute",
                                         "Optional Attribute Error",
                                         "Invalid Network Field",
                                         "Malformed AS_PATH"};
    static const char *const cease[] = {"Unspecific",
                                        "Maximum Number of Prefixes Reached",
                                        "Administrative Shutdown",
                                        "Peer De-configured",
                                        "Administrative Reset",
                                        "Connection Rejected",
                                        "Other Configuration Change",
                                        "Connection Collision Resolution",
                                        "Out of Resources",
                                        "Hard Reset"};
    auto pick = [sub](const char *const *names, size_t n) {
        return sub < n ? names[sub] : "Unknown";
    };
    switch (code) {
    case err::kHeader:
        return pick(header, std::size(header));
    case err::kOpen:
        return pick(open, std::size(open));
    case err::kUpdate:
        return pick(update, std::size(update));
    case err::kCease:
        return pick(cease, std::size(cease));
    case err::kRouteRefresh:
        return sub == 1 ? "Invalid Message Length" : "Unspecific";
    }
    return sub == 0 ? "Unspecific" : "Unknown";
}

} // namespace

std::string Notification::str() const {
    std::string s = std::string(code_name(code)) + "/" + subcode_name(code, subcode) + " (" +
                    std::to_string(code) + "/" + std::to_string(subcode) + ")";
    if (!data.empty()) {
        s += " data";
        char buf[4];
        for (size_t i = 0; i < data.size() && i < 32; i++) {
            std::snprintf(buf, sizeof buf, " %02x", data[i]);
            s += buf;
        }
        if (data.size() > 32) s += " ...";
    }
    return s;
}

HeaderResult decode_header(ByteView b, size_t max_len) {
    HeaderResult r;
    if (b.size() < kHeaderLen) {
        r.error = Notification{err::kHeader, err::kBadMessageLength, {0, uint8_t(b.size())}};
        return r;
    }
    for (size_t i = 0; i < 16; i++)
        if (b[i] != 0xff) {
            r.error = Notification{err::kHeader, err::kConnNotSynchronized, {}};
            return r;
        }
    uint16_t len = uint16_t(b[16] << 8 | b[17]);
    uint8_t type = b[18];
    r.header.length = len;
    r.header.type = MsgType(type);
    size_t min = 0;
    bool exact = false;
    switch (MsgType(type)) {
    case MsgType::Open:
        min = 29;
        break;
    case MsgType::Update:
        min = 23;
        break;
    case MsgType::Notification:
        min = 21;
        break;
    case MsgType::Keepalive:
        min = 19, exact = true;
        break;
    case MsgType::RouteRefresh:
        min = 23;
        break;
    default:
        r.error = Notification{err::kHeader, err::kBadMessageType, {type}};
        return r;
    }
    if (len < min || len > max_len || (exact && len != min))
        r.error = Notification{err::kHeader, err::kBadMessageLength, {b[16], b[17]}};
    return r;
}

void encode_keepalive(Bytes &out) {
    finish_message(out, begin_message(out, MsgType::Keepalive));
}

std::optional<Notification> decode_notification(ByteView body) {
    if (body.size() < 2) return std::nullopt;
    return Notification{body[0], body[1], Bytes(body.begin() + 2, body.end())};
}

void encode_notification(const Notification &n, Bytes &out) {
    size_t start = begin_message(out, MsgType::Notification);
    put8(out, n.code);
    put8(out, n.subcode);
    // The data is cut rather than the whole message refused: the peer must hear why.
    size_t room = kMaxMessageLen - kHeaderLen - 2;
    put(out, ByteView(n.data).first(std::min(room, n.data.size())));
    finish_message(out, start);
}

RouteRefreshResult decode_route_refresh(ByteView body) {
    RouteRefreshResult r;
    if (body.size() != 4) {
        // RFC 7313 §5: the data is the complete ROUTE-REFRESH message.
        Bytes msg;
        size_t start = begin_message(msg, MsgType::RouteRefresh);
        put(msg, body);
        finish_message(msg, start);
        r.error = Notification{err::kRouteRefresh, err::kInvalidRouteRefreshLength, std::move(msg)};
        return r;
    }
    r.refresh.family = AfiSafi{uint16_t(body[0] << 8 | body[1]), body[3]};
    r.refresh.subtype = body[2];
    return r;
}

void encode_route_refresh(const RouteRefresh &rr, Bytes &out) {
    size_t start = begin_message(out, MsgType::RouteRefresh);
    put16(out, rr.family.afi);
    put8(out, rr.subtype);
    put8(out, rr.family.safi);
    finish_message(out, start);
}

} // namespace vleaf::bgp
