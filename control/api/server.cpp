#include "control/api/server.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace vleaf::api {

using nlohmann::json;

namespace {

std::runtime_error sys_error(const std::string &what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

sockaddr_un unix_address(const std::string &path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path)
        throw std::runtime_error("api socket path '" + path + "' is empty or longer than " +
                                 std::to_string(sizeof sa.sun_path - 1) + " bytes");
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    return sa;
}

// mkdir -p with mode 0755 for the directories it creates; existing ones are left alone.
void make_parent_dirs(const std::string &path) {
    for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
        std::string dir = path.substr(0, pos);
        if (mkdir(dir.c_str(), 0755) == 0) {
            if (chmod(dir.c_str(), 0755) != 0) throw sys_error("chmod " + dir);
        } else if (errno != EEXIST) {
            throw sys_error("cannot create directory " + dir);
        }
    }
}

// A socket file left by a crashed server refuses connections; a live one accepts.
void claim_path(const std::string &path, const sockaddr_un &sa) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        throw sys_error("cannot stat " + path);
    }
    if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error(path + " exists and is not a socket; refusing to replace it");
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) throw sys_error("socket");
    int rc = connect(probe, reinterpret_cast<const sockaddr *>(&sa), sizeof sa);
    int err = errno;
    close(probe);
    if (rc == 0 || err == EAGAIN)
        throw std::runtime_error("another server is already listening on " + path);
    if (err != ECONNREFUSED) {
        errno = err;
        throw sys_error("cannot probe existing socket " + path);
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        throw sys_error("cannot remove stale socket " + path);
}

std::string reply_line(const json &reply) {
    // Handlers may return strings with invalid UTF-8 (names from packets); never throw here.
    return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

} // namespace

struct Server::Client {
    int fd;
    std::string in;
    std::string out;
    bool eof = false;
};

Server::Server(std::string path) : path_(std::move(path)) {
    sockaddr_un sa = unix_address(path_);
    make_parent_dirs(path_);
    claim_path(path_, sa);
    try {
        listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listen_fd_ < 0) throw sys_error("socket");
        if (bind(listen_fd_, reinterpret_cast<const sockaddr *>(&sa), sizeof sa) != 0)
            throw sys_error("cannot bind " + path_);
        struct stat st;
        if (stat(path_.c_str(), &st) != 0) throw sys_error("cannot stat " + path_);
        dev_ = st.st_dev;
        ino_ = st.st_ino;
        // Before listen(): nobody can connect while the mode is still the umask's.
        if (chmod(path_.c_str(), 0660) != 0) throw sys_error("chmod " + path_);
        if (listen(listen_fd_, 16) != 0) throw sys_error("listen " + path_);
        epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) throw sys_error("epoll_create1");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = listen_fd_;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) throw sys_error("epoll_ctl");
    } catch (...) {
        shut_down();
        throw;
    }
    handlers_.emplace("help", [this](const json &) {
        json names = json::array();
        for (const auto &[name, h] : handlers_) names.push_back(name);
        return names;
    });
}

Server::~Server() {
    shut_down();
}

void Server::shut_down() {
    for (auto &[fd, c] : clients_) close(fd);
    clients_.clear();
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (listen_fd_ >= 0) close(listen_fd_);
    epoll_fd_ = listen_fd_ = -1;
    struct stat st;
    if (ino_ && lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        unlink(path_.c_str());
    ino_ = 0;
}

void Server::add(std::string command, Handler handler) {
    if (command.empty() || command.find('\n') != std::string::npos)
        throw std::logic_error("api command name must be one non-empty line");
    if (!handlers_.emplace(command, std::move(handler)).second)
        throw std::logic_error("api command '" + command + "' registered twice");
}

void Server::poll() {
    epoll_event events[32];
    int n = epoll_wait(epoll_fd_, events, 32, 0);
    if (n < 0 && errno != EINTR) throw sys_error("epoll_wait");
    for (int i = 0; i < n; i++) {
        if (events[i].data.fd == listen_fd_)
            accept_all();
        else
            on_client(events[i].data.fd, events[i].events);
    }
}

void Server::accept_all() {
    for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            // EMFILE and friends: leave the connection queued and retry on the next poll.
            return;
        }
        if (clients_.size() >= kMaxClients) {
            std::string line = reply_line({{"ok", false}, {"error", "too many clients"}});
            (void)!send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            continue;
        }
        clients_.emplace(fd, std::make_unique<Client>(Client{fd, {}, {}}));
    }
}

void Server::on_client(int fd, uint32_t events) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client &c = *it->second;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (c.out.empty()) read_from(c);
        if (!clients_.count(fd)) return;
    }
    if (!c.out.empty()) write_to(c);
    if (!clients_.count(fd)) return;
    if (c.out.empty() && c.eof) {
        close_client(fd);
        return;
    }
    update_interest(c);
}

void Server::read_from(Client &c) {
    char buf[16384];
    for (;;) {
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
            c.in.append(buf, static_cast<size_t>(n));
            if (c.in.size() > kMaxRequestBytes && c.in.find('\n') == std::string::npos) {
                c.out += reply_line({{"ok", false},
                                     {"error", "request longer than " +
                                                   std::to_string(kMaxRequestBytes) + " bytes"}});
                c.in.clear();
                c.eof = true; // a client this far out of protocol gets its answer and is dropped
                return;
            }
            continue;
        }
        if (n == 0) {
            c.eof = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_client(c.fd);
        return;
    }
    answer_lines(c);
}

void Server::answer_lines(Client &c) {
    size_t start = 0;
    for (size_t nl; (nl = c.in.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = c.in.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) c.out += handle(line);
    }
    c.in.erase(0, start);
    // A client that half-closes after its last request may omit the final newline.
    if (c.eof && c.in.find_first_not_of(" \t\r") != std::string::npos) {
        c.out += handle(c.in);
        c.in.clear();
    }
}

void Server::write_to(Client &c) {
    while (!c.out.empty()) {
        ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) {
            c.out.erase(0, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        close_client(c.fd); // EPIPE/ECONNRESET: the client went away without reading
        return;
    }
}

// While a reply is pending we wait for the client to drain it before reading more requests,
// so a client that never reads cannot make us buffer without bound.
void Server::update_interest(Client &c) {
    epoll_event ev{};
    ev.events = c.out.empty() ? EPOLLIN : EPOLLOUT;
    ev.data.fd = c.fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) close_client(c.fd);
}

void Server::close_client(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    clients_.erase(fd);
}

std::string Server::handle(const std::string &line) const {
    auto error = [](const std::string &msg) { return reply_line({{"ok", false}, {"error", msg}}); };
    json req;
    try {
        req = json::parse(line);
    } catch (const json::parse_error &e) {
        return error(std::string("request is not valid JSON: ") + e.what());
    }
    if (!req.is_object()) return error("request must be a JSON object");
    auto cmd = req.find("command");
    if (cmd == req.end() || !cmd->is_string()) return error("request needs a \"command\" string");
    json args = json::object();
    if (auto a = req.find("args"); a != req.end() && !a->is_null()) {
        if (!a->is_object()) return error("\"args\" must be a JSON object");
        args = *a;
    }
    std::string name = cmd->get<std::string>();
    auto h = handlers_.find(name);
    // "show vxlan mac 10": a last word after a known command is its argument "arg".
    if (auto sp = name.rfind(' '); h == handlers_.end() && sp != std::string::npos) {
        h = handlers_.find(name.substr(0, sp));
        if (h != handlers_.end()) args["arg"] = name.substr(sp + 1);
    }
    if (h == handlers_.end()) {
        std::string known;
        for (const auto &[name, unused] : handlers_) known += (known.empty() ? "" : ", ") + name;
        return error("unknown command '" + cmd->get<std::string>() + "' (known: " + known + ")");
    }
    try {
        return reply_line({{"ok", true}, {"result", h->second(args)}});
    } catch (const std::exception &e) {
        return error(e.what());
    }
}

} // namespace vleaf::api
