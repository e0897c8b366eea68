// main() of the Google Benchmark binaries that run the pipeline over one EAL.
#pragma once

#include "bench/guarded_main.hpp"
#include "tests/packet/harness.hpp"

#include <benchmark/benchmark.h>

#include <functional>

namespace vleaf::test {

// The benchmarks over the EAL `start_eal` sets up, torn down after the last one (errors:
// guarded_main).
inline int bench_main(int argc, char **argv, const std::function<void()> &start_eal) {
    return guarded_main(argc, argv, [&](int n, char **args) {
        start_eal();
        benchmark::Initialize(&n, args);
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
        finish_eal();
        return 0;
    });
}

} // namespace vleaf::test
