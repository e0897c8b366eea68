// main() of the packet tests that share one EAL across all their tests.
#pragma once

#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <exception>
#include <functional>

namespace vleaf::test {

// gtest over the EAL `start_eal` sets up (init_eal with the test's memory and lcores),
// torn down after the last test. An EAL that cannot start (no memory, a vdev that fails)
// fails the run with its reason and exit status 1 instead of escaping main.
inline int eal_main(int argc, char **argv, const std::function<void()> &start_eal) {
    try {
        ::testing::InitGoogleTest(&argc, argv);
        start_eal();
        int rc = RUN_ALL_TESTS();
        finish_eal();
        return rc;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}

} // namespace vleaf::test
