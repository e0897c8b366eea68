// Management socket: a Unix stream socket where vleafctl (or any client) sends one JSON
// request per line and gets one JSON reply per line.
//
//   request: {"command": "show interfaces", "args": {"vrf": "default"}}   ("args" optional)
//            a word after a known command is passed as "arg": "show vxlan mac 10" runs
//            "show vxlan mac" with {"arg": "10"}
//   reply:   {"ok": true, "result": <handler result>}
//            {"ok": false, "error": "<reason>"}
//
// Runs inside the control thread's epoll loop and never blocks it: fd() is an epoll fd that
// becomes readable whenever the listen socket or any client needs attention; call poll()
// then. Handlers run on the calling thread, so they may read control-plane state freely.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>

namespace vleaf::api {

class Server {
  public:
    using Handler = std::function<nlohmann::json(const nlohmann::json &args)>;

    // Creates the socket's directory (0755) and the socket (0660). Throws std::runtime_error
    // when another live server already listens on `path`; a stale socket file is replaced.
    explicit Server(std::string path);
    ~Server(); // closes every client and removes the socket file if it is still ours
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    // A handler's result becomes "result"; a std::exception it throws becomes "error".
    // Throws std::logic_error if `command` is already registered ("help" is built in).
    void add(std::string command, Handler handler);

    int fd() const { return epoll_fd_; }
    // Accepts, reads, answers and writes whatever is ready now; returns without waiting.
    void poll();

    const std::string &path() const { return path_; }
    size_t clients() const { return clients_.size(); }

    static constexpr size_t kMaxClients = 64;
    static constexpr size_t kMaxRequestBytes = 1 << 20;

  private:
    struct Client;

    void accept_all();
    void on_client(int fd, uint32_t events);
    void read_from(Client &c);
    void answer_lines(Client &c);
    void write_to(Client &c);
    void update_interest(Client &c);
    void close_client(int fd);
    std::string handle(const std::string &line) const;
    void shut_down();

    std::string path_;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    dev_t dev_ = 0; // identity of the socket file we made, so we never unlink another's
    ino_t ino_ = 0;
    std::map<std::string, Handler> handlers_;
    std::map<int, std::unique_ptr<Client>> clients_;
};

} // namespace vleaf::api
