// vleaf-bgpd: the vleaf BGP speaker on its own, without the dataplane. Reads the `bgp:`
// section of a YAML file and serves `show bgp ...` on a management socket (vleafctl -s).
//
//   vleaf-bgpd -c FILE [-s SOCKET] [-l LEVEL]
#include "control/api/server.hpp"
#include "control/bgp/config.hpp"
#include "control/bgp/show.hpp"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <unistd.h>

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
    g_stop = true;
}

} // namespace

int main(int argc, char **argv) {
    std::string file, socket_path = "/run/vleaf/vleaf-bgpd.sock", level = "info";
    int opt;
    while ((opt = getopt(argc, argv, "c:s:l:h")) != -1) {
        switch (opt) {
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
            std::fprintf(stderr, "usage: vleaf-bgpd -c FILE [-s SOCKET] [-l LEVEL]\n"
                                 "  FILE holds a `bgp:` section (see conf/)\n");
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
        YAML::Node root = YAML::LoadFile(file);
        if (!root["bgp"]) throw vleaf::bgp::BgpConfigError("bgp: missing section");
        cfg = vleaf::bgp::parse_config(root["bgp"]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "vleaf-bgpd: %s: %s\n", file.c_str(), e.what());
        return 1;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        vleaf::bgp::Speaker speaker(cfg);
        vleaf::api::Server api(socket_path);
        vleaf::bgp::add_show_commands(api, [&](auto &view) { return view(speaker); });
        speaker.add_fd(api.fd(), [&] { api.poll(); });
        speaker.start();
        spdlog::info("vleaf-bgpd: AS {} router id {}, {} configured peers, socket {}", cfg.asn,
                     cfg.router_id.str(), cfg.peers.size(), socket_path);
        speaker.run(g_stop);
        speaker.shutdown();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "vleaf-bgpd: %s\n", e.what());
        return 1;
    }
    return 0;
}
