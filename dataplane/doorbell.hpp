// How workers wake the control thread when it sleeps. Punts and MACs to learn travel on
// rte_rings, which have no file descriptor: while work comes the control loop polls them
// every millisecond, but when idle it sleeps up to its 50 ms tick, and a punt after a
// quiet spell (a BGP keepalive on a DPDK port, a ping, BFD) would wait for that tick.
// So the loop arms the doorbell before a long sleep and a worker that hands it work while
// it is armed writes its eventfd: one write(2) per sleep, none while the loop is awake.
#pragma once

#include <atomic>
#include <cstdint>

namespace vleaf::dp {

class Doorbell {
  public:
    Doorbell(); // throws std::system_error if the eventfd cannot be made
    ~Doorbell();
    Doorbell(const Doorbell &) = delete;
    Doorbell &operator=(const Doorbell &) = delete;

    int fd() const { return fd_; }

    // Worker, after an enqueue: the fences of ring() and arm() pair up (store, fence,
    // load on both sides), so either the control thread's check after arm() sees the
    // enqueue or this load sees it armed.
    void ring() {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (armed_.load(std::memory_order_relaxed) && armed_.exchange(false)) wake();
    }

    // Control thread: arm, then look at the rings once more before sleeping; disarm on
    // waking. clear() reads the eventfd when it was written.
    void arm() {
        armed_.store(true, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    void disarm() { armed_.store(false, std::memory_order_relaxed); }
    void clear();

    uint64_t wakes() const { return wakes_.load(std::memory_order_relaxed); }

  private:
    void wake();

    alignas(64) std::atomic<bool> armed_{false};
    std::atomic<uint64_t> wakes_{0};
    int fd_ = -1;
};

} // namespace vleaf::dp
