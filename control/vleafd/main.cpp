// vleafd: EAL arguments, then `--`, then vleafd's own options.
//   vleafd -l 0,1 --no-huge -m 512 --no-pci --file-prefix a -- --config conf/demo.yaml
#include "control/vleafd/daemon.hpp"

#include <rte_eal.h>
#include <rte_errno.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr const char *kUsage =
    "usage: vleafd [EAL options] -- [--config FILE] [--check]\n"
    "  --config FILE  YAML configuration (default: the embedded demo configuration)\n"
    "  --check        validate the configuration and exit\n";

std::string eal_option(const std::vector<std::string> &eal, const std::string &name) {
    for (size_t k = 0; k < eal.size(); k++) {
        if (eal[k] == name && k + 1 < eal.size()) return eal[k + 1];
        if (eal[k].rfind(name + "=", 0) == 0) return eal[k].substr(name.size() + 1);
    }
    return {};
}

bool has(const std::vector<std::string> &eal, const std::string &name) {
    for (auto &a : eal)
        if (a == name || a.rfind(name + "=", 0) == 0) return true;
    return false;
}

// DPDK's own refusal of a second primary is an obscure EAL error; this names the cause.
int lock_prefix(const std::string &prefix) {
    mkdir("/run/vleaf", 0755);
    std::string path = "/run/vleaf/" + prefix + ".lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        std::cerr << "vleafd: cannot open " << path << ": " << std::strerror(errno) << "\n";
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {};
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        std::cerr << "vleafd: another vleafd is already running with --file-prefix " << prefix
                  << (n > 0 ? " (pid " + std::string(pid, strcspn(pid, "\n")) + ")" : "")
                  << "; stop it or choose another --file-prefix\n";
        close(fd);
        return -1;
    }
    std::string me = std::to_string(getpid()) + "\n";
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me.data(), me.size(), 0) < 0) {
        // the lock holds without the pid; it is informational only
    }
    return fd;
}

} // namespace

int main(int argc, char **argv) {
    std::vector<std::string> eal{argv[0]}, own;
    bool after = false;
    for (int k = 1; k < argc; k++) {
        std::string a = argv[k];
        if (!after && a == "--") {
            after = true;
            continue;
        }
        (after ? own : eal).push_back(a);
    }
    std::string config_path;
    bool check = false;
    for (size_t k = 0; k < own.size(); k++) {
        if (own[k] == "--config" && k + 1 < own.size())
            config_path = own[++k];
        else if (own[k] == "--check")
            check = true;
        else if (own[k] == "-h" || own[k] == "--help") {
            std::cout << kUsage;
            return 0;
        } else {
            std::cerr << "vleafd: unknown option '" << own[k] << "'\n" << kUsage;
            return 2;
        }
    }

    vleaf::config::Config cfg;
    try {
        cfg = config_path.empty() ? vleaf::config::embedded_default()
                                  : vleaf::config::load_file(config_path);
    } catch (const std::exception &e) {
        std::cerr << "vleafd: " << e.what() << "\n";
        return 2;
    }
    if (check) {
        std::cout << cfg.source << ": ok\n";
        return 0;
    }
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));

    std::string prefix = eal_option(eal, "--file-prefix");
    int lock = lock_prefix(prefix.empty() ? "rte" : prefix);
    if (lock < 0) return 1;
    // Hugepage files vanish once mapped, so nothing is left behind even after a crash.
    if (!has(eal, "--no-huge") && !has(eal, "--in-memory") && !has(eal, "--huge-unlink"))
        eal.emplace_back("--huge-unlink");

    // Blocked before EAL creates its threads, so that only our signalfd sees them.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

    std::vector<char *> eargv;
    eargv.reserve(eal.size());
    for (auto &a : eal) eargv.push_back(a.data());
    std::string lock_path =
        "/run/vleaf/" + (prefix.empty() ? std::string("rte") : prefix) + ".lock";
    if (rte_eal_init(static_cast<int>(eargv.size()), eargv.data()) < 0) {
        std::cerr << "vleafd: EAL initialisation failed: " << rte_strerror(rte_errno) << "\n";
        unlink(lock_path.c_str());
        close(lock);
        return 1;
    }
    int rc = 0;
    try {
        vleaf::Daemon d(cfg);
        d.run(sfd);
    } catch (const std::exception &e) {
        std::cerr << "vleafd: " << e.what() << "\n";
        rc = 1;
    }
    // EAL leaves its runtime directory (config, fbarrays, telemetry socket) behind; it is
    // ours alone, as the prefix lock proves.
    std::string runtime = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime, ec);
    close(sfd);
    unlink(lock_path.c_str());
    close(lock);
    return rc;
}
