-- Lua lint of yolotrain (checked by scripts/lint.sh): Lua 5.4, 120 columns, modules set no globals.
std = "lua54"
max_line_length = 120
-- overridable methods keep Ultralytics' signatures, so unused arguments are the norm
unused_args = false
files["tests/lua"] = { std = "+busted" }
files["tests/lua/helpers.lua"] = { std = "+busted" }
