// main() of the bench binaries.
#pragma once

#include <cstdio>
#include <exception>

namespace vleaf::test {

// run(argc, argv), where a bad argument (std::stoul), an EAL that cannot start (no memory)
// or a set-up that throws ends the run with its reason and exit status 1 instead of
// escaping main.
template <class Run> int guarded_main(int argc, char **argv, Run &&run) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}

} // namespace vleaf::test
