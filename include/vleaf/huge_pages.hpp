// An allocator for the table writer's large arrays (the FIB programmer's routes, the
// IPv4 rule hash): tens of MB, one access per route update at a random place. In 4 KiB
// pages nearly each such access also misses the TLB, and in a VM the page walk behind it
// is two-dimensional; it cost the writer more than the cache misses themselves (perf: a
// prefetch of a 4 KiB-paged table stalls on its walk). Arrays of 2 MiB and more get
// their own mapping, aligned and marked for transparent huge pages (the kernel's
// default `madvise` mode honours that); smaller ones come from the heap.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace vleaf {

template <class T> struct HugePageAllocator {
    using value_type = T;
    static constexpr size_t kHugePage = size_t(2) << 20;

    HugePageAllocator() = default;
    template <class U> explicit HugePageAllocator(const HugePageAllocator<U> &) {}

    T *allocate(size_t n) {
        size_t bytes = n * sizeof(T);
        if (bytes < kHugePage) return std::allocator<T>{}.allocate(n);
        size_t len = mapped(bytes);
        // Over-map by a huge page and trim, so that the array starts on a boundary.
        void *raw = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) throw std::bad_alloc();
        auto start = reinterpret_cast<uintptr_t>(raw);
        uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
        if (aligned > start) munmap(raw, aligned - start);
        if (size_t tail = start + kHugePage - aligned)
            munmap(reinterpret_cast<void *>(aligned + len), tail);
        // Advice only: without transparent huge pages the array works in small pages.
        (void)madvise(reinterpret_cast<void *>(aligned), len, MADV_HUGEPAGE);
        return reinterpret_cast<T *>(aligned);
    }
    void deallocate(T *p, size_t n) {
        size_t bytes = n * sizeof(T);
        if (bytes < kHugePage)
            std::allocator<T>{}.deallocate(p, n);
        else
            munmap(p, mapped(bytes));
    }
    template <class U> bool operator==(const HugePageAllocator<U> &) const { return true; }

  private:
    static size_t mapped(size_t bytes) { return (bytes + kHugePage - 1) & ~(kHugePage - 1); }
};

} // namespace vleaf
