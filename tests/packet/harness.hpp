// Runs real mbufs through the real pipeline: the FIB programmer fills the real tables,
// a Worker processes bursts, and ring-backed ethdevs capture what it transmits.
// Shared by the golden-packet tests and the pipeline benchmark.
#pragma once

#include "control/fib/programmer.hpp"
#include "dataplane/pipeline.hpp"

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_malloc.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vleaf::test {

// EAL for one process: no hugepages (unless `huge`: then unlinked at once, so nothing is
// left behind), no PCI, a file prefix of its own. More lcores than "0" for tests that
// launch real worker lcores; `extra` EAL arguments (--vdev ...) last.
inline void init_eal(const char *prog, unsigned mem_mb = 512, bool huge = false,
                     const char *lcores = "0", const std::vector<std::string> &extra = {}) {
    std::string prefix = "--file-prefix=pkt" + std::to_string(getpid());
    std::vector<std::string> args{prog,
                                  "-l",
                                  lcores,
                                  huge ? "--huge-unlink" : "--no-huge",
                                  "-m",
                                  std::to_string(mem_mb),
                                  "--no-pci",
                                  prefix,
                                  "--log-level=*:error",
                                  "--no-telemetry"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char *> argv;
    argv.reserve(args.size());
    for (auto &a : args) argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
        throw std::runtime_error("rte_eal_init failed");
}

// Whether `mb` MB of hugepages are free (benches use them then, as vleafd does: tables of
// many MB on 4 KB pages measure TLB misses).
inline bool hugepages_free(unsigned mb) {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t free = 0, size_kb = 0, v;
    while (in >> key >> v) {
        if (key == "HugePages_Free:") free = v;
        if (key == "Hugepagesize:") size_kb = v;
        in.ignore(256, '\n');
    }
    return free * size_kb >= uint64_t(mb) * 1024;
}

// Tears EAL down and removes its runtime directory, which rte_eal_cleanup leaves behind.
inline void finish_eal() {
    std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

inline MacAddr mac(uint8_t last) {
    return MacAddr{{0x02, 0, 0, 0, 0, last}};
}

struct Rig {
    static constexpr unsigned kPorts = 3;
    rte_mempool *pool = nullptr;
    rte_rcu_qsbr *rcu = nullptr;
    rte_ring *punt = nullptr;
    rte_ring *rx[kPorts] = {}, *tx[kPorts] = {};
    uint16_t port[kPorts] = {};
    dp::PortInfo *info = nullptr;
    std::unique_ptr<dp::Fib> fib;
    std::vector<std::string> errors;
    std::unique_ptr<fib::Programmer> prog;
    std::unique_ptr<dp::Lb> lb;
    std::unique_ptr<dp::Acl> acl;
    std::atomic<bool> stop{false};
    std::unique_ptr<dp::Worker> w;
    // two_workers(): a second worker and the two handoff rings.
    std::unique_ptr<dp::Worker> w2;
    rte_ring *handoff[2] = {};

    // n_vrfs: VRFs 0..n-1 (each IPv4 table costs 64 MiB of EAL memory).
    explicit Rig(unsigned mbufs = 8192, uint32_t max_routes_v4 = 1 << 16,
                 LbLimits lb_limits = {4096, 300}, unsigned n_vrfs = 1) {
        static int instance = 0;
        std::string tag = std::to_string(instance++);
        pool = rte_pktmbuf_pool_create(("pool" + tag).c_str(), mbufs, 256, 0,
                                       RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        rcu = static_cast<rte_rcu_qsbr *>(rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(1), 64));
        rte_rcu_qsbr_init(rcu, 1);
        punt = rte_ring_create_elem(("punt" + tag).c_str(), sizeof(dp::PuntMsg), 1024, 0,
                                    RING_F_SC_DEQ);
        info = static_cast<dp::PortInfo *>(
            rte_zmalloc(nullptr, sizeof(dp::PortInfo) * RTE_MAX_ETHPORTS, 64));
        for (unsigned p = 0; p < kPorts; p++) {
            auto n = tag + "_" + std::to_string(p);
            rx[p] = rte_ring_create(("rx" + n).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
            tx[p] = rte_ring_create(("tx" + n).c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
            int id = rte_eth_from_rings(("ring" + n).c_str(), &rx[p], 1, &tx[p], 1, 0);
            if (id < 0) throw std::runtime_error("rte_eth_from_rings failed");
            port[p] = static_cast<uint16_t>(id);
            rte_eth_conf conf{};
            if (rte_eth_dev_configure(port[p], 1, 1, &conf) != 0 ||
                rte_eth_rx_queue_setup(port[p], 0, 1024, 0, nullptr, pool) != 0 ||
                rte_eth_tx_queue_setup(port[p], 0, 1024, 0, nullptr) != 0)
                throw std::runtime_error("ring port setup failed");
            if (int rc = rte_eth_dev_start(port[p]); rc != 0)
                throw std::runtime_error("ring port start: " + std::to_string(rc));
            std::memcpy(info[port[p]].mac.addr_bytes, mac(uint8_t(0x10 + p)).bytes.data(), 6);
            info[port[p]].mtu = 1500;
        }
        std::vector<dp::Fib::VrfSpec> vrfs{{0, max_routes_v4, 1 << 16}};
        for (uint32_t v = 1; v < n_vrfs; v++) vrfs.push_back({v, max_routes_v4, 1024});
        fib = std::make_unique<dp::Fib>(vrfs, rcu, 0);
        for (unsigned p = 0; p < kPorts; p++) fib->set_port_mac(port[p], info[port[p]].mac);
        prog = std::make_unique<fib::Programmer>(
            [this](const Update &u) {
                auto e = fib->apply(u);
                if (!e.empty()) errors.push_back(e);
            },
            fib::Programmer::Dataplane{
                [this] {
                    if (auto e = fib->settle(); !e.empty()) errors.push_back(e);
                },
                [this](NhId id) { return fib->released(id); },
                [this](uint32_t vrf, const Prefix &p, bool add) { fib->prefetch(vrf, p, add); }});
        lb = std::make_unique<dp::Lb>(rcu, 1, lb_limits, 0);
        w = std::make_unique<dp::Worker>();
        w->lb = lb.get();
        w->flows = lb->flows(0);
        acl = std::make_unique<dp::Acl>(rcu, 1, 0);
        w->acl = acl.get();
        w->fib = fib.get();
        w->ov = &fib->overlay();
        w->pool = pool;
        w->ports = info;
        w->rcu = rcu;
        w->punt = punt;
        w->stop = &stop;
        // The test thread is reader and writer in turn, never both at once: as an
        // offline reader it lets the writer's grace periods end without waiting on itself.
        rte_rcu_qsbr_thread_register(rcu, 0);
    }

    // Makes w worker 0 of two, w2 worker 1 (the test thread runs them in turn), each with
    // its own flow table of a new two-worker Lb (services are set after this) and a
    // handoff ring of `ring` entries (lb_handoff.hpp).
    void two_workers(unsigned ring, LbLimits limits) {
        lb = std::make_unique<dp::Lb>(rcu, 2, limits, 0);
        w2 = std::make_unique<dp::Worker>(); // fields as set above
        dp::Worker *ws[2] = {w.get(), w2.get()};
        for (unsigned k = 0; k < 2; k++) {
            static int instance = 0;
            auto name = "handoff" + std::to_string(instance++);
            handoff[k] =
                rte_ring_create_elem(name.c_str(), sizeof(dp::HandoffMsg), ring, 0, RING_F_SC_DEQ);
            if (!handoff[k]) throw std::runtime_error("handoff ring: " + name);
            dp::Worker &x = *ws[k];
            x.lb = lb.get();
            x.flows = lb->flows(k);
            x.acl = acl.get();
            x.fib = fib.get();
            x.ov = &fib->overlay();
            x.pool = pool;
            x.ports = info;
            x.rcu = rcu;
            x.punt = punt;
            x.stop = &stop;
            x.rcu_id = k;
            x.handoff = handoff;
            x.n_workers = 2;
        }
    }

    ~Rig() {
        dp::HandoffMsg held[64];
        for (rte_ring *r : handoff) {
            unsigned n;
            while (r && (n = rte_ring_dequeue_burst_elem(r, held, sizeof held[0], 64, nullptr)))
                for (unsigned k = 0; k < n; k++) rte_pktmbuf_free(held[k].m);
            rte_ring_free(r);
        }
        for (unsigned p = 0; p < kPorts; p++) {
            for (rte_mbuf *m : take_tx(p)) rte_pktmbuf_free(m);
            rte_eth_dev_stop(port[p]);
            rte_eth_dev_close(port[p]);
            rte_ring_free(rx[p]);
            rte_ring_free(tx[p]);
        }
        for (auto &pm : take_punts()) rte_pktmbuf_free(pm.m);
        prog.reset();
        w.reset();
        w2.reset();
        lb.reset();
        acl.reset();
        fib.reset();
        rte_ring_free(punt);
        rte_free(info);
        rte_free(rcu);
        rte_mempool_free(pool);
    }

    rte_mbuf *mbuf(const std::vector<uint8_t> &bytes) {
        rte_mbuf *m = rte_pktmbuf_alloc(pool);
        std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size())), bytes.data(),
                    bytes.size());
        return m;
    }

    // One burst through the pipeline as if received on port index `in`.
    void run(unsigned in, const std::vector<std::vector<uint8_t>> &frames) {
        dp::Burst b = burst(in, frames);
        w->process(b);
    }

    // The same through the stages alone (no fast path), flushed: the reference the fast
    // paths are compared with.
    void run_stages(unsigned in, const std::vector<std::vector<uint8_t>> &frames) {
        dp::Burst b = burst(in, frames);
        dp::stages(b, *w, [](dp::Stage, auto &&call) { call(); });
        dp::tx_flush(*w);
    }

    dp::Burst burst(unsigned in, const std::vector<std::vector<uint8_t>> &frames) {
        dp::Burst b;
        b.port = port[in];
        b.n = 0;
        for (auto &f : frames) {
            b.m[b.n] = mbuf(f);
            b.m[b.n]->port = port[in];
            b.n++;
        }
        return b;
    }

    std::vector<rte_mbuf *> take_tx(unsigned p) {
        std::vector<rte_mbuf *> out(rte_ring_count(tx[p]));
        unsigned n = rte_ring_dequeue_burst(tx[p], reinterpret_cast<void **>(out.data()),
                                            static_cast<unsigned>(out.size()), nullptr);
        out.resize(n);
        return out;
    }

    std::vector<dp::PuntMsg> take_punts() {
        std::vector<dp::PuntMsg> out(1024);
        unsigned n =
            rte_ring_dequeue_burst_elem(punt, out.data(), sizeof(dp::PuntMsg), 1024, nullptr);
        out.resize(n);
        return out;
    }

    // Forgets what the worker queued for transmission (benchmarks reuse their mbufs).
    void discard_tx() {
        for (unsigned d = 0; d < w->n_dirty; d++) w->tx[w->dirty[d]].n = 0;
        w->n_dirty = 0;
    }

    uint64_t drops(Drop d) const { return w->stats.drops[static_cast<int>(d)]; }
    uint64_t punts(Punt p) const { return w->stats.punts[static_cast<int>(p)]; }
};

inline std::vector<uint8_t> bytes_of(rte_mbuf *m) {
    auto *d = rte_pktmbuf_mtod(m, const uint8_t *);
    return {d, d + m->data_len};
}

} // namespace vleaf::test
