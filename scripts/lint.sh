#!/usr/bin/env bash
# Checks the code's form: C with clang-format (.clang-format), Lua with luacheck (.luacheckrc) and StyLua
# (scripts/lint/lua-format.mjs). --fix rewrites the files instead of failing. Installs its tools through
# scripts/setup.sh (YT_LINT_DEPS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = "--fix" ] && fix=1
YT_LINT_DEPS=1 YT_SETUP_NO_BUILD=1 bash scripts/setup.sh

mapfile -t c_files < <(git ls-files '*.c' '*.h')
mapfile -t lua_files < <(git ls-files '*.lua')
status=0
if [ "$fix" = 1 ]; then
  clang-format -i "${c_files[@]}"
  node scripts/lint/lua-format.mjs "${lua_files[@]}"
else
  echo "== C format (clang-format)"
  clang-format --dry-run -Werror "${c_files[@]}" || status=1
  echo "== Lua format (StyLua)"
  node scripts/lint/lua-format.mjs --check "${lua_files[@]}" || status=1
fi
echo "== Lua lint (luacheck)"
luacheck --no-color -q "${lua_files[@]}" || status=1
exit $status
