// Import and export policy evaluation: a permit/deny decision per prefix and attribute
// rewrites per attribute set (so that an export rewrite is computed once per set).
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/message.hpp"

namespace vleaf::bgp {

// Prefix list (first match decides, no match denies a non-empty list) and community
// match. `prefix` null for EVPN routes: only the community match applies.
bool policy_permits(const Policy &policy, const Prefix *prefix, const PathAttrs &attrs);
// The prefix list alone: the part of a policy that differs between the prefixes of one
// UPDATE.
bool prefix_permitted(const Policy &policy, const Prefix &prefix);
// set_community, set_local_pref, set_med.
void policy_rewrite(const Policy &policy, PathAttrs &attrs);

} // namespace vleaf::bgp
