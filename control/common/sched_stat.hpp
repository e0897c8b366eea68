// The kernel's scheduler accounting of one thread of this process
// (/proc/self/task/TID/schedstat): how long it ran, how long it waited on a run queue
// for a CPU, and how many times it was scheduled in. A busy-polling thread that was
// never switched out has the same `slices` before and after; any growth of `wait_ns`
// is time it was runnable but another thread held its CPU. Hypervisor steal and
// interrupts do not show here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace vleaf {

struct SchedStat {
    uint64_t run_ns = 0;
    uint64_t wait_ns = 0;
    uint64_t slices = 0;
};

// Keeps the file open: a read is one pread (a few µs), for callers that sample often.
class ThreadSched {
  public:
    explicit ThreadSched(pid_t tid);
    ~ThreadSched();
    ThreadSched(const ThreadSched &) = delete;
    ThreadSched &operator=(const ThreadSched &) = delete;

    std::optional<SchedStat> read() const; // empty if the thread is gone
  private:
    int fd_ = -1;
};

// One read, for callers that ask rarely (show commands).
std::optional<SchedStat> sched_stat(pid_t tid);

} // namespace vleaf
