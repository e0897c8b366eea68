// The service registry: validation errors name the field, every change reprograms the
// service's Maglev table, announcements follow the usable backends, health thresholds.
#include "control/config/config.hpp"
#include "control/services/health.hpp"
#include "control/services/maglev.hpp"
#include "control/services/services.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace vleaf;
using namespace vleaf::svc;
using nlohmann::json;

namespace {

IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}

ServiceBackend be(const char *ip) {
    ServiceBackend b;
    b.addr = A(ip);
    b.port = 8080;
    return b;
}

std::string error_of(const std::function<void()> &fn) {
    try {
        fn();
    } catch (const std::exception &e) {
        return e.what();
    }
    return "";
}

struct Recorder {
    std::map<uint32_t, std::vector<uint32_t>> tables;
    std::map<uint32_t, Service> programmed;
    // VIP and how it is announced ("" when withdrawn): "10.96.0.10 lp 100 [65000:1]".
    std::vector<std::string> announcements;
    std::vector<uint32_t> removed;

    Callbacks callbacks() {
        Callbacks cb;
        cb.program = [this](uint32_t id, const Service &s, const std::vector<uint32_t> &t) {
            tables[id] = t;
            programmed[id] = s;
        };
        cb.remove = [this](uint32_t id) { removed.push_back(id); };
        cb.announce = [this](const std::string &, const IpAddr &vip, const Announce *how) {
            std::string a = vip.str();
            if (how) {
                a += " lp " + std::to_string(how->local_pref) + " [";
                for (uint32_t c : how->communities)
                    a += std::to_string(c >> 16) + ":" + std::to_string(c & 0xffff) + " ";
                a += "]";
            }
            announcements.push_back(a);
        };
        return cb;
    }
};

json web_args() {
    return {{"name", "web"}, {"vip", "10.96.0.10"}, {"proto", "tcp"}, {"port", 80}};
}

TEST(Services, ArgumentsBecomeAService) {
    json a = web_args();
    a["communities"] = "65000:100,65000:200";
    a["local_pref"] = 200;
    Service s = service_from_args(a);
    EXPECT_EQ(s.vip, A("10.96.0.10"));
    EXPECT_EQ(s.proto, IPPROTO_TCP);
    EXPECT_EQ(s.port, 80);
    EXPECT_EQ(s.mode, LbMode::Dnat);
    EXPECT_EQ(s.announce.communities,
              (std::vector<uint32_t>{65000u << 16 | 100, 65000u << 16 | 200}));
    EXPECT_EQ(s.announce.local_pref, 200u);
}

TEST(Services, ErrorsNameTheBadField) {
    auto bad = [](const json &patch) {
        json a = web_args();
        a.update(patch);
        return error_of([&] { service_from_args(a); });
    };
    EXPECT_EQ(bad({{"vip", "10.0.0.300"}}), "vip: '10.0.0.300' is not an IP address");
    EXPECT_EQ(bad({{"vip", "224.0.0.1"}}), "vip: 224.0.0.1 is not a unicast address");
    EXPECT_EQ(bad({{"proto", "icmp"}}), "proto: 'icmp' is not tcp or udp");
    EXPECT_EQ(bad({{"port", 70000}}), "port: '70000' is not an integer in 1..65535");
    EXPECT_EQ(bad({{"mode", "nat"}}), "mode: 'nat' is not dnat or dsr");
    EXPECT_EQ(bad({{"mode", "dsr"}}).rfind("encap_source: required", 0), 0u);
    EXPECT_EQ(bad({{"table_size", 65536}}), "table_size: 65536 is not a prime in 65537..16777216");
    EXPECT_EQ(bad({{"communities", "65000"}}),
              "communities: '65000' is not AS:value (two 16-bit numbers)");
    EXPECT_EQ(bad({{"colour", "red"}}).rfind("colour: unknown argument", 0), 0u);
    EXPECT_EQ(bad({{"name", "a b"}}),
              "name: 'a b' may only hold letters, digits, '_', '-' and '.'");
}

TEST(Services, BackendsAreValidatedAgainstTheirService) {
    Recorder r;
    Registry reg(r.callbacks());
    reg.add(service_from_args(web_args()));
    const Service &s = *reg.find("web");
    auto add = [&](json a) {
        return error_of([&] { reg.add_backend("web", backend_from_args(a, s)); });
    };
    EXPECT_EQ(add({{"ip", "fd00::1"}, {"port", 8080}}),
              "ip: fd00::1 is not of the VIP's family (no NAT46/64)");
    EXPECT_EQ(add({{"ip", "10.0.0.1"}, {"weight", 70000}}),
              "weight: '70000' is not an integer in 0..65535");
    EXPECT_EQ(add({{"ip", "10.0.0.1"}, {"port", 8080}}), "");
    EXPECT_EQ(add({{"ip", "10.0.0.1"}, {"port", 8080}}),
              "ip: 10.0.0.1:8080 is already backends[0]");
    EXPECT_EQ(error_of([&] { reg.del_backend("web", A("10.0.0.9"), 8080); }),
              "ip: service 'web' has no backend 10.0.0.9:8080");
    EXPECT_EQ(error_of([&] { reg.del_backend("nope", A("10.0.0.1"), 8080); }),
              "service: no service named 'nope'");
}

TEST(Services, ConflictsBetweenServicesAreRefused) {
    Registry reg({});
    reg.add(service_from_args(web_args()));
    json other = web_args();
    other["name"] = "web2";
    EXPECT_EQ(error_of([&] { reg.add(service_from_args(other)); }),
              "vip: 10.96.0.10:80/tcp is already service 'web'");
    reg.add_backend("web", be("10.0.0.1"));
    other["port"] = 81;
    reg.add(service_from_args(other));
    EXPECT_EQ(error_of([&] { reg.add_backend("web2", be("10.0.0.1")); }),
              "ip: 10.0.0.1:8080 already serves DNAT service 'web' (replies could not be told "
              "apart)");
}

TEST(Services, EveryChangeReprogramsTheTableFromUsableBackends) {
    Recorder r;
    Registry reg(r.callbacks());
    reg.add(service_from_args(web_args()));
    uint32_t id = reg.id_of("web");
    EXPECT_EQ(r.tables[id], std::vector<uint32_t>(65537, kNoBackend));
    reg.add_backend("web", be("10.0.0.1"));
    reg.add_backend("web", be("10.0.0.2"));
    auto count = [&](uint32_t b) {
        return std::count(r.tables[id].begin(), r.tables[id].end(), b);
    };
    EXPECT_GT(count(0), 30000);
    EXPECT_GT(count(1), 30000);
    reg.set_up("web", A("10.0.0.1"), 8080, false);
    EXPECT_EQ(count(0), 0);
    EXPECT_EQ(count(1), 65537);
    reg.del("web");
    EXPECT_EQ(r.removed, std::vector<uint32_t>{id});
}

TEST(Services, AnnouncedOnlyWhileABackendIsUsable) {
    Recorder r;
    Registry reg(r.callbacks());
    reg.add(service_from_args(web_args()));
    EXPECT_TRUE(r.announcements.empty());
    reg.add_backend("web", be("10.0.0.1"));
    reg.add_backend("web", be("10.0.0.2"));
    reg.set_up("web", A("10.0.0.1"), 8080, false);
    reg.set_up("web", A("10.0.0.2"), 8080, false);
    reg.set_up("web", A("10.0.0.2"), 8080, true);
    reg.del("web");
    EXPECT_EQ(r.announcements, (std::vector<std::string>{"10.96.0.10 lp 100 []", "10.96.0.10",
                                                         "10.96.0.10 lp 100 []", "10.96.0.10"}));
}

// Services on one VIP (different ports) share its announcement: it stays while any of
// them has a usable backend, with the union of their communities and the highest
// local-pref of those that do.
TEST(Services, SharedVipAnnouncedWhileAnyServiceIsUsable) {
    Recorder r;
    Registry reg(r.callbacks());
    json web = web_args();
    web["communities"] = "65000:1";
    web["local_pref"] = 150;
    json tls = web_args();
    tls["name"] = "tls";
    tls["port"] = 443;
    tls["communities"] = "65000:1,65000:2";
    tls["local_pref"] = 200;
    reg.add(service_from_args(web));
    reg.add(service_from_args(tls));
    reg.add_backend("web", be("10.0.0.1"));
    reg.add_backend("tls", be("10.0.0.2"));
    reg.set_up("tls", A("10.0.0.2"), 8080, false); // web alone: its attributes
    reg.set_up("web", A("10.0.0.1"), 8080, false); // none left: withdrawn
    reg.set_up("tls", A("10.0.0.2"), 8080, true);
    reg.set_up("web", A("10.0.0.1"), 8080, true); // no change: tls already gives more
    reg.del("tls");
    reg.del("web");
    std::string both = "10.96.0.10 lp 200 [65000:1 65000:2 ]",
                web_only = "10.96.0.10 lp 150 [65000:1 ]";
    EXPECT_EQ(r.announcements, (std::vector<std::string>{web_only, both, web_only, "10.96.0.10",
                                                         both, web_only, "10.96.0.10"}));
    EXPECT_FALSE(reg.find("web"));
}

TEST(Services, HealthChecksApplyRiseAndFall) {
    Recorder r;
    Registry reg(r.callbacks());
    json a = web_args();
    a["health_check"] = true;
    a["fall"] = 2;
    a["rise"] = 3;
    reg.add(service_from_args(a));
    reg.add_backend("web", be("10.0.0.1"));
    auto healthy = [&] { return reg.find("web")->backends[0].healthy; };
    reg.health_result("web", A("10.0.0.1"), 8080, false);
    EXPECT_TRUE(healthy());
    reg.health_result("web", A("10.0.0.1"), 8080, false);
    EXPECT_FALSE(healthy());
    EXPECT_FALSE(reg.announced("web"));
    reg.health_result("web", A("10.0.0.1"), 8080, true);
    reg.health_result("web", A("10.0.0.1"), 8080, true);
    EXPECT_FALSE(healthy());
    reg.health_result("web", A("10.0.0.1"), 8080, true);
    EXPECT_TRUE(healthy());
    EXPECT_TRUE(reg.announced("web"));
}

TEST(Services, ConfigurationSectionIsParsedAndChecked) {
    std::string base = "ports: [{name: p0, device: net_null0}]\n";
    auto cfg = config::parse(base + R"(
lb: {flows_per_worker: 1048576, idle_timeout_s: 60}
services:
  - name: web
    vip: 10.96.0.10
    port: 80
    announce: {communities: ["65000:1"], local_pref: 150}
    backends:
      - {ip: 10.0.2.2, port: 8080, weight: 2}
      - {ip: 10.0.2.3, port: 8080, up: false}
)",
                             "t.yaml");
    ASSERT_EQ(cfg.services.size(), 1u);
    EXPECT_EQ(cfg.lb.flows_per_worker, 1u << 20);
    EXPECT_EQ(cfg.services[0].backends[0].weight, 2u);
    EXPECT_FALSE(cfg.services[0].backends[1].up);
    EXPECT_EQ(cfg.services[0].announce.local_pref, 150u);
    auto err = [&](const std::string &text) {
        return error_of([&] { config::parse(base + text, "t.yaml"); });
    };
    EXPECT_EQ(err("services: [{name: a, vip: 10.0.0.1, port: 80, backends: [{ip: 10.0.0.x}]}]"),
              "t.yaml: services[0].backends[0].ip: '10.0.0.x' is not an IP address");
    EXPECT_EQ(err("services: [{name: a, vip: 10.0.0.1, port: 80, mode: dsr}]"),
              "t.yaml: services[0]: encap_source: required in dsr mode (the outer source, one of "
              "our addresses)");
    EXPECT_EQ(err("services: [{name: a, vip: 10.0.0.1, port: 80}, {name: b, vip: 10.0.0.1, port: "
                  "80}]"),
              "t.yaml: services[1]: vip: 10.0.0.1:80/tcp is already service 'a'");
}

} // namespace

namespace {

// A listening TCP socket on 127.0.0.1; returns its port.
int listener(uint16_t &port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, reinterpret_cast<sockaddr *>(&sa), len) != 0 || listen(fd, 16) != 0) return -1;
    getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len);
    port = ntohs(sa.sin_port);
    return fd;
}

TEST(Health, ConnectSucceedsOnAListenerAndFailsOnAClosedPort) {
    uint16_t open_port = 0, closed_port = 0;
    int open_fd = listener(open_port), closed_fd = listener(closed_port);
    ASSERT_GE(open_fd, 0);
    ASSERT_GE(closed_fd, 0);
    close(closed_fd); // nothing listens there any more: connect is refused
    std::map<uint16_t, std::vector<bool>> results;
    HealthChecker hc([&](const std::string &svc, const IpAddr &a, uint16_t port, bool ok) {
        EXPECT_EQ(svc, "web");
        EXPECT_EQ(a, A("127.0.0.1"));
        results[port].push_back(ok);
    });
    Service s;
    s.name = "web";
    s.health.tcp = true;
    s.health.interval_ms = 100;
    s.health.timeout_ms = 50;
    for (uint16_t p : {open_port, closed_port}) {
        ServiceBackend b = be("127.0.0.1");
        b.port = p;
        s.backends.push_back(b);
    }
    std::map<std::string, Service> services{{"web", s}};
    for (uint64_t now = 0; now <= 300; now += 10) {
        hc.poll(services, now);
        usleep(2000); // loopback connects complete within this
    }
    EXPECT_GE(results[open_port].size(), 3u);
    EXPECT_GE(results[closed_port].size(), 3u);
    for (bool ok : results[open_port]) EXPECT_TRUE(ok);
    for (bool ok : results[closed_port]) EXPECT_FALSE(ok);
    services.clear(); // backends gone: probes in flight are dropped
    hc.poll(services, 400);
    EXPECT_EQ(hc.in_flight(), 0u);
    close(open_fd);
}

} // namespace
