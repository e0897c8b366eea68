// Prefetches that the compiler keeps. GCC 12 (Debian 12's) finds a small function made
// of nothing but __builtin_prefetch "pure" (its IPA mod-ref analysis) and then deletes
// every call to it, the result being unused: the FIB programmer's route-slot prefetches
// (RouteTable::prefetch, called from fib::drain and Programmer::commit) were absent from
// the binary. A volatile asm statement is never deleted.
#pragma once

namespace vleaf {

// For a line about to be written.
inline void prefetch_write(const void *p) {
#if defined(__x86_64__) && defined(__PRFCHW__)
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char *>(p)));
#elif defined(__x86_64__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char *>(p)));
#else
    __builtin_prefetch(p, 1);
#endif
}

} // namespace vleaf
