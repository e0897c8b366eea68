#include "dataplane/acl_tables.hpp"

#include <stdexcept>
#include <string>

namespace vleaf::dp {

Acl::~Acl() {
    delete state_.load();
}

std::vector<uint64_t> Acl::final_hits(const AclSet &s) {
    std::vector<uint64_t> out;
    for (uint32_t r = 0; r < s.size(); r++) out.push_back(s.hits(r));
    out.push_back(s.hits(kAclDefault));
    return out;
}

std::vector<uint64_t> Acl::set(uint32_t id, const AclAttach &where, const AclPolicy &p) {
    size_t limit = where.port ? RTE_MAX_ETHPORTS : kAclVrfs;
    if (where.id >= limit)
        throw std::invalid_argument((where.port ? "port " : "vrf ") + std::to_string(where.id) +
                                    " is out of range");
    auto set = AclSet::build(p, workers_, socket_);
    std::unique_ptr<const AclSet> old;
    if (auto it = live_.find(id); it != live_.end()) old = std::move(it->second.set);
    live_[id] = Live{where, std::move(set)};
    publish();
    return old ? final_hits(*old) : std::vector<uint64_t>{};
}

std::vector<uint64_t> Acl::del(uint32_t id) {
    auto it = live_.find(id);
    if (it == live_.end()) return {};
    std::unique_ptr<const AclSet> old = std::move(it->second.set);
    live_.erase(it);
    publish();
    return final_hits(*old);
}

std::vector<uint64_t> Acl::hits(uint32_t id) const {
    auto it = live_.find(id);
    return it == live_.end() ? std::vector<uint64_t>{} : final_hits(*it->second.set);
}

void Acl::publish() {
    std::unique_ptr<AclState> next;
    if (!live_.empty()) {
        next = std::make_unique<AclState>();
        for (const auto &[id, live] : live_) {
            auto dir = static_cast<unsigned>(live.where.dir);
            (live.where.port ? next->port[dir] : next->vrf[dir])[live.where.id] = live.set.get();
            next->only[dir] = next->any[dir] ? nullptr : live.set.get();
            next->any[dir] = true;
        }
    }
    const AclState *old = state_.exchange(next.release(), std::memory_order_acq_rel);
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    delete old;
}

} // namespace vleaf::dp
