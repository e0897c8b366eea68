// The route ring's queue, A/B: control/fib/spsc_ring.hpp against boost::lockfree::
// spsc_queue (issue 5 names the latter; EvpnRing still uses it), for the message the
// route ring carries (fib::RouteMsg). A producer thread pushes as fast as the ring takes
// them (spinning while full) while the benchmark thread consumes in batches of up to 256
// and reads each message's first fields, as fib::drain does. Both queues are read in
// place: SpscRing's peek/release, spsc_queue's consume_all (which hands out references
// into its buffer); `copy` variants pop into an array first.
//
//   bench_spsc_ring [--benchmark_min_time=0.5]
#include "control/fib/ring.hpp"

#include <benchmark/benchmark.h>
#include <boost/lockfree/spsc_queue.hpp>

#include <atomic>
#include <thread>

using namespace vleaf;

namespace {

constexpr size_t kBatch = 256;    // what fib::drain peeks at a time
constexpr size_t kPerIter = 4096; // messages consumed per benchmark iteration

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

// Runs `push(msg)` on a producer thread until stopped; the benchmark loop consumes.
template <class Push, class Consume> void run(benchmark::State &state, Push push, Consume consume) {
    std::atomic<bool> stop{false};
    std::thread producer([&] {
        uint32_t k = 0;
        fib::RouteMsg m = message(0);
        while (!stop.load(std::memory_order_relaxed)) {
            m.prefix.addr.bytes[1] = uint8_t(k++);
            while (!push(m) && !stop.load(std::memory_order_relaxed)) {
            }
        }
    });
    uint64_t sum = 0;
    for (auto _ : state) {
        size_t got = 0;
        while (got < kPerIter) got += consume(sum);
    }
    stop = true;
    producer.join();
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(int64_t(state.iterations() * kPerIter));
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
        });
}

void BM_SpscRingCopy(benchmark::State &state) {
    fib::SpscRing<fib::RouteMsg> ring(size_t(state.range(0)));
    std::vector<fib::RouteMsg> out(kBatch);
    run(
        state, [&](const fib::RouteMsg &m) { return ring.push(m); },
        [&](uint64_t &sum) {
            size_t n = ring.pop(out.data(), kBatch);
            for (size_t i = 0; i < n; i++) sum += touch(out[i]);
            return n;
        });
}

void BM_BoostSpsc(benchmark::State &state) {
    boost::lockfree::spsc_queue<fib::RouteMsg> q(size_t(state.range(0)));
    run(
        state, [&](const fib::RouteMsg &m) { return q.push(m); },
        [&](uint64_t &sum) {
            size_t n = 0;
            // consume_all has no limit: stop taking after a batch, as drain does.
            while (n < kBatch && q.consume_one([&](const fib::RouteMsg &m) { sum += touch(m); }))
                n++;
            return n;
        });
}

void BM_BoostSpscCopy(benchmark::State &state) {
    boost::lockfree::spsc_queue<fib::RouteMsg> q(size_t(state.range(0)));
    std::vector<fib::RouteMsg> out(kBatch);
    run(
        state, [&](const fib::RouteMsg &m) { return q.push(m); },
        [&](uint64_t &sum) {
            size_t n = q.pop(out.data(), kBatch);
            for (size_t i = 0; i < n; i++) sum += touch(out[i]);
            return n;
        });
}

// 4096: a drain's worth; 65536: bench_fib_update's and vleafd's route ring.
BENCHMARK(BM_SpscRing)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(BM_BoostSpsc)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(BM_SpscRingCopy)->Arg(4096)->Arg(65536)->UseRealTime();
BENCHMARK(BM_BoostSpscCopy)->Arg(4096)->Arg(65536)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
