// The management API's read side: every view is built from the live objects.
#include "control/bgp/show.hpp"
#include "control/common/sched_stat.hpp"
#include "control/vleafd/daemon.hpp"

#include <rte_ethdev.h>

namespace vleaf {

using nlohmann::json;

namespace {

std::string mac_str(const MacAddr &m) {
    return m.str();
}

json prefixes(const std::vector<Prefix> &ps) {
    json a = json::array();
    for (auto &p : ps) a.push_back(p.str());
    return a;
}

json reasons(const uint64_t *counts, const char *const *names, size_t n) {
    json o = json::object();
    for (size_t k = 0; k < n; k++) o[names[k]] = counts[k];
    return o;
}

} // namespace

void Daemon::register_api() {
    api_->add("show interfaces", [this](const json &) { return show_interfaces(); });
    api_->add("show routes", [this](const json &a) { return show_routes(a); });
    api_->add("show neighbors", [this](const json &) { return show_neighbors(); });
    api_->add("show stats", [this](const json &) { return show_stats(); });
    api_->add("show fib summary", [this](const json &) { return show_fib_summary(); });
    bgp::add_show_commands(*api_, [this](const bgp::ShowView &view) -> json {
        if (!bgp_) throw std::runtime_error("BGP is not configured (no bgp: section)");
        return bgp_->call([this, &view] { return view(bgp_->speaker()); });
    });
    api_->add("fib resync", [this](const json &) {
        if (!bgp_) throw std::runtime_error("BGP is not configured (no bgp: section)");
        fib::Event e;
        e.kind = fib::Event::Kind::ResyncRequest;
        if (!bgp_->send_event(e)) throw std::runtime_error("event ring full, try again");
        return json{{"requested", true}};
    });
    api_->add("show vxlan vni", [this](const json &a) { return show_vxlan_vni(a); });
    api_->add("show vxlan vtep", [this](const json &) { return show_vxlan_vtep(); });
    api_->add("show vxlan mac", [this](const json &a) { return show_vxlan_mac(a); });
}

json Daemon::show_interfaces() const {
    json out = json::array();
    auto &ifs = dp_->interfaces();
    for (size_t k = 0; k < ifs.size(); k++) {
        const auto &c = cfg_.interfaces[k];
        rte_eth_stats st{};
        rte_eth_stats_get(ifs[k].port, &st);
        rte_eth_link link{};
        rte_eth_link_get_nowait(ifs[k].port, &link);
        out.push_back({{"name", ifs[k].name},
                       {"port", c.port},
                       {"port_id", ifs[k].port},
                       {"mac", mac_str(ifs[k].mac)},
                       {"vrf", c.vrf},
                       {"mtu", ifs[k].mtu},
                       {"ipv4", prefixes(c.ipv4)},
                       {"ipv6", prefixes(c.ipv6)},
                       {"tap", ifs[k].tap ? ifs[k].tap->name() : ""},
                       {"link_up", link.link_status == RTE_ETH_LINK_UP},
                       {"rx_packets", st.ipackets},
                       {"tx_packets", st.opackets},
                       {"rx_bytes", st.ibytes},
                       {"tx_bytes", st.obytes}});
    }
    return out;
}

json Daemon::show_routes(const json &args) const {
    std::string vrf_filter = args.value("vrf", "");
    json out = json::array();
    for (auto &r : fib_->routes()) {
        std::string vrf_name;
        for (auto &v : cfg_.vrfs)
            if (v.id == r.vrf) vrf_name = v.name;
        if (!vrf_filter.empty() && vrf_filter != vrf_name) continue;
        json hops = json::array();
        for (auto &h : r.hops)
            hops.push_back({{"via", h.via}, {"interface", h.interface}, {"mac", h.mac}});
        out.push_back(
            {{"vrf", vrf_name}, {"prefix", r.prefix.str()}, {"type", r.type}, {"nexthops", hops}});
    }
    return out;
}

json Daemon::show_neighbors() const {
    json out = json::array();
    for (auto &e : resolver_->entries())
        out.push_back({{"interface", if_name(e.ifid)},
                       {"ip", e.ip.str()},
                       {"mac", e.mac ? e.mac->str() : ""},
                       {"state", neigh::state_name(e.state)},
                       {"age_ms", e.age_ms},
                       {"probes", e.probes},
                       {"held", e.held}});
    return out;
}

json Daemon::show_stats() const {
    constexpr size_t n_drops = static_cast<size_t>(Drop::count);
    constexpr size_t n_punts = static_cast<size_t>(Punt::count);
    uint64_t drops[n_drops] = {}, punts[n_punts] = {};
    json workers = json::array();
    for (auto &w : dp_->workers()) {
        const dp::WorkerStats &s = w->stats;
        for (size_t k = 0; k < n_drops; k++) drops[k] += s.drops[k];
        for (size_t k = 0; k < n_punts; k++) punts[k] += s.punts[k];
        double pkts = double(s.pipeline_packets);
        // Per-stage figures exist only in a -Dstage_cycles=true build (rdtsc per stage).
        json stages = nullptr;
        if (dp::kStageCycles) {
            stages = json::object();
            for (int k = 0; k < dp::StageCount; k++)
                stages[dp::stage_names[k]] = pkts ? double(s.stage_cycles[k]) / pkts : 0.0;
        }
        // Time the worker was runnable but another thread held its CPU: forwarding stopped.
        auto sched = sched_stat(w->tid.load(std::memory_order_acquire));
        json cpu_wait = nullptr, slices = nullptr;
        if (sched) {
            cpu_wait = double(sched->wait_ns) / 1e6;
            slices = sched->slices;
        }
        workers.push_back(
            {{"lcore", w->lcore},
             {"cpu_wait_ms", cpu_wait},
             {"times_scheduled_in", slices},
             {"rx_packets", s.rx},
             {"tx_packets", s.tx},
             {"bursts", s.bursts},
             {"packets_per_burst", s.bursts ? pkts / double(s.bursts) : 0.0},
             {"cycles_per_packet",
              s.timed_packets ? double(s.pipeline_cycles) / double(s.timed_packets) : 0.0},
             {"stage_cycles_per_packet", stages},
             {"injected", s.injected},
             {"decapsulated", s.decapsulated},
             {"encapsulated", s.encapsulated},
             {"flooded", s.flooded},
             {"learn_sent", s.learn_sent},
             {"learn_dropped", s.learn_dropped},
             {"drops", reasons(s.drops, drop_names, n_drops)},
             {"punts", reasons(s.punts, punt_names, n_punts)}});
    }
    json ports = json::array();
    for (size_t k = 0; k < dp_->ports().size(); k++) {
        rte_eth_stats st{};
        rte_eth_stats_get(dp_->ports()[k], &st);
        ports.push_back({{"name", dp_->port_names()[k]},
                         {"rx_packets", st.ipackets},
                         {"tx_packets", st.opackets},
                         {"rx_missed", st.imissed},
                         {"rx_nombuf", st.rx_nombuf},
                         {"rx_errors", st.ierrors},
                         {"tx_errors", st.oerrors}});
    }
    const auto &nc = resolver_->counters();
    json neigh = json::object();
#define X(name) neigh[#name] = nc.name;
    VLEAF_NEIGH_COUNTERS(X)
#undef X
    neigh["bad"] = reasons(nc.bad, neigh::bad_names, std::size(neigh::bad_names));
    const auto &fc = dp_->fib().counters();
    const auto &oc = dp_->fib().overlay().counters();
    json vxlan = {{"macs", oc.macs},
                  {"macs_learned", oc.macs_learned},
                  {"mac_moves", oc.mac_moves},
                  {"macs_aged", oc.macs_aged},
                  {"learn_static_conflicts", oc.learn_static_conflicts},
                  {"macs_flushed", oc.macs_flushed},
                  {"vteps", oc.vteps},
                  {"vnis", oc.vnis},
                  {"bridge_domains", oc.bds}};
#define X(name) vxlan[#name] = vx_.name;
    VLEAF_VXLAN_COUNTERS(X)
#undef X
    return {{"ports", ports},
            {"vxlan", vxlan},
            {"workers", workers},
            {"drops", reasons(drops, drop_names, n_drops)},
            {"punts", reasons(punts, punt_names, n_punts)},
            {"exception",
             {{"to_kernel", exc_.to_kernel},
              {"to_kernel_drops", exc_.to_kernel_drops},
              {"from_kernel", exc_.from_kernel},
              {"resolve_unknown", exc_.resolve_unknown},
              {"inject_drops", dp_->exception_drops()},
              {"doorbell_wakes", dp_->doorbell().wakes()}}},
            {"neighbors", neigh},
            {"fib",
             {{"updates_applied", fc.applied},
              {"updates_failed", fc.failed},
              {"routes_v4", fc.routes_v4},
              {"routes_v6", fc.routes_v6},
              {"nexthops", fc.nexthops},
              {"ecmp_groups", fc.ecmp_groups}}}};
}

json Daemon::show_fib_summary() const {
    json vrfs = json::array();
    for (auto &[id, n] : fib_->route_counts()) {
        std::string name;
        for (auto &v : cfg_.vrfs)
            if (v.id == id) name = v.name;
        vrfs.push_back({{"vrf", name}, {"ipv4", n[0]}, {"ipv6", n[1]}});
    }
    const auto &fc = dp_->fib().counters();
    const auto &pc = fib_->counters();
    json out = {{"vrfs", vrfs},
                {"nexthops", fib_->nexthop_count()},
                {"ecmp_groups", fib_->group_count()},
                {"dataplane",
                 {{"routes_v4", fc.routes_v4},
                  {"routes_v6", fc.routes_v6},
                  {"nexthops", fc.nexthops},
                  {"ecmp_groups", fc.ecmp_groups},
                  {"updates_applied", fc.applied},
                  {"updates_failed", fc.failed},
                  {"grace_periods", fc.grace_periods},
                  {"grace_waits", fc.grace_waits},
                  {"grace_wait_us", fc.grace_wait_ns / 1000},
                  {"nexthop_reuse_waits", fc.nh_reuse_waits},
                  {"ipv6_deferred", fc.v6_deferred},
                  {"ipv6_rebuilds", fc.v6_rebuilds},
                  {"ipv6_rebuild_us", fc.v6_rebuild_ns / 1000},
                  {"nexthops_reused", pc.nh_reused},
                  {"batches", pc.batches}}},
                {"bgp", nullptr}};
    if (!bgp_) return out;
    json producer = bgp_->call([this] {
        const auto &c = bgp_->feed().counters();
        return json{{"changes", c.changes},
                    {"pushed", c.pushed},
                    {"ring_full", c.ring_full},
                    {"backlog", bgp_->feed().backlog()},
                    {"backlog_max", c.backlog_max},
                    {"backlogged", c.backlogged},
                    {"resyncs_started", c.resyncs},
                    {"resyncing", bgp_->feed().resyncing()},
                    {"neighbor_events", bgp_->neighbor_events()}};
    });
    out["bgp"] = {{"routes", fib_->bgp_routes()},
                  {"ring_depth", bgp_->routes().read_available()},
                  {"ring_size", cfg_.fib.ring_size},
                  {"messages_applied", drain_.messages},
                  {"batches", drain_.batches},
                  {"resyncs", drain_.resyncs},
                  {"resync_removed", pc.resync_removed},
                  {"unresolved", pc.bgp_unresolved},
                  {"shadowed", pc.bgp_shadowed},
                  {"update_lag_us", double(drain_.last_lag_ns) / 1e3},
                  {"max_update_lag_us", double(drain_.max_lag_ns) / 1e3},
                  {"events_dropped", bgp_->events_dropped()},
                  {"producer", producer}};
    if (!evpn_) return out;
    json evpn_producer = bgp_->call([this] {
        const auto &f = bgp_->evpn_feed();
        const auto &c = f.counters();
        return json{{"pushed", c.pushed},         {"ring_full", c.ring_full},
                    {"backlog", f.backlog()},     {"backlog_max", c.backlog_max},
                    {"backlogged", c.backlogged}, {"resyncs_started", c.resyncs},
                    {"resyncing", f.resyncing()}};
    });
    const auto &ec = evpn_->counters();
    out["evpn"] = {{"remote_macs", ec.remote_macs},
                   {"flood_vteps", ec.flood_vteps},
                   {"routes", ec.routes},
                   {"ring_depth", bgp_->evpn_ring().read_available()},
                   {"messages_applied", ec.applied},
                   {"errors", ec.errors},
                   {"resyncs", ec.resyncs},
                   {"resync_removed", ec.resync_removed},
                   {"producer", evpn_producer}};
    return out;
}

} // namespace vleaf
