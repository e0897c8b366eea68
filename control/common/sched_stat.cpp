#include "control/common/sched_stat.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace vleaf {

namespace {
int open_stat(pid_t tid) {
    std::string path = "/proc/self/task/" + std::to_string(tid) + "/schedstat";
    return open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

std::optional<SchedStat> parse(int fd) {
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return std::nullopt;
    buf[n] = 0;
    SchedStat s;
    unsigned long long run, wait, slices;
    if (std::sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3) return std::nullopt;
    s.run_ns = run;
    s.wait_ns = wait;
    s.slices = slices;
    return s;
}
} // namespace

ThreadSched::ThreadSched(pid_t tid) : fd_(open_stat(tid)) {}

ThreadSched::~ThreadSched() {
    if (fd_ >= 0) close(fd_);
}

std::optional<SchedStat> ThreadSched::read() const {
    return fd_ < 0 ? std::nullopt : parse(fd_);
}

std::optional<SchedStat> sched_stat(pid_t tid) {
    int fd = open_stat(tid);
    if (fd < 0) return std::nullopt;
    auto s = parse(fd);
    close(fd);
    return s;
}

} // namespace vleaf
