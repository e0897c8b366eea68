#!/usr/bin/env bash
# clang-format over every tracked C++ file (a meson test), and with --tidy BUILD also
# clang-tidy over the sources in BUILD's compile_commands.json (slow: run by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
if [ "${1:-}" = --tidy ]; then
  build=${2:?usage: tools/lint.sh --tidy BUILD_DIR}
  mapfile -t srcs < <(git ls-files '*.cpp')
  clang-tidy -p "$build" --quiet "${srcs[@]}"
fi
