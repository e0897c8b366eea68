// A model of the dataplane's tables for the FIB tests: replays updates the way the table
// writer applies them and fails the test on any reference to something absent.
#pragma once

#include "vleaf/update.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace vleaf::test {

struct Model {
    using Op = Update::Op;
    std::map<NhId, Nexthop> nhs;
    std::map<std::pair<uint32_t, Prefix>, NhId> routes;
    std::map<uint16_t, Update> vteps;
    std::vector<Update> log;

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
            ASSERT_TRUE(nhs.count(u.nh)) << "VTEP before its underlay next hop";
            ASSERT_FALSE(vteps.count(u.ov.vtep)) << "VTEP id reused";
            vteps[u.ov.vtep] = u;
            break;
        case Op::FloodAdd:
        case Op::FloodDel:
            ASSERT_TRUE(vteps.count(u.ov.vtep)) << "flood list names an unknown VTEP";
            break;
        case Op::MacSet:
            if (u.ov.dest.kind == MacDest::Kind::Remote) {
                ASSERT_TRUE(vteps.count(u.ov.dest.vtep)) << "MAC behind an unknown VTEP";
            }
            break;
        default:
            break;
        }
    }
};

} // namespace vleaf::test
