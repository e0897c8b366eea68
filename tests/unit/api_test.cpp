#include "control/api/server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>
#include <vector>

using nlohmann::json;
using vleaf::api::Server;
namespace fs = std::filesystem;

extern char **environ;

namespace {

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "vleaf-api-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() { fs::remove_all(path_); }
    const fs::path &path() const { return path_; }

  private:
    fs::path path_;
};

int connect_unix(const fs::path &p) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, p.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        close(fd);
        throw std::runtime_error("connect " + p.string() + ": " + std::strerror(errno));
    }
    return fd;
}

// A test client in the same thread as the server: every wait pumps the server.
class Client {
  public:
    Client(Server &s) : s_(s), fd_(connect_unix(s.path())) {}
    ~Client() {
        if (fd_ >= 0) close(fd_);
    }
    void send_raw(const std::string &data) {
        ASSERT_EQ(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL), ssize_t(data.size()));
    }
    // More than a socket buffer holds: writes what fits, lets the server read, repeats.
    void send_pumped(const std::string &data) {
        for (size_t off = 0; off < data.size();) {
            ssize_t n =
                ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += size_t(n);
                continue;
            }
            ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
            pollfd p{s_.fd(), POLLIN, 0};
            ASSERT_EQ(::poll(&p, 1, 5000), 1) << "server never became readable";
            s_.poll();
        }
    }
    // Pumps the server until one whole reply line arrived (or 5 s passed).
    json reply() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return json::parse(line);
            }
            // The server's fd must signal work: the control loop only calls poll() then.
            pollfd pfds[2] = {{s_.fd(), POLLIN, 0}, {fd_, POLLIN, 0}};
            ::poll(pfds, 2, 100);
            if (pfds[0].revents & POLLIN) s_.poll();
            char chunk[65536];
            ssize_t n = recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n > 0) buf_.append(chunk, size_t(n));
            if (n == 0) throw std::runtime_error("server closed the connection");
        }
        throw std::runtime_error("no reply within 5 s");
    }
    json call(const json &req) {
        send_raw(req.dump() + "\n");
        return reply();
    }
    // True when nothing is waiting for this client after pumping the server a little.
    bool nothing_pending() {
        for (int i = 0; i < 5; i++) {
            pollfd p{s_.fd(), POLLIN, 0};
            if (::poll(&p, 1, 10) > 0) s_.poll();
        }
        char c;
        return buf_.empty() && recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
    }

  private:
    Server &s_;
    int fd_;
    std::string buf_;
};

class Api : public ::testing::Test {
  protected:
    void SetUp() override {
        sock = dir.path() / "run" / "vleaf" / "test.sock";
        server = std::make_unique<Server>(sock.string());
        server->add("echo", [](const json &args) { return args; });
        server->add("fail", [](const json &) -> json { throw std::runtime_error("boom"); });
    }
    void pump(int rounds = 5) {
        for (int i = 0; i < rounds; i++) {
            pollfd p{server->fd(), POLLIN, 0};
            if (::poll(&p, 1, 10) > 0) server->poll();
        }
    }
    TempDir dir;
    fs::path sock;
    std::unique_ptr<Server> server;
};

} // namespace

TEST_F(Api, AnswersARequest) {
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "echo"}, {"args", {{"vrf", "default"}, {"n", 3}}}}),
              json({{"ok", true}, {"result", {{"vrf", "default"}, {"n", 3}}}}));
}

TEST_F(Api, ArgsAreOptional) {
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "echo"}}), json({{"ok", true}, {"result", json::object()}}));
}

TEST_F(Api, UnknownCommandListsKnownOnes) {
    Client c(*server);
    json r = c.call({{"command", "show nothing"}});
    EXPECT_EQ(r["ok"], false);
    EXPECT_EQ(r["error"], "unknown command 'show nothing' (known: echo, fail, help)");
}

TEST_F(Api, WordAfterAKnownCommandIsItsArgument) {
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "echo 10"}, {"args", {{"n", 3}}}}),
              json({{"ok", true}, {"result", {{"arg", "10"}, {"n", 3}}}}));
    EXPECT_EQ(c.call({{"command", "echo 10 11"}})["ok"], false);
}

TEST_F(Api, HelpListsCommands) {
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "help"}})["result"], json({"echo", "fail", "help"}));
}

TEST_F(Api, HandlerExceptionBecomesError) {
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "fail"}}), json({{"ok", false}, {"error", "boom"}}));
    // The connection survives a failed request.
    EXPECT_EQ(c.call({{"command", "echo"}})["ok"], true);
}

TEST_F(Api, MalformedRequestsAreErrors) {
    Client c(*server);
    c.send_raw("this is not json\n");
    json r = c.reply();
    EXPECT_EQ(r["ok"], false);
    EXPECT_NE(r["error"].get<std::string>().find("not valid JSON"), std::string::npos) << r;
    EXPECT_EQ(c.call(json::array({1, 2}))["error"], "request must be a JSON object");
    EXPECT_EQ(c.call({{"cmd", "echo"}})["error"], "request needs a \"command\" string");
    EXPECT_EQ(c.call({{"command", "echo"}, {"args", 5}})["error"],
              "\"args\" must be a JSON object");
}

TEST_F(Api, PartialReadsWaitForTheNewline) {
    Client c(*server);
    std::string req = json({{"command", "echo"}, {"args", {{"x", 1}}}}).dump() + "\n";
    c.send_raw(req.substr(0, 5));
    EXPECT_TRUE(c.nothing_pending());
    c.send_raw(req.substr(5, 10));
    EXPECT_TRUE(c.nothing_pending());
    c.send_raw(req.substr(15));
    EXPECT_EQ(c.reply()["result"], json({{"x", 1}}));
}

TEST_F(Api, PipelinedRequestsAnsweredInOrder) {
    Client c(*server);
    c.send_raw(
        "{\"command\":\"echo\",\"args\":{\"i\":1}}\n{\"command\":\"echo\",\"args\":{\"i\":2}}\n");
    EXPECT_EQ(c.reply()["result"]["i"], 1);
    EXPECT_EQ(c.reply()["result"]["i"], 2);
}

TEST_F(Api, TwoClientsInterleaved) {
    Client a(*server), b(*server);
    std::string req_a = json({{"command", "echo"}, {"args", {{"who", "a"}}}}).dump() + "\n";
    a.send_raw(req_a.substr(0, 10));
    EXPECT_EQ(b.call({{"command", "echo"}, {"args", {{"who", "b"}}}})["result"]["who"], "b");
    EXPECT_EQ(server->clients(), 2u);
    a.send_raw(req_a.substr(10));
    EXPECT_EQ(a.reply()["result"]["who"], "a");
}

TEST_F(Api, DisconnectedClientIsForgotten) {
    {
        Client c(*server);
        c.call({{"command", "echo"}});
        EXPECT_EQ(server->clients(), 1u);
    }
    pump();
    EXPECT_EQ(server->clients(), 0u);
}

TEST_F(Api, HalfClosedClientStillGetsItsAnswer) {
    int fd = connect_unix(sock);
    std::string req = R"({"command":"echo","args":{"last":true}})"; // no newline, as `nc -N`
    ASSERT_EQ(send(fd, req.data(), req.size(), 0), ssize_t(req.size()));
    shutdown(fd, SHUT_WR);
    std::string got;
    for (int i = 0; i < 100 && got.find('\n') == std::string::npos; i++) {
        pump(1);
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) got.append(buf, size_t(n));
    }
    close(fd);
    ASSERT_NE(got.find('\n'), std::string::npos);
    EXPECT_EQ(json::parse(got.substr(0, got.find('\n')))["result"]["last"], true);
}

TEST_F(Api, LargeReplyIsWrittenAcrossPolls) {
    std::string big(8 << 20, 'x');
    server->add("big", [&](const json &) { return big; });
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "big"}})["result"].get<std::string>().size(), big.size());
}

TEST_F(Api, ClientsBeyondTheLimitAreTurnedAway) {
    std::vector<std::unique_ptr<Client>> clients;
    for (size_t i = 0; i < Server::kMaxClients; i++) {
        clients.push_back(std::make_unique<Client>(*server));
        pump(1);
    }
    pump();
    EXPECT_EQ(server->clients(), Server::kMaxClients);
    Client extra(*server);
    EXPECT_EQ(extra.reply(), json({{"ok", false}, {"error", "too many clients"}}));
    EXPECT_EQ(clients.back()->call({{"command", "echo"}})["ok"], true);
}

TEST_F(Api, OverlongRequestIsRefusedAndDropped) {
    Client c(*server);
    std::string junk(Server::kMaxRequestBytes + 1, 'x');
    c.send_pumped(junk);
    EXPECT_EQ(c.reply()["error"], "request longer than 1048576 bytes");
    pump();
    EXPECT_EQ(server->clients(), 0u);
}

TEST_F(Api, SocketAndDirectoryModes) {
    struct stat st;
    ASSERT_EQ(lstat(sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    ASSERT_EQ(stat(sock.parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(Api, SocketRemovedOnDestruction) {
    EXPECT_TRUE(fs::exists(sock));
    server.reset();
    EXPECT_FALSE(fs::exists(sock));
}

TEST_F(Api, SecondServerOnSamePathIsRefused) {
    try {
        Server second(sock.string());
        FAIL() << "a second server started on " << sock;
    } catch (const std::runtime_error &e) {
        EXPECT_EQ(std::string(e.what()), "another server is already listening on " + sock.string());
    }
    // The refused server must not have removed the live socket.
    Client c(*server);
    EXPECT_EQ(c.call({{"command", "echo"}})["ok"], true);
}

TEST_F(Api, DuplicateCommandIsAProgrammingError) {
    EXPECT_THROW(server->add("echo", [](const json &) { return json(); }), std::logic_error);
    EXPECT_THROW(server->add("help", [](const json &) { return json(); }), std::logic_error);
}

TEST(ApiStartup, StaleSocketFileIsReplaced) {
    TempDir dir;
    fs::path sock = dir.path() / "stale.sock";
    // What a crashed server leaves: a bound socket file nobody listens on.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa), 0);
    close(fd);
    ASSERT_TRUE(fs::exists(sock));
    Server s(sock.string());
    s.add("echo", [](const json &a) { return a; });
    Client c(s);
    EXPECT_EQ(c.call({{"command", "echo"}})["ok"], true);
}

TEST(ApiStartup, RegularFileIsNotReplaced) {
    TempDir dir;
    fs::path p = dir.path() / "important";
    std::ofstream(p) << "data";
    EXPECT_THROW(Server s(p.string()), std::runtime_error);
    EXPECT_EQ(fs::file_size(p), 4u);
}

// The real vleafctl binary (path from meson: VLEAFCTL) against a server in this process.
class Vleafctl : public Api {
  protected:
    struct Result {
        int status = -1;
        std::string out, err;
    };

    Result run(std::vector<std::string> args, std::vector<std::string> env = {}) {
        const char *bin = std::getenv("VLEAFCTL");
        if (!bin) throw std::runtime_error("VLEAFCTL is not set; run through `meson test`");
        args.insert(args.begin(), bin);
        std::vector<char *> argv;
        argv.reserve(args.size() + 1);
        for (auto &a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        for (char **e = environ; *e; e++)
            if (std::strncmp(*e, "VLEAF_SOCKET=", 13) != 0) env.emplace_back(*e);
        std::vector<char *> envp;
        envp.reserve(env.size() + 1);
        for (auto &e : env) envp.push_back(e.data());
        envp.push_back(nullptr);

        int out[2], err[2];
        if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        posix_spawn_file_actions_addclose(&fa, err[0]);
        pid_t pid;
        int rc = posix_spawn(&pid, bin, &fa, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        close(err[1]);
        if (rc != 0) throw std::runtime_error("cannot run " + std::string(bin));

        Result r;
        bool out_open = true, err_open = true;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
            pollfd p[3] = {{server->fd(), POLLIN, 0}, {out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
            ::poll(p, 3, 100);
            if (p[0].revents & POLLIN) server->poll();
            for (auto [i, fd, open, dst] : {std::tuple{1, out[0], &out_open, &r.out},
                                            std::tuple{2, err[0], &err_open, &r.err}}) {
                if (!*open || !(p[i].revents & (POLLIN | POLLHUP))) continue;
                char buf[4096];
                ssize_t n = read(fd, buf, sizeof buf);
                if (n > 0)
                    dst->append(buf, size_t(n));
                else
                    *open = false;
            }
        }
        close(out[0]);
        close(err[0]);
        if (out_open || err_open) kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return r;
    }

    void SetUp() override {
        Api::SetUp();
        server->add("show interfaces", [](const json &) {
            return json::array(
                {{{"name", "h1"}, {"port", "p0"}, {"ipv4", {"10.0.1.1/24"}}},
                 {{"name", "uplink"}, {"port", "p1"}, {"ipv4", {"10.0.2.1/24", "10.0.3.1/24"}}}});
        });
        server->add("show stats", [](const json &) { return stats(); });
        server->add("show fib", [](const json &) {
            return json::array({{{"prefix", "10.0.0.0/8"},
                                 {"vrf", "default"},
                                 {"nexthops",
                                  {{{"via", "10.0.2.2"}, {"interface", "h2"}},
                                   {{"via", "10.0.1.2"}, {"interface", "h1"}}}}}});
        });
        server->add("show routes", [this](const json &args) {
            last_args = args;
            return json::array();
        });
    }

    static json stats() {
        return {
            {"rx", 10},
            {"tx", 9},
            {"drops", {{"no_route", 1}, {"ttl", 0}}},
            {"ports", {{{"name", "p0"}, {"rx", 5}, {"tap", ""}, {"load", 1.0 / 3}}}},
            {"workers",
             {{{"lcore", 1}, {"drops", {{"ttl", 2}}}}, {{"lcore", 2}, {"drops", {{"ttl", 3}}}}}}};
    }

    std::string socket_arg() const { return sock.string(); }
    json last_args;
};

TEST_F(Vleafctl, RendersArrayOfObjectsAsTable) {
    Result r = run({"-s", socket_arg(), "show", "interfaces"});
    EXPECT_EQ(r.status, 0) << r.err;
    // Identity columns first, the rest in key order.
    EXPECT_EQ(r.out, "name    ipv4                     port\n"
                     "h1      10.0.1.1/24              p0\n"
                     "uplink  10.0.2.1/24,10.0.3.1/24  p1\n");
}

TEST_F(Vleafctl, RendersNestedObjectsInCells) {
    Result r = run({"-s", socket_arg(), "show", "fib"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "vrf      prefix      nexthops\n"
                     "default  10.0.0.0/8  interface=h2 via=10.0.2.2, interface=h1 via=10.0.1.2\n");
}

TEST_F(Vleafctl, RendersObjectAsKeyValuesAndSections) {
    Result r = run({"-s", socket_arg(), "show", "stats"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "rx: 10\n"
                     "tx: 9\n"
                     "\n"
                     "drops:\n"
                     "  no_route: 1\n"
                     "  ttl:      0\n"
                     "\n"
                     "ports:\n"
                     "  name  load      rx  tap\n"
                     "  p0    0.333333  5   -\n"
                     "\n"
                     "workers[0]:\n"
                     "  lcore: 1\n"
                     "\n"
                     "  drops:\n"
                     "    ttl: 2\n"
                     "\n"
                     "workers[1]:\n"
                     "  lcore: 2\n"
                     "\n"
                     "  drops:\n"
                     "    ttl: 3\n");
}

TEST_F(Vleafctl, JsonOutputIsThePrettyResult) {
    Result r = run({"-j", "-s", socket_arg(), "show", "stats"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json::parse(r.out), stats());
    EXPECT_NE(r.out.find("\n  \"drops\": {\n"), std::string::npos) << r.out;
}

TEST_F(Vleafctl, KeyValueArgumentsAreSent) {
    Result r = run({"-s", socket_arg(), "show", "routes", "vrf=default", "limit=5", "all=true"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "(none)\n");
    EXPECT_EQ(last_args, json({{"vrf", "default"}, {"limit", 5}, {"all", true}}));
}

TEST_F(Vleafctl, SocketFromEnvironment) {
    Result r = run({"show", "stats"}, {"VLEAF_SOCKET=" + socket_arg()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("rx: 10"), std::string::npos);
}

TEST_F(Vleafctl, ServerErrorGoesToStderrWithStatusOne) {
    Result r = run({"-s", socket_arg(), "fail"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "vleafctl: boom\n");
    EXPECT_EQ(r.out, "");
    r = run({"-s", socket_arg(), "show", "nothing"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("vleafctl: unknown command 'show nothing'"), std::string::npos) << r.err;
}

TEST_F(Vleafctl, MissingSocketIsStatusTwoNamingIt) {
    std::string missing = (dir.path() / "nobody.sock").string();
    Result r = run({"-s", missing, "show", "stats"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err.rfind("vleafctl: cannot connect to " + missing + ": ", 0), 0u) << r.err;
}

TEST_F(Vleafctl, NoCommandIsUsageError) {
    Result r = run({"-s", socket_arg()});
    EXPECT_EQ(r.status, 64);
    EXPECT_NE(r.err.find("usage: vleafctl"), std::string::npos);
}
