#include "dataplane/doorbell.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace vleaf::dp {

Doorbell::Doorbell() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "doorbell eventfd");
}

Doorbell::~Doorbell() {
    close(fd_);
}

void Doorbell::wake() {
    uint64_t one = 1;
    // Only EAGAIN can fail here (the counter full), and then the loop is awake anyway.
    (void)!write(fd_, &one, sizeof one);
    wakes_.fetch_add(1, std::memory_order_relaxed);
}

void Doorbell::clear() {
    uint64_t n;
    (void)!read(fd_, &n, sizeof n);
}

} // namespace vleaf::dp
