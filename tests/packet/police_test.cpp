// Control-plane policing (dataplane/police.hpp) through the real pipeline: punts over
// their class's rate are dropped and counted, the classes do not share a budget, and
// the buckets refill with the worker's clock (faked here: no sleeping).
#include "tests/packet/eal_main.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>
#include <poll.h>

using namespace vleaf;
using namespace vleaf::test;

namespace {

constexpr uint64_t kHz = 1'000'000'000; // the fake clock counts nanoseconds
uint64_t fake_now = 0;
uint64_t fake_clock() {
    return fake_now;
}

const MacAddr kHost1 = mac(0x12);
const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

class Police : public ::testing::Test {
  protected:
    Rig rig;
    MacAddr port_mac = mac(0x10);

    void SetUp() override {
        rig.prog->add_interface(0, "if0", rig.port[0], 0, {*Prefix::parse("10.0.1.1/24", true)});
        ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();
        fake_now = 1'000'000;
        rig.w->clock = fake_clock;
    }
    void police(dp::PuntClass c, uint64_t rate, uint64_t burst) {
        rig.w->police[static_cast<int>(c)].set(rate, burst, kHz);
    }

    Frame arp() const {
        Frame f = ether(kBroadcast, kHost1, 0x0806);
        f.resize(42, 0);
        return f;
    }
    Frame to_us(uint8_t proto, uint16_t sport, uint16_t dport) const {
        return ipv4(
            port_mac, kHost1,
            {.src = "10.0.1.2", .dst = "10.0.1.1", .proto = proto, .sport = sport, .dport = dport});
    }

    // Sends `n` copies of `f` in bursts of 32; returns how many were punted (and frees them).
    size_t send(const Frame &f, unsigned n) {
        size_t punted = 0;
        while (n) {
            unsigned k = n < 32 ? n : 32;
            rig.run(0, std::vector<Frame>(k, f));
            auto p = rig.take_punts();
            punted += p.size();
            for (auto &m : p) rte_pktmbuf_free(m.m);
            n -= k;
        }
        return punted;
    }
};

using dp::PuntClass;

TEST_F(Police, ArpFloodIsCutToTheBurstThenTheRate) {
    police(PuntClass::arp_nd, 1000, 100); // one token per ms, 100 saved up
    EXPECT_EQ(send(arp(), 320), 100u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_arp_nd), 220u);
    EXPECT_EQ(rig.w->stats.punts[int(Punt::arp)], 100u);

    fake_now += 20'500'000; // 20.5 ms: 20 tokens and half of one
    EXPECT_EQ(send(arp(), 64), 20u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_arp_nd), 264u);
    fake_now += 500'000; // the other half
    EXPECT_EQ(send(arp(), 5), 1u);

    fake_now += 10 * kHz; // a quiet time refills only up to the burst
    EXPECT_EQ(send(arp(), 320), 100u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_arp_nd), 268u + 220u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_host), 0u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_bgp), 0u);
}

TEST_F(Police, BgpAndPingGetThroughAnArpFlood) {
    police(PuntClass::arp_nd, 1000, 10);
    police(PuntClass::host, 1000, 10);
    police(PuntClass::bgp, 1000, 40);
    Frame a = arp(), ping = to_us(1, 0x0800, 1), bgp_in = to_us(6, 40000, 179),
          bgp_out = to_us(6, 179, 40000);
    // Mixed bursts: 2 BGP (either direction) and one ping among 29 ARP requests.
    size_t bgp = 0, host = 0, arps = 0;
    for (int round = 0; round < 10; round++) {
        std::vector<Frame> burst(29, a);
        burst.insert(burst.begin() + 3, bgp_in);
        burst.insert(burst.begin() + 17, ping);
        burst.push_back(bgp_out);
        rig.run(0, burst);
        for (auto &p : rig.take_punts()) {
            auto l4 = rte_pktmbuf_mtod_offset(p.m, const uint8_t *, 14 + 20);
            bool is_arp = p.reason == uint8_t(Punt::arp);
            bool is_bgp = !is_arp && (l4[1] == 179 || l4[3] == 179);
            (is_arp ? arps : is_bgp ? bgp : host)++;
            rte_pktmbuf_free(p.m);
        }
    }
    EXPECT_EQ(arps, 10u);
    EXPECT_EQ(bgp, 20u);
    EXPECT_EQ(host, 10u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_arp_nd), 280u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_bgp), 0u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_host), 0u);
    EXPECT_EQ(send(ping, 5), 0u); // the host class has spent its own burst
    EXPECT_EQ(rig.drops(Drop::punt_policed_host), 5u);
}

TEST_F(Police, UnpolicedWorkerPuntsEverything) {
    // A worker nobody configured (the other packet tests) polices nothing.
    EXPECT_EQ(send(arp(), 320), 320u);
    EXPECT_EQ(rig.drops(Drop::punt_policed_arp_nd), 0u);
}

// The control loop sleeps up to its 50 ms tick when idle (control/vleafd/daemon.cpp): a
// punt while it sleeps wakes it through the doorbell, and punts while it is awake, or after
// the first of its sleep, cost the worker no write(2).
TEST_F(Police, PuntsRingTheDoorbellOncePerSleep) {
    dp::Doorbell bell;
    rig.w->bell = &bell;
    auto readable = [&bell] {
        pollfd p{bell.fd(), POLLIN, 0};
        return poll(&p, 1, 0) == 1;
    };
    EXPECT_EQ(send(arp(), 32), 32u); // awake
    EXPECT_EQ(bell.wakes(), 0u);
    EXPECT_FALSE(readable());
    bell.arm();
    EXPECT_EQ(send(to_us(6, 40000, 179), 1), 1u);
    EXPECT_EQ(bell.wakes(), 1u);
    EXPECT_TRUE(readable());
    EXPECT_EQ(send(arp(), 64), 64u); // rung already: the loop is on its way
    EXPECT_EQ(bell.wakes(), 1u);
    bell.clear();
    bell.disarm();
    EXPECT_FALSE(readable());
    bell.arm(); // the next sleep
    EXPECT_EQ(send(to_us(1, 0x0800, 1), 1), 1u);
    EXPECT_EQ(bell.wakes(), 2u);
    EXPECT_TRUE(readable());
    rig.w->bell = nullptr;
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog); });
}
