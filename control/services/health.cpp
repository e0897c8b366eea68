#include "control/services/health.hpp"

#include <cerrno>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>

namespace vleaf::svc {

namespace {

// -1: could not even start (counts as a failure); otherwise the connecting socket.
int start_connect(const IpAddr &addr, uint16_t port, bool &connected) {
    sockaddr_storage ss{};
    socklen_t len;
    if (addr.is_v4()) {
        auto *sa = reinterpret_cast<sockaddr_in *>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        std::memcpy(&sa->sin_addr, addr.bytes.data(), 4);
        len = sizeof *sa;
    } else {
        auto *sa = reinterpret_cast<sockaddr_in6 *>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
        std::memcpy(&sa->sin6_addr, addr.bytes.data(), 16);
        len = sizeof *sa;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    connected = connect(fd, reinterpret_cast<sockaddr *>(&ss), len) == 0;
    if (!connected && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

} // namespace

HealthChecker::~HealthChecker() {
    for (auto &[k, p] : probes_) close(p.fd);
}

void HealthChecker::finish(const Key &k, bool ok) {
    auto it = probes_.find(k);
    close(it->second.fd);
    probes_.erase(it);
    report_(std::get<0>(k), std::get<1>(k), std::get<2>(k), ok);
}

void HealthChecker::poll(const std::map<std::string, Service> &services, uint64_t now_ms) {
    std::set<Key> wanted;
    for (const auto &[name, s] : services) {
        if (!s.health.tcp) continue;
        for (const auto &b : s.backends) wanted.insert({name, b.addr, b.port});
    }
    // Probes of backends (or checks) that went away are dropped unreported.
    for (auto it = probes_.begin(); it != probes_.end();) {
        if (wanted.count(it->first)) {
            ++it;
            continue;
        }
        close(it->second.fd);
        it = probes_.erase(it);
    }
    std::erase_if(due_, [&](const auto &e) { return !wanted.count(e.first); });

    std::vector<pollfd> fds;
    std::vector<Key> keys;
    for (const auto &[k, p] : probes_) {
        fds.push_back({p.fd, POLLOUT, 0});
        keys.push_back(k);
    }
    if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) >= 0) {
        for (size_t i = 0; i < fds.size(); i++) {
            if (fds[i].revents) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                finish(keys[i], err == 0);
            } else if (now_ms >= probes_.at(keys[i]).deadline) {
                finish(keys[i], false);
            }
        }
    }

    for (const Key &k : wanted) {
        if (probes_.count(k)) continue;
        auto [it, fresh] = due_.emplace(k, now_ms);
        if (!fresh && now_ms < it->second) continue;
        const HealthCheck &h = services.at(std::get<0>(k)).health;
        it->second = now_ms + h.interval_ms;
        bool connected = false;
        int fd = start_connect(std::get<1>(k), std::get<2>(k), connected);
        if (fd < 0 || connected) {
            if (fd >= 0) close(fd);
            report_(std::get<0>(k), std::get<1>(k), std::get<2>(k), fd >= 0);
            continue;
        }
        probes_[k] = Probe{fd, now_ms + h.timeout_ms};
    }
}

} // namespace vleaf::svc
