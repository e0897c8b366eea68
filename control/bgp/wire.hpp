// Bounds-checked big-endian reading and appending, private to the BGP codec.
#pragma once

#include "control/bgp/message.hpp"

#include <cstring>

namespace vleaf::bgp::wire {

// Every read checks the remaining length first; a failed read leaves the cursor where it
// was so that the caller can report what was being parsed.
class Reader {
  public:
    explicit Reader(ByteView b) : p_(b.data()), end_(b.data() + b.size()) {}

    size_t left() const { return size_t(end_ - p_); }
    bool empty() const { return p_ == end_; }
    const uint8_t *pos() const { return p_; }

    bool u8(uint8_t &v) {
        if (left() < 1) return false;
        v = *p_++;
        return true;
    }
    bool u16(uint16_t &v) {
        if (left() < 2) return false;
        v = uint16_t(p_[0] << 8 | p_[1]);
        p_ += 2;
        return true;
    }
    bool u24(uint32_t &v) {
        if (left() < 3) return false;
        v = uint32_t(p_[0]) << 16 | uint32_t(p_[1]) << 8 | p_[2];
        p_ += 3;
        return true;
    }
    bool u32(uint32_t &v) {
        if (left() < 4) return false;
        v = uint32_t(p_[0]) << 24 | uint32_t(p_[1]) << 16 | uint32_t(p_[2]) << 8 | p_[3];
        p_ += 4;
        return true;
    }
    bool bytes(uint8_t *dst, size_t n) {
        if (left() < n) return false;
        std::memcpy(dst, p_, n);
        p_ += n;
        return true;
    }
    bool view(size_t n, ByteView &v) {
        if (left() < n) return false;
        v = ByteView(p_, n);
        p_ += n;
        return true;
    }
    bool skip(size_t n) {
        if (left() < n) return false;
        p_ += n;
        return true;
    }
    ByteView rest() const { return ByteView(p_, left()); }

  private:
    const uint8_t *p_;
    const uint8_t *end_;
};

inline void put8(Bytes &o, uint8_t v) {
    o.push_back(v);
}
inline void put16(Bytes &o, uint16_t v) {
    o.push_back(uint8_t(v >> 8));
    o.push_back(uint8_t(v));
}
inline void put24(Bytes &o, uint32_t v) {
    o.push_back(uint8_t(v >> 16));
    o.push_back(uint8_t(v >> 8));
    o.push_back(uint8_t(v));
}
inline void put32(Bytes &o, uint32_t v) {
    put16(o, uint16_t(v >> 16));
    put16(o, uint16_t(v));
}
inline void put64(Bytes &o, uint64_t v) {
    put32(o, uint32_t(v >> 32));
    put32(o, uint32_t(v));
}
inline void put(Bytes &o, ByteView b) {
    o.insert(o.end(), b.begin(), b.end());
}
inline void set16(Bytes &o, size_t at, uint16_t v) {
    o[at] = uint8_t(v >> 8);
    o[at + 1] = uint8_t(v);
}

// Appends the 19-byte header with a zero length; finish_message() fills it in.
inline size_t begin_message(Bytes &o, MsgType t) {
    size_t start = o.size();
    o.insert(o.end(), 16, 0xff);
    put16(o, 0);
    put8(o, uint8_t(t));
    return start;
}
inline void finish_message(Bytes &o, size_t start) {
    set16(o, start + 16, uint16_t(o.size() - start));
}

inline size_t addr_len(const IpAddr &a) {
    return a.is_v4() ? 4 : 16;
}
inline void put_addr(Bytes &o, const IpAddr &a) {
    o.insert(o.end(), a.bytes.begin(), a.bytes.begin() + addr_len(a));
}

// Prefix NLRI (RFC 4271 §4.3, RFC 4760 §5, optional RFC 7911 path id). Returns false on
// truncation or a length beyond the family's maximum.
bool read_prefix(Reader &r, Family fam, bool path_id, PrefixNlri &out);
void put_prefix(Bytes &o, const PrefixNlri &p, bool path_id);
size_t prefix_wire_len(const PrefixNlri &p, bool path_id);

// EVPN NLRI (RFC 7432 §7, RFC 9136 §3). Truncated: the framing is broken, nothing after
// it can be trusted. Malformed: the route's own length is sound but its content is not.
enum class NlriError { None, Truncated, Malformed };
NlriError read_evpn(Reader &r, bool path_id, EvpnNlri &out, const char *&why);
void put_evpn(Bytes &o, const EvpnNlri &e, bool path_id);

// Records RFC 7606 outcomes on an UpdateResult, keeping the most severe.
struct Verdict {
    UpdateResult &res;
    void raise(UpdateAction a, uint8_t subcode, ByteView data, std::string why);
    void discard(uint8_t type, std::string why);
};

// AS4_PATH / AS4_AGGREGATOR as received from a 2-octet-only peer, before merging.
struct As4Attrs {
    std::optional<AsPath> path;
    std::optional<Aggregator> aggregator;
};

// One path attribute other than MP_REACH/MP_UNREACH; `whole` is the attribute with its
// header, for NOTIFICATION data.
void decode_attr(uint8_t flags, uint8_t type, ByteView value, ByteView whole,
                 const CodecContext &ctx, PathAttrs &a, As4Attrs &as4, Verdict &v);
// RFC 6793 §4.2.3, for sessions without the 4-octet AS capability.
void merge_as4(PathAttrs &a, As4Attrs &as4);
// All attributes but MP_REACH/MP_UNREACH; NEXT_HOP from `next_hop`, not a.next_hop.
void encode_attrs(const PathAttrs &a, std::optional<uint32_t> next_hop, const CodecContext &ctx,
                  Bytes &o);
// Attribute header with a 2-octet length; end_attr() shrinks it to 1 octet when it fits.
size_t begin_attr(Bytes &o, uint8_t flags, uint8_t type);
void end_attr(Bytes &o, size_t at);

void put_rd(Bytes &o, const RouteDistinguisher &rd);
RouteDistinguisher read_rd(const uint8_t *p8);

} // namespace vleaf::bgp::wire
