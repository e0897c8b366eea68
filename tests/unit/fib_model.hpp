// A model of the dataplane's tables for the FIB tests: replays updates the way the table
// writer applies them and fails the test on any reference to something absent.
#pragma once

#include "vleaf/update.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

namespace vleaf::test {

struct Model {
    using Op = Update::Op;
    std::map<NhId, Nexthop> nhs;
    std::map<std::pair<uint32_t, Prefix>, NhId> routes;
    std::map<uint16_t, Update> vteps;
    std::set<std::pair<uint16_t, uint16_t>> floods;               // bridge domain, VTEP
    std::map<std::pair<uint16_t, MacAddr>, uint16_t> remote_macs; // -> VTEP
    std::vector<Update> log;

    // Whether a route leads to a tunnel next hop through `vtep`.
    bool routed_through(uint16_t vtep) const {
        for (auto &[k, nh] : routes) {
            auto it = nhs.find(nh);
            if (it != nhs.end() && it->second.kind == NhKind::Tunnel && it->second.vtep == vtep)
                return true;
        }
        return false;
    }

    void apply(const Update &u) {
        log.push_back(u);
        switch (u.op) {
        case Op::NexthopSet:
            for (unsigned k = 0; k < u.nexthop.n_members; k++)
                ASSERT_TRUE(nhs.count(u.nexthop.members[k])) << "member before group";
            if (u.nexthop.kind == NhKind::Tunnel) {
                ASSERT_TRUE(vteps.count(u.nexthop.vtep)) << "tunnel before its VTEP";
            }
            nhs[u.nh] = u.nexthop;
            break;
        case Op::NexthopDel:
            ASSERT_TRUE(nhs.count(u.nh));
            for (auto &[k, v] : routes)
                ASSERT_NE(v, u.nh) << "deleted while " << k.second.str() << " uses it";
            for (auto &[id, v] : vteps)
                ASSERT_NE(v.nh, u.nh) << "deleted while VTEP " << v.ov.addr.str() << " uses it";
            nhs.erase(u.nh);
            break;
        case Op::RouteAdd:
            ASSERT_TRUE(u.nh < kFirstDynamicNh || nhs.count(u.nh)) << "route before its next hop";
            routes[{u.vrf, u.prefix}] = u.nh;
            break;
        case Op::RouteDel:
            ASSERT_EQ(routes.erase({u.vrf, u.prefix}), 1u);
            break;
        case Op::VtepSet:
            ASSERT_TRUE(u.nh < kFirstDynamicNh || nhs.count(u.nh))
                << "VTEP before its underlay next hop";
            if (vteps.count(u.ov.vtep)) {
                ASSERT_EQ(vteps[u.ov.vtep].ov.addr, u.ov.addr) << "VTEP id in use";
            }
            vteps[u.ov.vtep] = u;
            break;
        case Op::VtepDel:
            ASSERT_TRUE(vteps.count(u.ov.vtep));
            ASSERT_FALSE(routed_through(u.ov.vtep)) << "VTEP deleted under a route";
            for (auto &[bd, v] : floods) ASSERT_NE(v, u.ov.vtep) << "VTEP deleted in a flood list";
            for (auto &[k, v] : remote_macs) ASSERT_NE(v, u.ov.vtep) << "VTEP deleted under a MAC";
            vteps.erase(u.ov.vtep);
            break;
        case Op::FloodAdd:
        case Op::FloodDel:
            ASSERT_TRUE(vteps.count(u.ov.vtep)) << "flood list names an unknown VTEP";
            if (u.op == Op::FloodAdd)
                floods.insert({u.ov.bd, u.ov.vtep});
            else
                floods.erase({u.ov.bd, u.ov.vtep});
            break;
        case Op::MacSet:
            remote_macs.erase({u.ov.bd, u.ov.mac});
            if (u.ov.dest.kind == MacDest::Kind::Remote) {
                ASSERT_TRUE(vteps.count(u.ov.dest.vtep)) << "MAC behind an unknown VTEP";
                remote_macs[{u.ov.bd, u.ov.mac}] = u.ov.dest.vtep;
            }
            break;
        case Op::MacDel:
            remote_macs.erase({u.ov.bd, u.ov.mac});
            break;
        default:
            break;
        }
    }
};

} // namespace vleaf::test
