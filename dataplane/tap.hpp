// The kernel side of the exception path: one tap per interface carrying the port's MAC,
// MTU and addresses, so the host's own sockets (BGP, ping, ssh) work on a DPDK port.
#pragma once

#include "vleaf/addr.hpp"

#include <span>
#include <string>
#include <vector>

namespace vleaf::dp {

class Tap {
  public:
    Tap(const std::string &name, const MacAddr &mac, unsigned mtu,
        const std::vector<Prefix> &addresses);
    ~Tap();
    Tap(const Tap &) = delete;
    Tap &operator=(const Tap &) = delete;

    int fd() const { return fd_; }
    const std::string &name() const { return name_; }
    // Non-blocking: a full kernel queue drops the frame, which the caller counts.
    bool write(std::span<const uint8_t> frame);
    // Returns the frame length, 0 when nothing is pending.
    size_t read(uint8_t *buf, size_t cap);

  private:
    std::string name_;
    int fd_ = -1;
};

} // namespace vleaf::dp
