#include "dataplane/worker.hpp"

#include "dataplane/pipeline.hpp"

#include <unistd.h>

namespace vleaf::dp {

void Worker::process(Burst &b) {
    stats.pipeline_packets += b.n;
    bool timed = stats.bursts++ % kTimedBurstEvery == 0;
    uint64_t t0 = timed ? rte_rdtsc() : 0;
    pipeline(b, *this);
    if (timed) {
        stats.pipeline_cycles += rte_rdtsc() - t0;
        stats.timed_packets += b.n;
    }
    tx_flush(*this);
}

// Packets from the control thread: frames the kernel sent through a tap (transmit as
// they are) and held packets whose neighbor got resolved (run through the pipeline).
static void drain_inject(Worker &w, Burst &b) {
    PuntMsg msg[16];
    unsigned n = rte_ring_dequeue_burst_elem(w.inject, msg, sizeof(PuntMsg), 16, nullptr);
    for (unsigned k = 0; k < n; k++) {
        w.stats.injected++;
        if (msg[k].reason == InjectTransmit) {
            tx_queue(w, msg[k].port, msg[k].m);
            continue;
        }
        b.n = 1;
        b.port = msg[k].port;
        b.m[0] = msg[k].m;
        b.entry = msg[k].reason == InjectProcess ? Entry::Routed : Entry::Bridged;
        b.entry_id = static_cast<uint16_t>(msg[k].nh);
        b.entry_vlan = static_cast<uint16_t>(msg[k].nh >> 16);
        w.process(b);
    }
    b.entry = Entry::Port;
    tx_flush(w);
}

int Worker::run() {
    rte_rcu_qsbr_thread_register(rcu, rcu_id);
    rte_rcu_qsbr_thread_online(rcu, rcu_id);
    tid.store(static_cast<int>(gettid()), std::memory_order_release);
    Burst b;
    while (!stop->load(std::memory_order_relaxed)) {
        for (unsigned q = 0; q < n_rxq; q++) {
            b.n = rte_eth_rx_burst(rxq[q].port, rxq[q].queue, b.m, burst);
            if (b.n == 0) continue;
            stats.rx += b.n;
            b.port = rxq[q].port;
            process(b);
        }
        if (inject && rte_ring_count(inject)) drain_inject(*this, b);
        rte_rcu_qsbr_quiescent(rcu, rcu_id);
    }
    rte_rcu_qsbr_thread_offline(rcu, rcu_id);
    rte_rcu_qsbr_thread_unregister(rcu, rcu_id);
    return 0;
}

int worker_main(void *arg) {
    return static_cast<Worker *>(arg)->run();
}

} // namespace vleaf::dp
