#include "dataplane/dataplane.hpp"

#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace vleaf::dp {

namespace {

constexpr unsigned kPuntRing = 4096;
constexpr unsigned kInjectRing = 1024;

[[noreturn]] void fail(const std::string &what) {
    throw std::runtime_error(what);
}

VxlanParams vxlan_params(const config::Vxlan &c) {
    VxlanParams p;
    if (c.source4) {
        p.has4 = true;
        p.src4 = c.source4->v4_net();
    }
    if (c.source6) {
        p.has6 = true;
        std::memcpy(p.src6, c.source6->bytes.data(), 16);
    }
    p.port_be = rte_cpu_to_be_16(c.udp_port);
    p.sport_min = c.src_port_min;
    p.sport_span = uint32_t(c.src_port_max - c.src_port_min) + 1;
    p.ttl = c.ttl;
    p.df = c.df;
    return p;
}

std::string dev_name(const std::string &device) {
    return device.substr(0, device.find(','));
}

uint16_t probe(const config::Port &p) {
    uint16_t pid;
    std::string name = dev_name(p.device);
    if (rte_eth_dev_get_port_by_name(name.c_str(), &pid) == 0) return pid; // probed by EAL
    int rc = rte_dev_probe(p.device.c_str());
    if (rc < 0)
        fail("ports." + p.name + ".device: cannot probe '" + p.device + "': " + rte_strerror(-rc));
    if (rte_eth_dev_get_port_by_name(name.c_str(), &pid) != 0)
        fail("ports." + p.name + ".device: '" + p.device + "' is not an Ethernet device");
    return pid;
}

// A busy-polling worker that shares a CPU with another worker or with the main lcore
// (the control thread, the BGP speaker and the table writer) forwards only in the
// scheduler slices it gets: milliseconds without forwarding at a time. Allowed (a small
// test machine has no better), but said once at start.
void warn_shared_cpus(const std::vector<config::Worker> &wcfg) {
    auto shared = [](unsigned a, unsigned b) {
        rte_cpuset_t x = rte_lcore_cpuset(a), y = rte_lcore_cpuset(b);
        CPU_AND(&x, &x, &y);
        return CPU_COUNT(&x) > 0;
    };
    for (size_t k = 0; k < wcfg.size(); k++) {
        if (shared(wcfg[k].lcore, rte_get_main_lcore()))
            spdlog::warn("workers: lcore {} shares a CPU with the main lcore {} (control thread, "
                         "BGP, table writer): forwarding pauses while they run",
                         wcfg[k].lcore, rte_get_main_lcore());
        for (size_t j = 0; j < k; j++)
            if (shared(wcfg[k].lcore, wcfg[j].lcore))
                spdlog::warn("workers: lcores {} and {} share a CPU: each forwards only in its "
                             "scheduler slices",
                             wcfg[j].lcore, wcfg[k].lcore);
    }
}

} // namespace

void Dataplane::setup_port(uint16_t pid, const config::Port &p, uint16_t n_tx, uint16_t mtu) {
    auto where = "ports." + p.name + ": ";
    rte_eth_dev_info info;
    if (rte_eth_dev_info_get(pid, &info) != 0) fail(where + "cannot read device info");
    if (p.rx_queues > info.max_rx_queues)
        fail(where + "rx_queues " + std::to_string(p.rx_queues) + " exceeds the device's " +
             std::to_string(info.max_rx_queues));
    if (n_tx > info.max_tx_queues)
        fail(where + "needs one TX queue per worker (" + std::to_string(n_tx) +
             ") but the device has " + std::to_string(info.max_tx_queues) +
             " (for net_af_packet add qpairs=N to the device string)");
    rte_eth_conf conf{};
    if (p.rx_queues > 1 && p.rss) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    conf.rxmode.offloads = info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    conf.txmode.offloads = info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    port_info_[pid].tx_ip_cksum = conf.txmode.offloads != 0;
    int rc = rte_eth_dev_configure(pid, p.rx_queues, n_tx, &conf);
    if (rc < 0) fail(where + "configure: " + rte_strerror(-rc));
    uint16_t rxd = p.rx_desc, txd = p.tx_desc;
    rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd);
    int socket = rte_eth_dev_socket_id(pid);
    for (uint16_t q = 0; q < p.rx_queues; q++)
        if ((rc = rte_eth_rx_queue_setup(pid, q, rxd, socket, nullptr, pool_)) < 0)
            fail(where + "rx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
    for (uint16_t q = 0; q < n_tx; q++)
        if ((rc = rte_eth_tx_queue_setup(pid, q, txd, socket, nullptr)) < 0)
            fail(where + "tx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
    if ((rc = rte_eth_dev_set_mtu(pid, mtu)) < 0 && rc != -ENOTSUP)
        spdlog::warn("port {}: cannot set MTU {}: {}", p.name, mtu, rte_strerror(-rc));
    if (p.promiscuous) rte_eth_promiscuous_enable(pid);
    if ((rc = rte_eth_dev_start(pid)) < 0) fail(where + "start: " + rte_strerror(-rc));
}

Dataplane::Dataplane(const config::Config &cfg) {
    std::fill(std::begin(port_if_), std::end(port_if_), -1);
    int socket = static_cast<int>(rte_socket_id());

    // Workers: as configured, or every RX queue on the first worker lcore.
    std::vector<config::Worker> wcfg = cfg.workers;
    if (wcfg.empty()) {
        unsigned lc = rte_get_next_lcore(-1, 1, 0);
        if (lc >= RTE_MAX_LCORE) fail("workers: EAL gave no worker lcore (use -l with two lcores)");
        config::Worker w{lc, {}};
        for (auto &p : cfg.ports)
            for (uint16_t q = 0; q < p.rx_queues; q++) w.rx.push_back({p.name, q});
        wcfg.push_back(w);
    }
    for (auto &w : wcfg)
        if (!rte_lcore_is_enabled(w.lcore) || w.lcore == rte_get_main_lcore())
            fail("workers: lcore " + std::to_string(w.lcore) +
                 " is not an EAL worker lcore (check -l/--lcores)");
    warn_shared_cpus(wcfg);
    auto n_workers = static_cast<uint16_t>(wcfg.size());

    uint32_t need = kPuntRing + kInjectRing;
    for (auto &p : cfg.ports) need += p.rx_queues * p.rx_desc + n_workers * p.tx_desc;
    need += n_workers * (cfg.mempool.cache + 4u * cfg.burst);
    if (n_workers > 1) need += n_workers * kHandoffRing;
    if (cfg.mempool.mbufs < need)
        fail("mempool.mbufs: " + std::to_string(cfg.mempool.mbufs) + " is fewer than the " +
             std::to_string(need) + " the descriptor rings, caches and exception rings can hold");
    pool_ = rte_pktmbuf_pool_create("vleaf_mbufs", cfg.mempool.mbufs, cfg.mempool.cache, 0,
                                    cfg.mempool.data_room, socket);
    if (!pool_) fail(std::string("mempool: ") + rte_strerror(rte_errno));

    size_t rcu_sz = rte_rcu_qsbr_get_memsize(n_workers);
    rcu_ = static_cast<rte_rcu_qsbr *>(rte_zmalloc("vleaf_rcu", rcu_sz, RTE_CACHE_LINE_SIZE));
    if (!rcu_ || rte_rcu_qsbr_init(rcu_, n_workers) != 0) fail("rcu: out of DPDK memory");
    punt_ = rte_ring_create_elem("vleaf_punt", sizeof(PuntMsg), kPuntRing, socket, RING_F_SC_DEQ);
    inject_ = rte_ring_create_elem("vleaf_inject", sizeof(PuntMsg), kInjectRing, socket,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!punt_ || !inject_) fail(std::string("exception rings: ") + rte_strerror(rte_errno));
    for (uint16_t k = 0; n_workers > 1 && k < n_workers; k++) {
        std::string name = "vleaf_handoff" + std::to_string(k);
        handoff_.push_back(rte_ring_create_elem(name.c_str(), sizeof(HandoffMsg), kHandoffRing,
                                                socket, RING_F_SC_DEQ));
        if (!handoff_.back()) fail("lb handoff rings: " + std::string(rte_strerror(rte_errno)));
    }

    std::vector<Fib::VrfSpec> vrfs;
    for (auto &v : cfg.vrfs) vrfs.push_back({v.id, v.max_routes_v4, v.max_routes_v6});
    fib_ = std::make_unique<Fib>(vrfs, rcu_, socket);
    if (cfg.vxlan) fib_->overlay().set_params(vxlan_params(*cfg.vxlan));
    lb_ = std::make_unique<Lb>(rcu_, n_workers, cfg.lb, socket);
    acl_ = std::make_unique<Acl>(rcu_, n_workers, socket);

    port_info_ = static_cast<PortInfo *>(
        rte_zmalloc("vleaf_ports", sizeof(PortInfo) * RTE_MAX_ETHPORTS, RTE_CACHE_LINE_SIZE));
    if (!port_info_) fail("ports: out of DPDK memory");
    for (auto &p : cfg.ports) {
        uint16_t pid = probe(p);
        port_names_.push_back(p.name);
        port_ids_.push_back(pid);
        const config::Interface *itf = nullptr;
        for (auto &i : cfg.interfaces)
            if (i.port == p.name) itf = &i;
        uint16_t mtu = itf ? itf->mtu : 1500;
        setup_port(pid, p, n_workers, mtu);
        PortInfo &pi = port_info_[pid];
        if (itf && itf->mac) {
            rte_ether_addr a;
            std::memcpy(a.addr_bytes, itf->mac->bytes.data(), 6);
            if (rte_eth_dev_default_mac_addr_set(pid, &a) != 0)
                fail("interfaces." + itf->name + ".mac: the device refuses to change its MAC");
        }
        rte_eth_macaddr_get(pid, &pi.mac);
        fib_->set_port_mac(pid, pi.mac);
        pi.mtu = mtu;
        if (!itf) continue;
        pi.vrf = cfg.vrf(itf->vrf)->id;
        Interface ifc;
        ifc.name = itf->name;
        ifc.port = pid;
        std::memcpy(ifc.mac.bytes.data(), pi.mac.addr_bytes, 6);
        ifc.vrf = pi.vrf;
        ifc.mtu = mtu;
        if (!itf->tap.empty()) {
            std::vector<Prefix> addrs = itf->ipv4;
            addrs.insert(addrs.end(), itf->ipv6.begin(), itf->ipv6.end());
            ifc.tap = std::make_unique<Tap>(itf->tap, ifc.mac, mtu, addrs);
        }
        port_if_[pid] = static_cast<int>(ifs_.size());
        ifs_.push_back(std::move(ifc));
    }

    for (uint16_t k = 0; k < n_workers; k++) {
        auto w = std::make_unique<Worker>();
        w->lcore = wcfg[k].lcore;
        w->rcu_id = k;
        w->txq = k;
        w->burst = cfg.burst;
        if (wcfg[k].rx.size() > std::size(w->rxq)) fail("workers: too many rx queues on one lcore");
        for (auto &rq : wcfg[k].rx) {
            auto it = std::find(port_names_.begin(), port_names_.end(), rq.port);
            w->rxq[w->n_rxq++] = {port_ids_[it - port_names_.begin()], rq.queue};
        }
        w->fib = fib_.get();
        w->ov = &fib_->overlay();
        w->pool = pool_;
        w->ports = port_info_;
        w->rcu = rcu_;
        w->punt = punt_;
        w->bell = &bell_;
        w->inject = k == 0 ? inject_ : nullptr; // worker 0 has a TX queue on every port
        w->stop = &stop_;
        w->lb = lb_.get();
        w->flows = lb_->flows(k);
        w->handoff = handoff_.empty() ? nullptr : handoff_.data();
        w->n_workers = n_workers;
        w->acl = acl_.get();
        w->resolve_gap = rte_get_tsc_hz() / 1000; // 1 ms
        w->icmp_gap = rte_get_tsc_hz() / 100;     // 100 ICMP errors a second per source
        const config::PuntPolice &pp = cfg.punt_police;
        for (auto [c, rate] :
             {std::pair{PuntClass::arp_nd, pp.arp_nd}, std::pair{PuntClass::host, pp.host},
              std::pair{PuntClass::bgp, pp.bgp}})
            w->police[static_cast<int>(c)].set(rate, punt_burst(rate), rte_get_tsc_hz());
        workers_.push_back(std::move(w));
    }
}

void Dataplane::start() {
    stop_ = false;
    for (auto &w : workers_) {
        int rc = rte_eal_remote_launch(worker_main, w.get(), w->lcore);
        if (rc != 0) fail("lcore " + std::to_string(w->lcore) + ": launch failed");
    }
    running_ = true;
}

void Dataplane::stop() {
    if (running_) {
        stop_ = true;
        for (auto &w : workers_) rte_eal_wait_lcore(w->lcore);
        running_ = false;
    }
    for (uint16_t pid : port_ids_) {
        rte_eth_dev_stop(pid);
        rte_eth_dev_close(pid);
    }
    port_ids_.clear();
}

Dataplane::~Dataplane() {
    stop();
    PuntMsg msg[64];
    unsigned n;
    while ((n = poll_punts(msg, 64)) > 0)
        for (unsigned k = 0; k < n; k++) rte_pktmbuf_free(msg[k].m);
    if (inject_)
        while ((n = rte_ring_dequeue_burst_elem(inject_, msg, sizeof(PuntMsg), 64, nullptr)) > 0)
            for (unsigned k = 0; k < n; k++) rte_pktmbuf_free(msg[k].m);
    HandoffMsg held[64];
    for (rte_ring *r : handoff_) {
        while ((n = rte_ring_dequeue_burst_elem(r, held, sizeof(HandoffMsg), 64, nullptr)) > 0)
            for (unsigned k = 0; k < n; k++) rte_pktmbuf_free(held[k].m);
        rte_ring_free(r);
    }
    ifs_.clear();
    workers_.clear();
    lb_.reset();
    acl_.reset();
    fib_.reset();
    rte_ring_free(punt_);
    rte_ring_free(inject_);
    rte_free(rcu_);
    rte_free(port_info_);
    rte_mempool_free(pool_);
}

unsigned Dataplane::poll_punts(PuntMsg *out, unsigned max) {
    return punt_ ? rte_ring_dequeue_burst_elem(punt_, out, sizeof(PuntMsg), max, nullptr) : 0;
}

bool Dataplane::exceptions_pending() const {
    return (punt_ && rte_ring_count(punt_) != 0) || fib_->overlay().learn_pending();
}

rte_mbuf *Dataplane::copy_in(std::span<const uint8_t> frame) {
    rte_mbuf *m = rte_pktmbuf_alloc(pool_);
    if (!m || frame.size() > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        exception_drops_++;
        return nullptr;
    }
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    return m;
}

bool Dataplane::inject(PuntMsg msg) {
    if (rte_ring_enqueue_elem(inject_, &msg, sizeof msg) == 0) return true;
    rte_pktmbuf_free(msg.m);
    exception_drops_++;
    return false;
}

bool Dataplane::transmit(uint16_t port, std::span<const uint8_t> frame) {
    rte_mbuf *m = copy_in(frame);
    return m && inject(PuntMsg{m, 0, InjectTransmit, 0, port});
}

bool Dataplane::transmit_bd(uint16_t bd, uint16_t port, uint16_t vlan,
                            std::span<const uint8_t> frame) {
    rte_mbuf *m = copy_in(frame);
    return m && inject(PuntMsg{m, bd | uint32_t(vlan) << 16, InjectBridge, 0, port});
}

bool Dataplane::route(uint32_t vrf, std::span<const uint8_t> frame) {
    rte_mbuf *m = copy_in(frame);
    return m && inject(PuntMsg{m, vrf, InjectProcess, 0, 0});
}

bool Dataplane::reprocess(rte_mbuf *m, uint32_t vrf) {
    return inject(PuntMsg{m, vrf, InjectProcess, 0, m->port});
}

} // namespace vleaf::dp
