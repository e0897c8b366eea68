#include "control/bgp/session.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vleaf::bgp {

size_t PrefixHash::operator()(const Prefix &p) const {
    uint64_t a, b;
    std::memcpy(&a, p.addr.bytes.data(), 8);
    std::memcpy(&b, p.addr.bytes.data() + 8, 8);
    return size_t((a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full) ^ p.len);
}

namespace {

// `v6_socket`: an AF_INET6 socket, where IPv4 peers appear v4-mapped.
socklen_t to_sockaddr(const IpAddr &a, uint16_t port, bool v6_socket, sockaddr_storage &ss) {
    std::memset(&ss, 0, sizeof ss);
    if (a.is_v4() && !v6_socket) {
        auto *s = reinterpret_cast<sockaddr_in *>(&ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        s->sin_addr.s_addr = a.v4_net();
        return sizeof *s;
    }
    auto *s = reinterpret_cast<sockaddr_in6 *>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    if (a.is_v4()) {
        s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
        std::memcpy(&s->sin6_addr.s6_addr[12], a.bytes.data(), 4);
    } else {
        std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
    }
    return sizeof *s;
}

IpAddr from_sockaddr(const sockaddr_storage &ss, uint16_t &port) {
    if (ss.ss_family == AF_INET) {
        auto *s = reinterpret_cast<const sockaddr_in *>(&ss);
        port = ntohs(s->sin_port);
        return IpAddr::v4(ntohl(s->sin_addr.s_addr));
    }
    auto *s = reinterpret_cast<const sockaddr_in6 *>(&ss);
    port = ntohs(s->sin6_port);
    const uint8_t *b = s->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, mapped, 12) == 0)
        return IpAddr::v4(uint32_t(b[12]) << 24 | uint32_t(b[13]) << 16 | uint32_t(b[14]) << 8 |
                          b[15]);
    return IpAddr::v6(b);
}

} // namespace

int open_listen_socket(const IpAddr &addr, uint16_t port) {
    bool v6 = !addr.is_v4();
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // "::" also accepts IPv4 peers (v4-mapped), whatever net.ipv6.bindv6only says.
    if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(addr, port, v6, ss);
    if (bind(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool set_md5(int fd, const IpAddr &peer, uint8_t prefix_len, const std::string &key,
             bool v6_socket) {
    tcp_md5sig sig;
    std::memset(&sig, 0, sizeof sig);
    to_sockaddr(peer, 0, v6_socket, sig.tcpm_addr);
    if (key.size() > TCP_MD5SIG_MAXKEYLEN) {
        errno = EINVAL;
        return false;
    }
    sig.tcpm_keylen = uint16_t(key.size());
    std::memcpy(sig.tcpm_key, key.data(), key.size());
    int opt = TCP_MD5SIG;
    if (prefix_len < peer.max_len()) {
        opt = TCP_MD5SIG_EXT;
        sig.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
        // A v4-mapped range on an IPv6 socket counts the 96 mapping bits.
        sig.tcpm_prefixlen = uint8_t(prefix_len + (peer.is_v4() && v6_socket ? 96 : 0));
    }
    return setsockopt(fd, IPPROTO_TCP, opt, &sig, sizeof sig) == 0;
}

bool set_ttl_options(int fd, const Session &s) {
    int ttl = 0, min_ttl = 0;
    if (s.cfg.ttl_security) {
        ttl = 255;
        min_ttl = 254; // RFC 5082: only directly connected peers can reach 254
    } else if (!s.ibgp()) {
        ttl = s.cfg.multihop ? s.cfg.multihop : 1;
    }
    if (!ttl) return true;
    bool ok = true;
    if (s.remote.is_v4()) {
        // Also valid on an IPv6 socket carrying a v4-mapped connection.
        ok &= setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0;
        if (min_ttl) ok &= setsockopt(fd, IPPROTO_IP, IP_MINTTL, &min_ttl, sizeof min_ttl) == 0;
    } else {
        ok &= setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) == 0;
        if (min_ttl)
            ok &= setsockopt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, &min_ttl, sizeof min_ttl) == 0;
    }
    return ok;
}

int open_active_socket(const Session &s) {
    bool v6 = !s.remote.is_v4();
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    auto fail = [fd] {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    };
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!s.cfg.password.empty() &&
        !set_md5(fd, s.remote, uint8_t(s.remote.max_len()), s.cfg.password, v6))
        return fail();
    if (!set_ttl_options(fd, s)) return fail();
    sockaddr_storage ss;
    if (s.cfg.update_source) {
        socklen_t len = to_sockaddr(*s.cfg.update_source, 0, v6, ss);
        if (bind(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0) return fail();
    }
    socklen_t len = to_sockaddr(s.remote, s.cfg.port, v6, ss);
    if (connect(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0 && errno != EINPROGRESS)
        return fail();
    return fd;
}

bool socket_addresses(int fd, IpAddr &local, uint16_t &lport, IpAddr &remote, uint16_t &rport) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0) return false;
    local = from_sockaddr(ss, lport);
    len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0) return false;
    remote = from_sockaddr(ss, rport);
    return true;
}

} // namespace vleaf::bgp
