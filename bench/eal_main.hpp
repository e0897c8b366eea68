// main() of the Google Benchmark binaries that run the pipeline over one EAL.
#pragma once

#include "tests/packet/harness.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <exception>
#include <functional>

namespace vleaf::test {

// The benchmarks over the EAL `start_eal` sets up, torn down after the last one. An EAL
// that cannot start (no memory) or a benchmark's set-up that throws ends the run with its
// reason and exit status 1 instead of escaping main.
inline int bench_main(int argc, char **argv, const std::function<void()> &start_eal) {
    try {
        start_eal();
        benchmark::Initialize(&argc, argv);
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
        finish_eal();
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}

} // namespace vleaf::test
