#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root on Debian 12): installs and builds with
# -Dwerror=true, runs every meson suite (unit, packet, integration, interop, ...), then
# the control plane's unit tests under ASan/UBSan and the libFuzzer targets when the
# tree defines some. Ends with one line "N passed, N failed" over all runs; the exit
# status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

failed_steps=0
runs=()

step_failed() {
  echo "test.sh: FAILED: $*" >&2
  failed_steps=$((failed_steps + 1))
}

# meson test; its testlog.json is counted in the summary even when tests fail.
run_tests() {
  local dir=$1
  shift
  rm -f "$dir/meson-logs/testlog.json"
  echo "== meson test -C $dir $*"
  meson test -C "$dir" --print-errorlogs "$@"
  if [ -f "$dir/meson-logs/testlog.json" ]; then
    runs+=("$dir/meson-logs/testlog.json")
  else
    step_failed "meson test -C $dir $* produced no test log"
  fi
}

if CI=true BUILD=build bash tools/setup.sh; then
  run_tests build
else
  step_failed "tools/setup.sh (install and build)"
fi

# The control plane has no DPDK in it and builds alone under the sanitizers. At -O0:
# quicker to build, and GCC 12 gives false -Wmaybe-uninitialized under -fsanitize
# with optimization (seen on std::variant in control/neigh).
if [ -f build-asan/build.ninja ] ||
   meson setup build-asan --buildtype=debug -Dwerror=true -Ddataplane=false -Dbench=false \
     -Db_sanitize=address,undefined -Db_lundef=false >/dev/null; then
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    run_tests build-asan --suite unit
else
  step_failed "meson setup build-asan"
fi

# libFuzzer needs clang; each fuzz test runs its target for a bounded time.
if [ -f build-fuzz/build.ninja ] ||
   CC=clang CXX=clang++ meson setup build-fuzz --buildtype=debugoptimized -Dwerror=true -Dfuzz=true -Ddataplane=false \
     -Db_sanitize=address,undefined \
     -Dbench=false -Db_lundef=false >/dev/null; then
  nfuzz=$(meson introspect --tests build-fuzz |
    /usr/bin/python3 -c 'import json,sys; print(sum(any(s.split(":")[-1] == "fuzz" for s in t["suite"]) for t in json.load(sys.stdin)))')
  if [ "$nfuzz" -gt 0 ]; then
    run_tests build-fuzz --suite fuzz
  else
    echo "== fuzz: tests/fuzz defines no fuzz tests yet"
  fi
else
  step_failed "meson setup build-fuzz"
fi

/usr/bin/python3 - "$failed_steps" "${runs[@]}" <<'EOF'
import json, sys

passed, failed = 0, int(sys.argv[1])
for path in sys.argv[2:]:
    with open(path) as log:
        for line in log:
            result = json.loads(line)["result"]
            # A skip in CI is a test that did not run: counted as failed.
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            else:
                failed += 1
                print(f"not passed: {path}: {json.loads(line)['name']} ({result})")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
