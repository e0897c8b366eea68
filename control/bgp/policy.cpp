#include "control/bgp/policy.hpp"

#include <algorithm>

namespace vleaf::bgp {

bool prefix_permitted(const Policy &policy, const Prefix &prefix) {
    if (policy.prefix_list.empty()) return true;
    auto it = std::find_if(policy.prefix_list.begin(), policy.prefix_list.end(),
                           [&](const PrefixListEntry &e) { return e.matches(prefix); });
    return it != policy.prefix_list.end() && it->permit;
}

bool policy_permits(const Policy &policy, const Prefix *prefix, const PathAttrs &attrs) {
    if (prefix && !prefix_permitted(policy, *prefix)) return false;
    for (auto c : policy.match_community)
        if (std::find(attrs.communities.begin(), attrs.communities.end(), c) ==
            attrs.communities.end())
            return false;
    return true;
}

void policy_rewrite(const Policy &policy, PathAttrs &attrs) {
    for (auto c : policy.set_community)
        if (std::find(attrs.communities.begin(), attrs.communities.end(), c) ==
            attrs.communities.end())
            attrs.communities.push_back(c);
    if (policy.set_local_pref) attrs.local_pref = policy.set_local_pref;
    if (policy.set_med) attrs.med = policy.set_med;
}

} // namespace vleaf::bgp
