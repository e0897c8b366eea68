#include "control/fib/route_table.hpp"

namespace vleaf::fib {

namespace {
constexpr size_t kInitialSlots = 64;
} // namespace

RouteTable::RouteTable() : slots_(kInitialSlots), mask_(kInitialSlots - 1) {}

size_t RouteTable::probe(const RouteKey &k, uint32_t h) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
        const RouteSlot &s = slots_[i];
        if (!s.used || (s.hash == h && s.key == k)) return i;
    }
}

RouteSlot *RouteTable::find(const RouteKey &k) {
    RouteSlot &s = slots_[probe(k, hash(k))];
    return s.used ? &s : nullptr;
}

const RouteSlot *RouteTable::find(const RouteKey &k) const {
    const RouteSlot &s = slots_[probe(k, hash(k))];
    return s.used ? &s : nullptr;
}

RouteSlot &RouteTable::slot(const RouteKey &k) {
    uint32_t h = hash(k);
    size_t i = probe(k, h);
    if (slots_[i].used) return slots_[i];
    // At most 3/4 full: linear probing's chains stay short.
    if ((used_ + 1) * 4 > slots_.size() * 3) {
        grow();
        i = probe(k, h);
    }
    used_++;
    RouteSlot &s = slots_[i];
    s = RouteSlot{};
    s.key = k;
    s.hash = h;
    s.used = true;
    return s;
}

void RouteTable::erase(const RouteKey &k) {
    size_t i = probe(k, hash(k));
    if (!slots_[i].used) return;
    used_--;
    // Backward shift: move up every later slot of the chain whose home is not between
    // the hole and itself, so lookups never need tombstones.
    for (size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
        size_t home = slots_[j].hash & mask_;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        slots_[i] = slots_[j];
        i = j;
    }
    slots_[i].used = false;
}

void RouteTable::grow() {
    Slots old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const RouteSlot &s : old)
        if (s.used) slots_[probe(s.key, s.hash)] = s;
}

} // namespace vleaf::fib
