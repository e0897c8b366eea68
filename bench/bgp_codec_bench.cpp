// BGP UPDATE codec throughput in prefixes per second: decoding and encoding packed
// UPDATEs of IPv4 /24s (classic NLRI) and EVPN type-2 MAC/IP routes (MP_REACH_NLRI),
// 4096-byte messages as a peer without extended messages would send them.
#include "control/bgp/message.hpp"

#include <benchmark/benchmark.h>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

constexpr size_t kRoutes = 100000;

CodecContext context() {
    CodecContext c;
    c.families = {true, true, true};
    return c;
}

PathAttrs attrs(bool evpn) {
    PathAttrs a;
    a.origin = Origin::Igp;
    a.as_path = AsPath{{{SegmentType::AsSequence, {65001, 65002}}}};
    a.local_pref = 100;
    a.communities = {0xfde90064};
    if (evpn)
        a.ext_communities = {ExtCommunity::route_target(*RouteTarget::parse("65001:10")),
                             ExtCommunity::encapsulation(kTunnelVxlan)};
    return a;
}

std::vector<PrefixNlri> ipv4_routes() {
    std::vector<PrefixNlri> r;
    r.reserve(kRoutes);
    for (uint32_t i = 0; i < kRoutes; i++)
        r.push_back({0, {IpAddr::v4(0x0a000000 + (i << 8)), 24}});
    return r;
}

std::vector<EvpnNlri> evpn_routes() {
    std::vector<EvpnNlri> r;
    r.reserve(kRoutes);
    auto rd = *RouteDistinguisher::parse("10.0.0.1:10");
    for (uint32_t i = 0; i < kRoutes; i++) {
        MacAddr m{{0x02, 0, uint8_t(i >> 24), uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)}};
        r.push_back({0, EvpnMacIp{rd, {}, 0, m, IpAddr::v4(0x0a000000 + i), 10, 100}});
    }
    return r;
}

std::vector<ByteView> split(const Bytes &buf) {
    std::vector<ByteView> out;
    for (size_t i = 0; i + kHeaderLen <= buf.size();) {
        size_t len = size_t(buf[i + 16]) << 8 | buf[i + 17];
        out.push_back(ByteView(buf).subspan(i, len));
        i += len;
    }
    return out;
}

size_t count_routes(const UpdateResult &r) {
    return r.update.nlri.size() + (r.update.mp_reach ? r.update.mp_reach->evpn.size() : 0);
}

void decode_all(benchmark::State &state, const Bytes &buf) {
    auto ctx = context();
    auto msgs = split(buf);
    UpdateResult r;
    size_t routes = 0;
    for (auto _ : state) {
        for (auto m : msgs) {
            decode_update(m.subspan(kHeaderLen), ctx, r);
            if (r.action != UpdateAction::Ok) state.SkipWithError(r.reason.c_str());
            routes += count_routes(r);
        }
        benchmark::ClobberMemory();
    }
    state.counters["prefixes/s"] = benchmark::Counter(double(routes), benchmark::Counter::kIsRate);
    state.counters["updates"] = double(msgs.size());
}

void BM_DecodeIpv4(benchmark::State &state) {
    Bytes buf;
    encode_announce(RouteFamily::Ipv4Unicast, attrs(false), {*IpAddr::parse("10.255.0.1"), {}},
                    ipv4_routes(), context(), buf);
    decode_all(state, buf);
}

void BM_DecodeEvpnType2(benchmark::State &state) {
    Bytes buf;
    encode_announce(attrs(true), {*IpAddr::parse("10.255.0.1"), {}}, evpn_routes(), context(), buf);
    decode_all(state, buf);
}

void BM_EncodeIpv4(benchmark::State &state) {
    auto routes = ipv4_routes();
    auto a = attrs(false);
    auto ctx = context();
    Bytes buf;
    buf.reserve(kRoutes * 5);
    for (auto _ : state) {
        buf.clear();
        encode_announce(RouteFamily::Ipv4Unicast, a, {*IpAddr::parse("10.255.0.1"), {}}, routes,
                        ctx, buf);
        benchmark::DoNotOptimize(buf.data());
    }
    state.counters["prefixes/s"] =
        benchmark::Counter(double(routes.size() * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_EncodeEvpnType2(benchmark::State &state) {
    auto routes = evpn_routes();
    auto a = attrs(true);
    auto ctx = context();
    Bytes buf;
    buf.reserve(kRoutes * 45);
    for (auto _ : state) {
        buf.clear();
        encode_announce(a, {*IpAddr::parse("10.255.0.1"), {}}, routes, ctx, buf);
        benchmark::DoNotOptimize(buf.data());
    }
    state.counters["prefixes/s"] =
        benchmark::Counter(double(routes.size() * state.iterations()), benchmark::Counter::kIsRate);
}

} // namespace

BENCHMARK(BM_DecodeIpv4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeEvpnType2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeIpv4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeEvpnType2)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
