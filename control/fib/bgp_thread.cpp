#include "control/fib/bgp_thread.hpp"

#include <spdlog/spdlog.h>

#include <future>
#include <stdexcept>
#include <sys/eventfd.h>
#include <unistd.h>

namespace vleaf::fib {

namespace {
constexpr size_t kEventRing = 4096;
// How long the peers' connections rest at a time while a backlog is past its mark.
constexpr auto kReadPause = std::chrono::milliseconds(5);

void signal_fd(int fd) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
}

void clear_fd(int fd) {
    uint64_t n;
    (void)!read(fd, &n, sizeof n);
}
} // namespace

BgpThread::BgpThread(const bgp::BgpConfig &cfg, const config::FibRings &rings,
                     std::map<std::string, uint32_t> evpn_vrfs)
    : speaker_(cfg), routes_(rings.ring_size), events_(kEventRing),
      pause_mark_(rings.backlog_limit / 4), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      mail_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      feed_(speaker_.rib(), routes_, rings.backlog_limit, [this] { signal_fd(wake_fd_); }),
      evpn_ring_(rings.ring_size), evpn_(speaker_, evpn_ring_, std::move(evpn_vrfs),
                                         rings.backlog_limit, [this] { signal_fd(wake_fd_); }) {
    if (wake_fd_ < 0 || mail_fd_ < 0) throw std::runtime_error("bgp: eventfd failed");
    speaker_.add_fd(mail_fd_, [this] {
        clear_fd(mail_fd_);
        serve_mail();
        serve_events();
    });
    speaker_.listen();
}

BgpThread::~BgpThread() {
    stop();
    close(wake_fd_);
    close(mail_fd_);
}

void BgpThread::start() {
    thread_ = std::thread([this] { run(); });
}

void BgpThread::stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    signal_fd(mail_fd_);
    thread_.join();
}

void BgpThread::run() {
    pthread_setname_np(pthread_self(), "vleaf-bgp");
    speaker_.start_peers();
    feed_.flush();
    evpn_.flush();
    while (!stop_.load(std::memory_order_relaxed)) {
        // Flow control: past the mark, more UPDATEs read now would only grow the backlog
        // toward the resync limit while the writer catches up.
        if (feed_.backlog() > pause_mark_ || evpn_.backlog() > pause_mark_)
            speaker_.pause_reads(kReadPause);
        // While prefixes wait for ring space, come back every millisecond to send them.
        speaker_.poll(feed_.pending() || evpn_.pending() ? 1 : 100);
        serve_events();
        feed_.flush();
        evpn_.flush();
    }
    speaker_.shutdown();
    serve_mail(); // nobody waits forever on a call made while stopping
}

void BgpThread::clear_wake() {
    clear_fd(wake_fd_);
}

bool BgpThread::send_event(const Event &e) {
    if (!events_.push(e)) {
        events_dropped_++;
        return false;
    }
    signal_fd(mail_fd_);
    return true;
}

void BgpThread::serve_events() {
    Event ev[64];
    size_t n;
    while ((n = events_.pop(ev, 64)) > 0)
        for (size_t k = 0; k < n; k++) {
            switch (ev[k].kind) {
            case Event::Kind::Neighbor:
                neighbor_events_++;
                break;
            case Event::Kind::LocalMac:
                evpn_.local(ev[k]);
                break;
            case Event::Kind::ResyncRequest:
                spdlog::info("bgp: FIB resync requested");
                feed_.request_resync();
                evpn_.request_resync();
                break;
            }
        }
}

void BgpThread::serve_mail() {
    std::deque<std::function<void()>> work;
    {
        std::lock_guard<std::mutex> g(mu_);
        work.swap(mail_);
    }
    for (auto &fn : work) fn();
}

void BgpThread::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> g(mu_);
        mail_.push_back(std::move(fn));
    }
    signal_fd(mail_fd_);
}

nlohmann::json BgpThread::call(const std::function<nlohmann::json()> &fn) {
    if (!thread_.joinable() || stop_) return fn(); // no BGP thread running: we are alone
    auto done = std::make_shared<std::promise<nlohmann::json>>();
    auto result = done->get_future();
    post([fn, done] {
        try {
            done->set_value(fn());
        } catch (...) {
            done->set_exception(std::current_exception());
        }
    });
    if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
        throw std::runtime_error("the BGP thread did not answer within 5 s");
    return result.get();
}

void BgpThread::announce(const bgp::Announce &a) {
    post([this, a] { speaker_.originate_prefix(a); });
}

void BgpThread::withdraw(const Prefix &p) {
    post([this, p] { speaker_.withdraw_prefix(p); });
}

} // namespace vleaf::fib
