#include "control/vleafd/daemon.hpp"

#include <rte_ether.h>
#include <rte_ip.h>

#include <spdlog/spdlog.h>

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace vleaf {

uint64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

namespace {
constexpr unsigned kPuntBatch = 64;
constexpr uint64_t kTickMs = 50;
// Rounds with nothing to do (about a millisecond each) after which the loop waits for the
// tick.
constexpr unsigned kQuietRounds = 10;

// Destination address of a punted IP packet, for resolution.
std::optional<IpAddr> destination(rte_mbuf *m) {
    auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(eth + 1);
        return IpAddr::v4(rte_be_to_cpu_32(ip->dst_addr));
    }
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))
        return IpAddr::v6(reinterpret_cast<const rte_ipv6_hdr *>(eth + 1)->dst_addr);
    return std::nullopt;
}

std::span<const uint8_t> frame_of(rte_mbuf *m) {
    // Punted frames come from a single RX descriptor; chained ones are flattened first.
    if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) return {};
    return {rte_pktmbuf_mtod(m, const uint8_t *), m->data_len};
}
} // namespace

Daemon::Daemon(const config::Config &cfg) : cfg_(cfg) {
    dp_ = std::make_unique<dp::Dataplane>(cfg);
    fib_ = std::make_unique<fib::Programmer>(
        [this](const Update &u) {
            std::string err = dp_->apply(u);
            if (!err.empty()) spdlog::error("fib: {}", err); // counted by the FIB
        },
        fib::Programmer::Dataplane{
            [this] { settle_fib(); }, [this](NhId id) { return dp_->fib().released(id); },
            [this](uint32_t vrf, const Prefix &p, bool add) { dp_->fib().prefetch(vrf, p, add); }});
    neigh::Callbacks cb;
    cb.send = [this](uint16_t ifid, std::vector<uint8_t> frame) { send_frame(ifid, frame); };
    cb.changed = [this](uint16_t ifid, const IpAddr &ip, std::optional<MacAddr> mac) {
        spdlog::info("neighbor {} on {}: {}", ip.str(), if_name(ifid), mac ? mac->str() : "gone");
        fib_->neighbor(ifid, ip, mac);
        if (bgp_) {
            fib::Event e;
            e.kind = fib::Event::Kind::Neighbor;
            e.reachable = mac.has_value();
            e.ifid = ifid;
            e.ip = ip;
            if (mac) e.mac = *mac;
            bgp_->send_event(e);
        }
    };
    cb.release = [this](void *held, bool resolved) {
        auto *m = static_cast<rte_mbuf *>(held);
        if (resolved)
            dp_->reprocess(m, m->hash.usr); // the VRF, stored when it was punted
        else
            rte_pktmbuf_free(m);
    };
    resolver_ = std::make_unique<neigh::Resolver>(cfg.neighbors, cb);

    auto &ifs = dp_->interfaces();
    for (size_t k = 0; k < ifs.size(); k++) {
        const config::Interface &c = cfg.interfaces[k];
        std::vector<Prefix> addrs = c.ipv4;
        addrs.insert(addrs.end(), c.ipv6.begin(), c.ipv6.end());
        auto id = static_cast<uint16_t>(k);
        fib_->add_interface(id, ifs[k].name, ifs[k].port, ifs[k].vrf, addrs);
        auto &own = own_addrs_[ifs[k].vrf];
        own.insert(own.end(), addrs.begin(), addrs.end());
        resolver_->add_interface(neigh::NeighIf{id, ifs[k].mac, c.ipv4, c.ipv6});
    }
    program_static(false);
    program_vxlan();
    program_static(true); // remote prefixes, once the underlay toward their VTEPs is known
    // Before the services: their VIPs are announced through it.
    if (cfg.bgp) bgp_ = std::make_unique<fib::BgpThread>(*cfg.bgp, cfg.fib, evpn_vrf_ids());
    setup_evpn();
    program_services();
    setup_offload();
    program_acls();
    api_ = std::make_unique<api::Server>(cfg.api.socket);
    register_api();
    register_services();
    register_acls();
    register_offload();
}

bool Daemon::announce(const bgp::Announce &a) {
    if (!bgp_) return false;
    bgp_->announce(a);
    return true;
}

bool Daemon::withdraw(const Prefix &p) {
    if (!bgp_) return false;
    bgp_->withdraw(p);
    return true;
}

// The table writer's share of the loop: route messages from the BGP thread, a batch at a
// time, with the punts served between batches, for at most a few milliseconds before
// the loop serves the taps (the BGP sessions themselves go through them) and the API.
size_t Daemon::drain_routes(uint64_t now) {
    if (!bgp_) return 0;
    constexpr size_t kBatch = 4096;
    constexpr uint64_t kBudgetMs = 5;
    size_t drained = 0, n;
    while ((n = fib::drain(bgp_->routes(), *fib_, kBatch, drain_)) > 0) {
        drained += n;
        if (n < kBatch) break;
        handle_punts(now);
        if (now_ms() - now >= kBudgetMs) break;
    }
    drain_evpn();
    return drained;
}

void Daemon::settle_fib() {
    if (std::string err = dp_->fib().settle(); !err.empty()) spdlog::error("fib: {}", err);
}

Daemon::~Daemon() {
    api_.reset();
    bgp_.reset(); // its sessions end with a NOTIFICATION
    health_.reset();
    services_.reset();
    acls_.reset();
    offload_.reset();     // its flows go while the ports still exist
    if (dp_) dp_->stop(); // workers first: nothing may reach the resolver's held packets after
    // Removing the interfaces hands back (and frees) the packets still waiting on neighbors.
    if (resolver_ && dp_)
        for (size_t k = 0; k < dp_->interfaces().size(); k++)
            resolver_->remove_interface(static_cast<uint16_t>(k));
    resolver_.reset();
    fib_.reset();
    dp_.reset();
}

void Daemon::program_static(bool tunnels) {
    for (size_t k = 0; k < cfg_.routes.size(); k++) {
        const config::Route &r = cfg_.routes[k];
        if (r.vtep.has_value() != tunnels) continue;
        if (r.vtep) {
            std::string err = fib_->add_tunnel_route(cfg_.vrf(r.vrf)->id, r.prefix, *r.vtep, r.vni,
                                                     *r.router_mac);
            if (!err.empty())
                throw std::runtime_error(cfg_.source + ": routes[" + std::to_string(k) +
                                         "]: " + err);
            continue;
        }
        std::optional<uint16_t> dev;
        if (!r.dev.empty())
            for (size_t i = 0; i < cfg_.interfaces.size(); i++)
                if (cfg_.interfaces[i].name == r.dev) dev = static_cast<uint16_t>(i);
        std::string err = fib_->add_static(cfg_.vrf(r.vrf)->id, r.prefix, r.via, dev, r.blackhole);
        if (!err.empty())
            throw std::runtime_error(cfg_.source + ": routes[" + std::to_string(k) + "]: " + err);
    }
}

void Daemon::to_kernel(size_t ifid, rte_mbuf *m) {
    auto &itf = dp_->interfaces()[ifid];
    auto frame = frame_of(m);
    if (itf.tap && !frame.empty() && itf.tap->write(frame))
        exc_.to_kernel++;
    else
        exc_.to_kernel_drops++;
}

unsigned Daemon::handle_punts(uint64_t now) {
    dp::PuntMsg msg[kPuntBatch];
    unsigned n, served = 0;
    while ((n = dp_->poll_punts(msg, kPuntBatch)) > 0) {
        served += n;
        for (unsigned k = 0; k < n; k++) {
            rte_mbuf *m = msg[k].m;
            int ifid = dp_->interface_of_port(msg[k].port);
            auto reason = static_cast<Punt>(msg[k].reason);
            bool routed_port = reason == Punt::local || reason == Punt::arp || reason == Punt::nd;
            if (reason == Punt::local && for_gateway(msg[k])) {
                rte_pktmbuf_free(m);
                continue;
            }
            if (ifid < 0 && routed_port) {
                rte_pktmbuf_free(m);
                continue;
            }
            switch (reason) {
            case Punt::local:
                to_kernel(ifid, m);
                break;
            case Punt::arp:
            case Punt::nd:
                if (resolver_->on_frame(static_cast<uint16_t>(ifid), frame_of(m), now) ==
                    neigh::Verdict::Kernel)
                    to_kernel(ifid, m);
                break;
            case Punt::bd_arp:
            case Punt::bd_nd:
                handle_bd_punt(msg[k], now);
                break;
            case Punt::too_big:
                handle_too_big(msg[k]);
                break;
            case Punt::resolve: {
                auto dst = destination(m);
                auto target = dst ? fib_->resolve_target(msg[k].nh, *dst) : std::nullopt;
                if (!target) {
                    exc_.resolve_unknown++;
                    break;
                }
                m->hash.usr = msg[k].vrf;
                resolver_->resolve(target->ifid, target->ip, now, m);
                continue; // the resolver owns the packet now
            }
            default:
                break;
            }
            rte_pktmbuf_free(m);
        }
        if (n < kPuntBatch) break;
    }
    return served;
}

void Daemon::handle_tap(size_t ifid) {
    auto &itf = dp_->interfaces()[ifid];
    uint8_t buf[RTE_ETHER_MAX_JUMBO_FRAME_LEN];
    size_t len;
    while ((len = itf.tap->read(buf, sizeof buf)) > 0) {
        exc_.from_kernel++;
        dp_->transmit(itf.port, {buf, len});
    }
}

void Daemon::run(int signal_fd) {
    dp_->start();
    spdlog::info("vleafd: {} ports, {} workers, serving {}", dp_->ports().size(),
                 dp_->workers().size(), cfg_.api.socket);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tick = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    itimerspec its{{0, long(kTickMs) * 1000000}, {0, long(kTickMs) * 1000000}};
    timerfd_settime(tick, 0, &its, nullptr);
    // epoll data: -1 signals, -2 timer, -3 api, -4 route ring, -5 the workers' doorbell,
    // k >= 0 the tap of interface k.
    auto watch = [ep](int fd, int64_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<uint64_t>(tag);
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    };
    watch(signal_fd, -1);
    watch(tick, -2);
    watch(api_->fd(), -3);
    dp::Doorbell &bell = dp_->doorbell();
    watch(bell.fd(), -5);
    if (bgp_) {
        watch(bgp_->wake_fd(), -4);
        bgp_->start();
    }
    auto &ifs = dp_->interfaces();
    for (size_t k = 0; k < ifs.size(); k++)
        if (ifs[k].tap) watch(ifs[k].tap->fd(), static_cast<int64_t>(k));

    bool running = true;
    unsigned quiet = 0; // rounds in a row with nothing to do but the tick
    while (running) {
        epoll_event evs[16];
        // Route batches and grace periods go on after their wake-up, and punts and learned
        // MACs come on rings: while anything comes, a 1 ms timeout bounds their latency.
        // After kQuietRounds idle rounds the loop waits for the tick, so that an idle
        // daemon does not wake a thousand times a second (on a shared machine that cost
        // the worker lcore 15 % of its CPU: bench/README.md, "Rows in random order"), and
        // a worker that punts meanwhile rings the doorbell.
        int timeout = 1;
        if (quiet >= kQuietRounds) {
            bell.arm();
            timeout = dp_->exceptions_pending() ? 0 : int(kTickMs);
        }
        int n = epoll_wait(ep, evs, 16, timeout);
        bell.disarm();
        uint64_t now = now_ms();
        bool busy = false;
        for (int k = 0; k < n; k++) {
            auto tag = static_cast<int64_t>(evs[k].data.u64);
            busy |= tag != -2;
            if (tag == -1) {
                signalfd_siginfo si;
                if (read(signal_fd, &si, sizeof si) == sizeof si)
                    spdlog::info("vleafd: signal {}, stopping", si.ssi_signo);
                running = false;
            } else if (tag == -2) {
                uint64_t expirations;
                if (read(tick, &expirations, sizeof expirations) > 0) {
                    resolver_->tick(now);
                    vxlan_tick(now);
                    health_->poll(services_->services(), now);
                }
            } else if (tag == -3) {
                api_->poll();
            } else if (tag == -4) {
                bgp_->clear_wake();
            } else if (tag == -5) {
                bell.clear();
            } else {
                handle_tap(static_cast<size_t>(tag));
            }
        }
        // Learned MACs first, so that answers to punted ARP/ND find their MACs.
        busy |= handle_learned() > 0;
        busy |= handle_punts(now) > 0;
        busy |= drain_routes(now) > 0;
        settle_fib(); // deferred IPv6 routes whose wait is over, when no batch came
        quiet = busy ? 0 : std::min(quiet + 1, kQuietRounds);
    }
    if (bgp_) bgp_->stop();
    close(tick);
    close(ep);
    offload_->clear();
    dp_->stop();
}

} // namespace vleaf
