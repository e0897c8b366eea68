// The route ring's queue, A/B: control/fib/spsc_ring.hpp against boost::lockfree::
// spsc_queue (issue 5 names the latter; EvpnRing still uses it), for the message the
// route ring carries (fib::RouteMsg). A producer thread pushes as fast as the ring takes
// them (spinning while full) while the benchmark thread consumes and reads each message's
// first fields, as fib::drain does. Producer and consumer are pinned to two different
// CPUs (the first two this process may use), so that the index and message cache lines
// really move between cores. In place: SpscRing's peek/release (up to 256 at a time, as
// drain) and spsc_queue's consume_all (everything waiting, one index store: its only
// batch that reads in place; consume_one would store the index per message). `Copy`:
// both pop up to 256 into an array first. Items are the messages actually consumed; the
// `batch` counter is the mean number taken per non-empty consume.
//
//   bench_spsc_ring [--benchmark_repetitions=5 --benchmark_enable_random_interleaving=true]
#include "control/fib/ring.hpp"

#include <benchmark/benchmark.h>
#include <boost/lockfree/spsc_queue.hpp>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace vleaf;

namespace {

constexpr size_t kBatch = 256;    // what fib::drain peeks at a time
constexpr size_t kPerIter = 1024; // messages consumed (at least) per benchmark iteration
// On a shared machine items_per_second (the mean) mostly measures how often the other
// processes take either CPU: while one side is switched out the other spins, and when the
// consumer comes back it drains a backlog the producer piled up. An iteration is clean
// when neither thread was switched out during it or the one before (their getrusage
// context switches; the producer publishes its count every 256 messages) and it did not
// shrink a backlog by a batch or more (the ring stays nearly empty while the producer is
// the slower side, full while the consumer is): the median rate of clean iterations
// (clean_rate, how many in clean_iters) is the steady rate of the pair.
constexpr size_t kMaxRates = 1 << 16;

long switches() {
    rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_nvcsw + u.ru_nivcsw;
}

fib::RouteMsg message(uint32_t k) {
    fib::RouteMsg m;
    m.op = fib::RouteMsg::Op::Set;
    m.vrf = 0;
    m.prefix = Prefix{IpAddr::v4(k << 8), 24};
    m.via[0] = IpAddr::v4(0x0a000102);
    m.n_via = 1;
    return m;
}

// What the consumer reads of a message (its first cache line, as drain does).
uint64_t touch(const fib::RouteMsg &m) {
    return m.prefix.len + m.vrf + m.n_via + m.prefix.addr.bytes[1];
}

// The first two CPUs of the process's mask: the producer's and the consumer's.
bool two_cpus(int cpu[2]) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &set)) cpu[found++] = c;
    return found == 2;
}

bool pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Runs `push(msg)` on a producer thread until stopped; the benchmark loop consumes with
// `consume(sum)`, which returns how many messages it took.
template <class Push, class Consume, class Waiting>
void run(benchmark::State &state, Push push, Consume consume, Waiting waiting) {
    int cpu[2];
    cpu_set_t before;
    if (!two_cpus(cpu) || pthread_getaffinity_np(pthread_self(), sizeof before, &before) != 0 ||
        !pin(cpu[1])) {
        state.SkipWithError("needs two CPUs to pin producer and consumer apart");
        return;
    }
    std::atomic<bool> stop{false};
    std::atomic<bool> pinned{true};
    std::atomic<long> producer_switches{0};
    std::thread producer([&] {
        pinned = pin(cpu[0]);
        uint32_t k = 0;
        fib::RouteMsg m = message(0);
        while (!stop.load(std::memory_order_relaxed)) {
            m.prefix.addr.bytes[1] = uint8_t(k++);
            while (!push(m) && !stop.load(std::memory_order_relaxed)) {
            }
            if ((k & 255) == 0) producer_switches.store(switches(), std::memory_order_relaxed);
        }
    });
    uint64_t sum = 0, items = 0, batches = 0;
    std::vector<double> rates; // of clean iterations, items/s
    rates.reserve(kMaxRates);
    bool prev_clean = false;
    for (auto _ : state) {
        long c0 = switches(), p0 = producer_switches.load(std::memory_order_relaxed);
        size_t w0 = waiting();
        auto t0 = std::chrono::steady_clock::now();
        size_t got = 0;
        while (got < kPerIter) {
            size_t n = consume(sum);
            got += n;
            batches += n != 0;
        }
        auto t1 = std::chrono::steady_clock::now();
        bool drained_backlog = w0 >= waiting() + kBatch;
        items += got;
        bool now_clean =
            switches() == c0 && producer_switches.load(std::memory_order_relaxed) == p0;
        if (now_clean && prev_clean && !drained_backlog && rates.size() < kMaxRates)
            rates.push_back(double(got) / std::chrono::duration<double>(t1 - t0).count());
        prev_clean = now_clean;
    }
    stop = true;
    producer.join();
    pthread_setaffinity_np(pthread_self(), sizeof before, &before);
    if (!pinned) state.SkipWithError("could not pin the producer");
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(int64_t(items));
    if (!rates.empty()) {
        std::nth_element(rates.begin(), rates.begin() + ptrdiff_t(rates.size() / 2), rates.end());
        state.counters["clean_rate"] = rates[rates.size() / 2];
    }
    state.counters["clean_iters"] = double(rates.size());
    state.counters["batch"] = batches ? double(items) / double(batches) : 0.0;
    state.counters["msg_bytes"] = double(sizeof(fib::RouteMsg));
}

void BM_SpscRing(benchmark::State &state) {
    fib::SpscRing<fib::RouteMsg> ring(size_t(state.range(0)));
    run(
        state, [&](const fib::RouteMsg &m) { return ring.push(m); },
        [&](uint64_t &sum) {
            auto s = ring.peek(kBatch);
            for (const fib::RouteMsg &m : s) sum += touch(m);
            ring.release(s.size());
            return s.size();
        },
        [&] { return ring.read_available(); });
}

void BM_BoostSpsc(benchmark::State &state) {
    boost::lockfree::spsc_queue<fib::RouteMsg> q(size_t(state.range(0)));
    run(
        state, [&](const fib::RouteMsg &m) { return q.push(m); },
        [&](uint64_t &sum) {
            return q.consume_all([&](const fib::RouteMsg &m) { sum += touch(m); });
        },
        [&] { return q.read_available(); });
}

// Pops up to a batch into an array, then reads the copies: the same calls on both queues.
template <class Queue> void run_copied(benchmark::State &state, Queue &q) {
    std::vector<fib::RouteMsg> out(kBatch);
    run(
        state, [&](const fib::RouteMsg &m) { return q.push(m); },
        [&](uint64_t &sum) {
            size_t n = q.pop(out.data(), kBatch);
            for (size_t i = 0; i < n; i++) sum += touch(out[i]);
            return n;
        },
        [&] { return q.read_available(); });
}

void BM_SpscRingCopy(benchmark::State &state) {
    fib::SpscRing<fib::RouteMsg> ring(size_t(state.range(0)));
    run_copied(state, ring);
}

void BM_BoostSpscCopy(benchmark::State &state) {
    boost::lockfree::spsc_queue<fib::RouteMsg> q(size_t(state.range(0)));
    run_copied(state, q);
}

// 4096: a drain's worth; 65536: bench_fib_update's and vleafd's route ring.
BENCHMARK(BM_SpscRing)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(BM_BoostSpsc)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(BM_SpscRingCopy)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(BM_BoostSpscCopy)->Arg(4096)->Arg(65536)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
