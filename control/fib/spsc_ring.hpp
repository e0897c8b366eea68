// A bounded single-producer, single-consumer ring, allocated once: push fails when full,
// nothing allocates or blocks. Unlike boost::lockfree::spsc_queue, the consumer can read
// messages where they lie (peek, then release): a route message is ~300 bytes of which a
// single-path route uses the first cache line, and copying every message out cost the
// table writer as much as the table update. Each side keeps a copy of the other side's
// index and reads the shared one only when its copy says full or empty.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <span>
#include <vector>

namespace vleaf::fib {

template <class T> class SpscRing {
  public:
    explicit SpscRing(size_t capacity) : buf_(capacity + 1) {}
    SpscRing(const SpscRing &) = delete;
    SpscRing &operator=(const SpscRing &) = delete;

    // Producer.
    bool push(const T &v) {
        size_t w = write_.load(std::memory_order_relaxed), next = step(w, 1);
        if (next == read_seen_) {
            read_seen_ = read_.load(std::memory_order_acquire);
            if (next == read_seen_) return false;
        }
        buf_[w] = v;
        write_.store(next, std::memory_order_release);
        return true;
    }

    // Consumer: up to `max` waiting messages, in place (fewer where the buffer wraps);
    // they stay valid until release().
    std::span<const T> peek(size_t max) {
        size_t r = read_.load(std::memory_order_relaxed);
        if (r == write_seen_) write_seen_ = write_.load(std::memory_order_acquire);
        size_t ready = write_seen_ >= r ? write_seen_ - r : buf_.size() - r;
        return {buf_.data() + r, std::min(max, ready)};
    }
    void release(size_t n) {
        read_.store(step(read_.load(std::memory_order_relaxed), n), std::memory_order_release);
    }
    size_t pop(T *out, size_t max) {
        size_t done = 0;
        while (done < max) {
            std::span<const T> s = peek(max - done);
            if (s.empty()) break;
            std::copy(s.begin(), s.end(), out + done);
            release(s.size());
            done += s.size();
        }
        return done;
    }
    size_t read_available() const {
        size_t w = write_.load(std::memory_order_acquire),
               r = read_.load(std::memory_order_acquire);
        return w >= r ? w - r : w + buf_.size() - r;
    }

  private:
    size_t step(size_t i, size_t n) const {
        i += n;
        return i >= buf_.size() ? i - buf_.size() : i;
    }

    std::vector<T> buf_;
    alignas(64) std::atomic<size_t> write_{0};
    size_t read_seen_ = 0; // the producer's copy of read_
    alignas(64) std::atomic<size_t> read_{0};
    size_t write_seen_ = 0; // the consumer's copy of write_
};

} // namespace vleaf::fib
