// `show bgp ...` on a management socket, shared by vleaf-bgpd and vleafd.
#pragma once

#include "control/api/server.hpp"
#include "control/bgp/speaker.hpp"

#include <functional>

namespace vleaf::bgp {

// Runs a view of the speaker where it may be read: directly in vleaf-bgpd, on the BGP
// thread in vleafd (or throws when there is no speaker).
using ShowView = std::function<nlohmann::json(const Speaker &)>;
using ShowRunner = std::function<nlohmann::json(const ShowView &)>;

// Registers show bgp summary | neighbors [address=A] | routes ipv4|ipv6|evpn [prefix=P]
// [vrf=V] and show evpn vni | mac [vni=N] | imet.
void add_show_commands(api::Server &api, const ShowRunner &run);

// Request arguments: "" / 0 when absent; std::invalid_argument naming the key if mistyped.
std::string str_arg(const nlohmann::json &args, const char *key);
uint32_t uint_arg(const nlohmann::json &args, const char *key);

} // namespace vleaf::bgp
