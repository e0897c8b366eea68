// vleafctl: sends one command to vleafd's management socket and prints the answer.
//
//   vleafctl [-s SOCKET] [-j] [-t SECONDS] <words...> [key=value ...]
//
// The words form the command ("show interfaces"), key=value pairs its arguments. Exit
// status: 0 ok, 1 the server answered with an error, 2 no usable answer (cannot connect,
// timeout, broken reply), 64 bad usage.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using nlohmann::json;

namespace {

constexpr int kExitError = 1;
constexpr int kExitTransport = 2;
constexpr int kExitUsage = 64;

const char *kUsage =
    "usage: vleafctl [-s SOCKET] [-j] [-t SECONDS] <command words...> [key=value ...]\n"
    "  -s SOCKET   management socket (default $VLEAF_SOCKET or /run/vleaf/vleafd.sock)\n"
    "  -j          print the result as JSON\n"
    "  -t SECONDS  give up waiting for the answer after this long (default 30)\n"
    "examples: vleafctl show interfaces | vleafctl -j show stats |\n"
    "          vleafctl show routes vrf=default | vleafctl help\n"
    "key=value: integers and true/false are sent as JSON numbers and booleans, the rest\n"
    "as strings.\n";

[[noreturn]] void die(int code, const std::string &msg) {
    std::cerr << "vleafctl: " << msg << "\n";
    std::exit(code);
}

json arg_value(const std::string &v) {
    if (v == "true") return true;
    if (v == "false") return false;
    long long n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (!v.empty() && ec == std::errc() && end == v.data() + v.size()) return n;
    return v;
}

bool all_scalars(const json &v) {
    return std::all_of(v.begin(), v.end(), [](const json &e) { return !e.is_structured(); });
}

// Fits one "key: value" line: a scalar or a list of scalars.
bool fits_line(const json &v) {
    return !v.is_structured() || (v.is_array() && all_scalars(v));
}

// Fits one table cell: also a list of objects holding only scalars (a route's next hops).
bool fits_cell(const json &v) {
    return fits_line(v) || (v.is_array() && std::all_of(v.begin(), v.end(), [](const json &e) {
                                return e.is_object() && all_scalars(e);
                            }));
}

// Empty strings print as "-" so that a blank never looks like a missing column; inside
// "k=v" lists, empty members are left out.
std::string inline_text(const json &v) {
    if (v.is_null() || (v.is_string() && v.get_ref<const std::string &>().empty())) return "-";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object()) {
        std::string out;
        for (const auto &[k, x] : v.items()) {
            if (x.is_null() || (x.is_string() && x.get_ref<const std::string &>().empty()))
                continue;
            out += (out.empty() ? "" : " ") + k + "=" + inline_text(x);
        }
        return out.empty() ? "-" : out;
    }
    if (v.is_array()) {
        const char *sep = all_scalars(v) ? "," : ", ";
        std::string out;
        for (const auto &e : v) out += (out.empty() ? "" : sep) + inline_text(e);
        return out.empty() ? "-" : out;
    }
    if (v.is_number_float()) {
        char buf[32]; // six significant digits: readable, and -j gives the full value
        std::snprintf(buf, sizeof buf, "%g", v.get<double>());
        return buf;
    }
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_table(const json &v) {
    return v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json &e) {
               return e.is_object() &&
                      std::all_of(e.begin(), e.end(), [](const json &x) { return fits_cell(x); });
           });
}

void render(const json &v, const std::string &indent);

// Columns are the union of the rows' keys. JSON objects arrive with sorted keys, so the
// columns that identify a row are moved to the front; a missing cell prints "-".
void render_table(const json &rows, const std::string &indent) {
    static const std::vector<std::string> identity{"name", "id", "vrf", "prefix", "ip", "mac"};
    std::vector<std::string> cols;
    for (const auto &row : rows)
        for (const auto &[k, unused] : row.items())
            if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
    auto rank = [&](const std::string &k) {
        return std::find(identity.begin(), identity.end(), k) - identity.begin();
    };
    std::stable_sort(cols.begin(), cols.end(),
                     [&](const std::string &a, const std::string &b) { return rank(a) < rank(b); });
    std::vector<std::vector<std::string>> cells;
    cells.push_back(cols);
    for (const auto &row : rows) {
        std::vector<std::string> line;
        line.reserve(cols.size());
        for (const auto &c : cols) line.push_back(row.contains(c) ? inline_text(row[c]) : "-");
        cells.push_back(std::move(line));
    }
    std::vector<size_t> width(cols.size(), 0);
    for (const auto &line : cells)
        for (size_t i = 0; i < line.size(); i++) width[i] = std::max(width[i], line[i].size());
    for (const auto &line : cells) {
        std::string out = indent;
        for (size_t i = 0; i < line.size(); i++) {
            out += line[i];
            if (i + 1 < line.size()) out += std::string(width[i] - line[i].size() + 2, ' ');
        }
        std::cout << out << "\n";
    }
}

// A list of nested objects gets one section per element, titled title[i].
void render_section(const std::string &title, const json &v, const std::string &indent) {
    if (v.is_array() && !is_table(v) && !all_scalars(v)) {
        for (size_t i = 0; i < v.size(); i++) {
            if (i) std::cout << "\n";
            std::cout << indent << title << "[" << i << "]:\n";
            render(v[i], indent + "  ");
        }
        return;
    }
    std::cout << indent << title << ":\n";
    render(v, indent + "  ");
}

// Inline values first as aligned "key: value" lines, then each nested value as a section.
void render_object(const json &obj, const std::string &indent) {
    size_t key_width = 0;
    for (const auto &[k, v] : obj.items())
        if (fits_line(v)) key_width = std::max(key_width, k.size());
    for (const auto &[k, v] : obj.items())
        if (fits_line(v))
            std::cout << indent << k << ": " << std::string(key_width - k.size(), ' ')
                      << inline_text(v) << "\n";
    bool first = key_width == 0;
    for (const auto &[k, v] : obj.items()) {
        if (fits_line(v)) continue;
        if (!first) std::cout << "\n";
        first = false;
        render_section(k, v, indent);
    }
}

void render(const json &v, const std::string &indent) {
    if (is_table(v)) {
        render_table(v, indent);
    } else if (v.is_object()) {
        if (v.empty())
            std::cout << indent << "(empty)\n";
        else
            render_object(v, indent);
    } else if (v.is_array()) {
        if (v.empty()) std::cout << indent << "(none)\n";
        if (all_scalars(v))
            for (const auto &e : v) std::cout << indent << inline_text(e) << "\n";
        else
            render_section("", v, indent);
    } else if (!v.is_null()) {
        std::cout << indent << inline_text(v) << "\n";
    }
}

int connect_to(const std::string &path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) die(kExitUsage, "socket path too long: " + path);
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die(kExitTransport, std::string("socket: ") + std::strerror(errno));
    if (connect(fd, reinterpret_cast<const sockaddr *>(&sa), sizeof sa) != 0)
        die(kExitTransport, "cannot connect to " + path + ": " + std::strerror(errno) +
                                " (is vleafd running? choose the socket with -s or VLEAF_SOCKET)");
    return fd;
}

void send_all(int fd, const std::string &data, const std::string &path) {
    for (size_t off = 0; off < data.size();) {
        ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(kExitTransport, "sending to " + path + ": " + std::strerror(errno));
        off += static_cast<size_t>(n);
    }
}

std::string read_line(int fd, const std::string &path, int timeout_ms) {
    std::string in;
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) die(kExitTransport, "no answer from " + path + " within the timeout");
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(kExitTransport, "reading from " + path + ": " + std::strerror(errno));
        if (n == 0) die(kExitTransport, path + " closed the connection without an answer");
        in.append(buf, static_cast<size_t>(n));
        if (auto nl = in.find('\n'); nl != std::string::npos) return in.substr(0, nl);
    }
}

int run(int argc, char **argv) {
    std::string path = "/run/vleaf/vleafd.sock";
    if (const char *env = std::getenv("VLEAF_SOCKET"); env && *env) path = env;
    bool as_json = false;
    int timeout_s = 30;
    int opt;
    // "+": stop at the first word so that command words are never taken for options.
    while ((opt = getopt(argc, argv, "+s:jt:h")) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 't':
            timeout_s = std::atoi(optarg);
            if (timeout_s <= 0) die(kExitUsage, std::string("bad timeout '") + optarg + "'");
            break;
        case 'h':
            std::cout << kUsage;
            return 0;
        default:
            std::cerr << kUsage;
            return kExitUsage;
        }
    }
    std::string command;
    json args = json::object();
    for (int i = optind; i < argc; i++) {
        std::string word = argv[i];
        auto eq = word.find('=');
        if (eq == std::string::npos) {
            if (!args.empty())
                die(kExitUsage, "command word '" + word + "' after key=value arguments");
            command += (command.empty() ? "" : " ") + word;
        } else {
            if (eq == 0) die(kExitUsage, "argument '" + word + "' has no key");
            args[word.substr(0, eq)] = arg_value(word.substr(eq + 1));
        }
    }
    if (command.empty()) {
        std::cerr << kUsage;
        return kExitUsage;
    }

    int fd = connect_to(path);
    send_all(fd, json{{"command", command}, {"args", args}}.dump() + "\n", path);
    std::string line = read_line(fd, path, timeout_s * 1000);
    close(fd);

    json reply;
    try {
        reply = json::parse(line);
    } catch (const json::parse_error &e) {
        die(kExitTransport, "unreadable answer from " + path + ": " + e.what());
    }
    if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean())
        die(kExitTransport, "unexpected answer from " + path + ": " + line);
    if (!reply["ok"].get<bool>()) {
        auto err = reply.find("error");
        die(kExitError, err != reply.end() && err->is_string() ? err->get<std::string>()
                                                               : "request failed: " + line);
    }
    const json &result = reply.contains("result") ? reply["result"] : json();
    if (as_json)
        std::cout << result.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    else
        render(result, "");
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        die(kExitTransport, e.what());
    }
}
