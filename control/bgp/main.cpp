// vleaf-bgpd: the vleaf BGP speaker on its own, without the dataplane. Reads the `bgp:`
// section of a YAML file and serves `show bgp ...` on a management socket (vleafctl -s).
//
//   vleaf-bgpd -c FILE [-s SOCKET] [-l LEVEL] [-r|-R]
//
// SIGHUP (or `vleafctl reload`) re-reads FILE and applies the differences.
#include "control/api/server.hpp"
#include "control/bgp/config.hpp"
#include "control/bgp/show.hpp"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using vleaf::bgp::str_arg;
using vleaf::bgp::uint_arg;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int sig) {
    (sig == SIGHUP ? g_reload : g_stop) = true;
}

vleaf::bgp::BgpConfig load(const std::string &file) {
    YAML::Node root = YAML::LoadFile(file);
    if (!root["bgp"]) throw vleaf::bgp::BgpConfigError("bgp: missing section");
    return vleaf::bgp::parse_config(root["bgp"]);
}

// A bad file or a change that needs a restart leaves the running configuration as is.
std::string reload(vleaf::bgp::Speaker &speaker, const std::string &file) {
    try {
        speaker.reload(load(file));
        return "";
    } catch (const std::exception &e) {
        spdlog::error("vleaf-bgpd: reload of {} refused: {}", file, e.what());
        return e.what();
    }
}

vleaf::MacAddr mac_arg(const nlohmann::json &args) {
    auto m = vleaf::MacAddr::parse(str_arg(args, "mac"));
    if (!m) throw std::invalid_argument("mac: expected a MAC address");
    return *m;
}

std::optional<vleaf::IpAddr> ip_arg(const nlohmann::json &args) {
    auto s = str_arg(args, "ip");
    if (s.empty()) return std::nullopt;
    auto ip = vleaf::IpAddr::parse(s);
    if (!ip) throw std::invalid_argument("ip: '" + s + "' is not an IP address");
    return ip;
}

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
        size_t end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        if (end > start) out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

} // namespace

int main(int argc, char **argv) {
    std::string file, socket_path = "/run/vleaf/vleaf-bgpd.sock", level = "info";
    int opt;
    int restarted = 0; // 1: -r, 2: -R (forwarding preserved)
    while ((opt = getopt(argc, argv, "c:s:l:rRh")) != -1) {
        switch (opt) {
        case 'r':
            restarted = 1;
            break;
        case 'R':
            restarted = 2;
            break;
        case 'c':
            file = optarg;
            break;
        case 's':
            socket_path = optarg;
            break;
        case 'l':
            level = optarg;
            break;
        default:
            std::fprintf(stderr,
                         "usage: vleaf-bgpd -c FILE [-s SOCKET] [-l LEVEL] [-r|-R]\n"
                         "  FILE holds a `bgp:` section (see conf/)\n"
                         "  -r  started after a restart: graceful restart as the restarting\n"
                         "      speaker (R bit, route selection deferred until End-of-RIB)\n"
                         "  -R  the same, and the dataplane kept forwarding (F bits set)\n");
            return opt == 'h' ? 0 : 64;
        }
    }
    if (file.empty()) {
        std::fprintf(stderr, "vleaf-bgpd: -c FILE is required\n");
        return 64;
    }
    spdlog::set_level(spdlog::level::from_str(level));
    vleaf::bgp::BgpConfig cfg;
    try {
        cfg = load(file);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "vleaf-bgpd: %s: %s\n", file.c_str(), e.what());
        return 1;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGHUP, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        vleaf::bgp::Speaker speaker(cfg);
        vleaf::api::Server api(socket_path);
        using nlohmann::json;
        vleaf::bgp::add_show_commands(api, [&](auto &view) { return view(speaker); });
        // What the dataplane will feed through the Speaker API, by hand: local MAC/IPs
        // and service prefixes.
        api.add("evpn mac add", [&](const json &a) {
            auto r = speaker.originate_mac_ip(uint_arg(a, "vni"), mac_arg(a), ip_arg(a),
                                              a.value("sticky", false));
            if (r == vleaf::bgp::MacResult::UnknownVni)
                throw std::invalid_argument("vni: not a configured L2VNI");
            return json{{"result", vleaf::bgp::mac_result_name(r)}};
        });
        api.add("evpn mac del", [&](const json &a) {
            if (!speaker.withdraw_mac_ip(uint_arg(a, "vni"), mac_arg(a), ip_arg(a)))
                throw std::invalid_argument("no such local MAC/IP");
            return json{{"result", "withdrawn"}};
        });
        api.add("clear evpn duplicate", [&](const json &a) {
            if (!speaker.clear_evpn_duplicate(uint_arg(a, "vni"), mac_arg(a)))
                throw std::invalid_argument("no such duplicate MAC");
            return json{{"result", "cleared"}};
        });
        api.add("bgp announce", [&](const json &a) {
            vleaf::bgp::Announce ann;
            auto p = vleaf::Prefix::parse(str_arg(a, "prefix"));
            if (!p) throw std::invalid_argument("prefix: expected a prefix");
            ann.prefix = *p;
            for (auto &c : split(str_arg(a, "communities"))) {
                auto v = vleaf::bgp::parse_community(c);
                if (!v) throw std::invalid_argument("communities: '" + c + "' is not AS:N");
                ann.communities.push_back(*v);
            }
            if (a.contains("local_pref")) ann.local_pref = uint_arg(a, "local_pref");
            speaker.originate_prefix(ann);
            return json{{"prefix", p->str()}};
        });
        api.add("bgp withdraw", [&](const json &a) {
            auto p = vleaf::Prefix::parse(str_arg(a, "prefix"));
            if (!p || !speaker.withdraw_prefix(*p))
                throw std::invalid_argument("prefix: not announced through the API");
            return json{{"prefix", p->str()}};
        });
        // Soft resets: ask a peer for its routes again (in) or send it ours again (out).
        for (const char *dir : {"in", "out"})
            api.add(std::string("clear bgp soft ") + dir, [&speaker, dir](const json &a) {
                auto addr = vleaf::IpAddr::parse(str_arg(a, "address"));
                if (!addr) throw std::invalid_argument("address: expected a neighbor address");
                bool ok = dir[0] == 'i' ? speaker.request_refresh(*addr) : speaker.resend(*addr);
                if (!ok)
                    throw std::invalid_argument(addr->str() +
                                                ": no Established session (with route refresh)");
                return json{{"neighbor", addr->str()}};
            });
        speaker.add_fd(api.fd(), [&] { api.poll(); });
        if (restarted) speaker.set_restarting(restarted == 2);
        speaker.start();
        spdlog::info("vleaf-bgpd: AS {} router id {}, {} configured peers, socket {}", cfg.asn,
                     cfg.router_id.str(), cfg.peers.size(), socket_path);
        api.add("reload", [&](const json &) {
            auto err = reload(speaker, file);
            if (!err.empty()) throw std::invalid_argument(err);
            return json{{"reloaded", file}};
        });
        while (!g_stop) {
            speaker.poll(100);
            if (g_reload.exchange(false)) {
                spdlog::info("vleaf-bgpd: SIGHUP: reloading {}", file);
                reload(speaker, file);
            }
        }
        speaker.shutdown();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "vleaf-bgpd: %s\n", e.what());
        return 1;
    }
    return 0;
}
