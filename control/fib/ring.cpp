#include "control/fib/ring.hpp"

#include <algorithm>
#include <time.h>

namespace vleaf::fib {

uint64_t steady_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

size_t drain(RouteRing &ring, Programmer &prog, size_t max, DrainCounters &c) {
    // Released in chunks, so that the producer gets room while the batch goes on.
    constexpr size_t kChunk = 256;
    size_t done = 0;
    uint64_t newest = 0;
    {
        Programmer::Scope batch(prog);
        while (done < max) {
            std::span<const RouteMsg> msgs = ring.peek(std::min(kChunk, max - done));
            if (msgs.empty()) break;
            // The programmer's route slots are cache misses: fetched kAhead messages early.
            constexpr size_t kAhead = 8;
            auto ahead = [&](size_t i) {
                if (i < msgs.size() &&
                    (msgs[i].op == RouteMsg::Op::Set || msgs[i].op == RouteMsg::Op::Del))
                    prog.prefetch(msgs[i].vrf, msgs[i].prefix);
            };
            for (size_t i = 0; i < kAhead; i++) ahead(i);
            for (size_t i = 0; i < msgs.size(); i++) {
                ahead(i + kAhead);
                const RouteMsg &m = msgs[i];
                switch (m.op) {
                case RouteMsg::Op::Set:
                    prog.set_bgp(m.vrf, m.prefix, m.via.data(), m.n_via);
                    break;
                case RouteMsg::Op::Del:
                    prog.del_bgp(m.vrf, m.prefix);
                    break;
                case RouteMsg::Op::ResyncBegin:
                    prog.bgp_resync_begin();
                    break;
                case RouteMsg::Op::ResyncEnd:
                    prog.bgp_resync_end();
                    c.resyncs++;
                    break;
                }
                newest = std::max(newest, m.stamp_ns);
            }
            ring.release(msgs.size());
            done += msgs.size();
        }
    } // the batch leaves for the dataplane here
    if (done) {
        c.messages += done;
        c.batches++;
        uint64_t now = steady_ns();
        c.last_lag_ns = now > newest ? now - newest : 0;
        c.max_lag_ns = std::max(c.max_lag_ns, c.last_lag_ns);
    }
    return done;
}

} // namespace vleaf::fib
