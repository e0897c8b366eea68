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
    constexpr size_t kChunk = 64;
    RouteMsg buf[kChunk];
    size_t done = 0;
    uint64_t newest = 0;
    {
        Programmer::Scope batch(prog);
        while (done < max) {
            size_t n = ring.pop(buf, std::min(kChunk, max - done));
            if (n == 0) break;
            for (size_t k = 0; k < n; k++) {
                const RouteMsg &m = buf[k];
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
            done += n;
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
