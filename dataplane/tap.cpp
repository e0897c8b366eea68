#include "dataplane/tap.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>
#include <stdexcept>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vleaf::dp {

namespace {

[[noreturn]] void fail(const std::string &tap, const std::string &what) {
    throw std::runtime_error("tap " + tap + ": " + what + ": " + std::strerror(errno));
}

void ifreq_ioctl(const std::string &name, unsigned long req, ifreq &ifr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail(name, "socket");
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    int rc = ioctl(s, req, &ifr);
    int saved = errno;
    close(s);
    errno = saved;
    if (rc < 0) fail(name, "ioctl " + std::to_string(req));
}

// RTM_NEWADDR through rtnetlink: ioctls cannot add secondary IPv4 or skip IPv6 DAD.
void add_address(const std::string &name, unsigned ifindex, const Prefix &p) {
    struct {
        nlmsghdr nh;
        ifaddrmsg ifa;
        char attrs[64];
    } req{};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
    req.nh.nlmsg_type = RTM_NEWADDR;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK;
    req.ifa.ifa_family = p.addr.is_v4() ? AF_INET : AF_INET6;
    req.ifa.ifa_prefixlen = p.len;
    req.ifa.ifa_flags = p.addr.is_v4() ? 0 : IFA_F_NODAD;
    req.ifa.ifa_index = ifindex;
    unsigned alen = p.addr.is_v4() ? 4 : 16;
    for (unsigned short type : {IFA_LOCAL, IFA_ADDRESS}) {
        auto *rta = reinterpret_cast<rtattr *>(reinterpret_cast<char *>(&req) +
                                               NLMSG_ALIGN(req.nh.nlmsg_len));
        rta->rta_type = type;
        rta->rta_len = RTA_LENGTH(alen);
        std::memcpy(RTA_DATA(rta), p.addr.bytes.data(), alen);
        req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
    }
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) fail(name, "netlink socket");
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    int rc =
        sendto(s, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr *>(&kernel), sizeof kernel);
    char reply[256];
    ssize_t n = rc < 0 ? -1 : recv(s, reply, sizeof reply, 0);
    close(s);
    if (n < static_cast<ssize_t>(sizeof(nlmsghdr) + sizeof(nlmsgerr))) fail(name, "netlink");
    auto *err = static_cast<nlmsgerr *>(NLMSG_DATA(reinterpret_cast<nlmsghdr *>(reply)));
    if (err->error != 0) {
        errno = -err->error;
        fail(name, "adding address " + p.str());
    }
}

} // namespace

Tap::Tap(const std::string &name, const MacAddr &mac, unsigned mtu,
         const std::vector<Prefix> &addresses)
    : name_(name) {
    if (name.size() >= IFNAMSIZ) throw std::runtime_error("tap " + name + ": name too long");
    fd_ = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail(name, "open /dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, TUNSETIFF, &ifr) < 0) {
        close(fd_);
        fail(name, "TUNSETIFF (is the name taken?)");
    }
    ifreq hw{};
    hw.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(hw.ifr_hwaddr.sa_data, mac.bytes.data(), 6);
    ifreq_ioctl(name, SIOCSIFHWADDR, hw);
    ifreq m{};
    m.ifr_mtu = static_cast<int>(mtu);
    ifreq_ioctl(name, SIOCSIFMTU, m);
    ifreq flags{};
    ifreq_ioctl(name, SIOCGIFFLAGS, flags);
    flags.ifr_flags |= IFF_UP;
    ifreq_ioctl(name, SIOCSIFFLAGS, flags);
    ifreq idx{};
    ifreq_ioctl(name, SIOCGIFINDEX, idx);
    for (auto &p : addresses) add_address(name, static_cast<unsigned>(idx.ifr_ifindex), p);
}

Tap::~Tap() {
    // A non-persistent tap disappears with its last file descriptor.
    if (fd_ >= 0) close(fd_);
}

bool Tap::write(std::span<const uint8_t> frame) {
    return ::write(fd_, frame.data(), frame.size()) == static_cast<ssize_t>(frame.size());
}

size_t Tap::read(uint8_t *buf, size_t cap) {
    ssize_t n = ::read(fd_, buf, cap);
    return n > 0 ? static_cast<size_t>(n) : 0;
}

} // namespace vleaf::dp
