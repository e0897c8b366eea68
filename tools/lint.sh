#!/usr/bin/env bash
# clang-format over every tracked C++ file (a meson test), and with --tidy BUILD also
# clang-tidy over the sources in BUILD's compile_commands.json, or only over the .cpp
# files named after BUILD. Any clang-tidy warning fails. Slow (about 10 CPU-minutes for
# the whole tree): run by hand, see README's Development section.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
if [ "${1:-}" = --tidy ]; then
  build=${2:?usage: tools/lint.sh --tidy BUILD_DIR [FILE.cpp...]}
  shift 2
  if [ $# -gt 0 ]; then
    srcs=("$@")
  else
    mapfile -t srcs < <(git ls-files '*.cpp')
  fi
  clang-tidy -p "$build" --quiet --warnings-as-errors='*' "${srcs[@]}"
  echo "clang-tidy: ${#srcs[@]} files clean"
fi
