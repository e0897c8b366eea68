// Last stage: every packet leaves the burst exactly once: queued for its egress port,
// freed with its drop reason counted, or handed to the control thread (flood replicas
// were queued by bridge_out already).
#pragma once

#include "dataplane/worker.hpp"

namespace vleaf::dp {

inline void tx_port(Worker &w, uint16_t port) {
    TxBuf &t = w.tx[port];
    uint16_t sent = rte_eth_tx_burst(port, w.txq, t.m, t.n);
    w.stats.tx += sent;
    if (sent < t.n) {
        w.stats.drops[static_cast<int>(Drop::tx_full)] += t.n - sent;
        rte_pktmbuf_free_bulk(t.m + sent, t.n - sent);
    }
    t.n = 0;
}

inline void tx_queue(Worker &w, uint16_t port, rte_mbuf *m) {
    TxBuf &t = w.tx[port];
    if (t.n == 0) w.dirty[w.n_dirty++] = port;
    if (t.n == std::size(t.m)) tx_port(w, port); // flooding can queue more than a burst
    t.m[t.n++] = m;
}

inline void tx_queue_all(Worker &w, uint16_t port, rte_mbuf *const *m, unsigned n) {
    TxBuf &t = w.tx[port];
    if (t.n == 0) w.dirty[w.n_dirty++] = port;
    for (unsigned k = 0; k < n; k++) t.m[t.n + k] = m[k];
    t.n = static_cast<uint16_t>(t.n + n);
}

inline void tx_flush(Worker &w) {
    for (unsigned d = 0; d < w.n_dirty; d++) tx_port(w, w.dirty[d]);
    w.n_dirty = 0;
}

// Whether the punt fits its class's rate (police.hpp); if not it is freed and counted.
inline bool police_punt(Worker &w, const PuntMsg &p, uint64_t now) {
    PuntClass c = punt_class(p.reason, p.m);
    if (c == PuntClass::exempt || w.police[static_cast<int>(c)].take(now)) return true;
    w.stats.drops[static_cast<int>(Drop::punt_policed_arp_nd) + static_cast<int>(c)]++;
    rte_pktmbuf_free(p.m);
    return false;
}

// A packet for the control thread outside the burst's own (a flooded copy).
inline void punt_now(Worker &w, PuntMsg msg) {
    if (!police_punt(w, msg, w.clock())) return;
    if (rte_ring_enqueue_elem(w.punt, &msg, sizeof msg) == 0) {
        w.stats.punts[msg.reason]++;
        w.wake_control();
        return;
    }
    w.stats.drops[static_cast<int>(Drop::punt_ring_full)]++;
    rte_pktmbuf_free(msg.m);
}

// Usually the whole burst leaves by one port: then it is queued with one copy.
inline bool dispatch_uniform(Burst &b, Worker &w) {
    uint16_t port = b.out_port[0];
    unsigned odd = 0;
    for (unsigned i = 0; i < b.n; i++)
        odd |= unsigned(b.action[i] != Action::Tx) | unsigned(b.out_port[i] != port);
    if (odd || b.n == 0) return false;
    tx_queue_all(w, port, b.m, b.n);
    return true;
}

inline void dispatch(Burst &b, Worker &w) {
    if (dispatch_uniform(b, w)) return;
    rte_mbuf *dropped[kMaxBurst];
    PuntMsg punted[kMaxBurst];
    unsigned nd = 0, np = 0;
    uint64_t now = 0;
    bool clocked = false;
    for (unsigned i = 0; i < b.n; i++) {
        switch (b.action[i]) {
        case Action::Tx:
            tx_queue(w, b.out_port[i], b.m[i]);
            break;
        case Action::Drop:
            w.stats.drops[b.reason[i]]++;
            dropped[nd++] = b.m[i];
            break;
        case Action::Punt:
            if (!clocked) {
                now = w.clock();
                clocked = true;
            }
            punted[np] = PuntMsg{b.m[i], b.nh[i], b.reason[i], b.vrf[i], b.port};
            np += police_punt(w, punted[np], now);
            break;
        case Action::Done:
            break;
        }
    }
    if (nd) rte_pktmbuf_free_bulk(dropped, nd);
    if (np) {
        unsigned ok = rte_ring_enqueue_burst_elem(w.punt, punted, sizeof(PuntMsg), np, nullptr);
        for (unsigned k = 0; k < ok; k++) w.stats.punts[punted[k].reason]++;
        if (ok) w.wake_control();
        for (unsigned k = ok; k < np; k++) {
            w.stats.drops[static_cast<int>(Drop::punt_ring_full)]++;
            rte_pktmbuf_free(punted[k].m);
        }
    }
}

} // namespace vleaf::dp
