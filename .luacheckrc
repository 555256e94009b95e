-- Lua lint of yolotrain (checked by scripts/lint.sh): Lua 5.4, modules set no globals.
std = "lua54"
-- the layout (120 columns) is StyLua's (scripts/lint/lua-format.mjs), which may keep a one-line body longer
max_line_length = false
-- overridable methods keep Ultralytics' signatures, so unused arguments are the norm
unused_args = false
files["tests/lua"] = { std = "+busted" }
files["tests/lua/helpers.lua"] = { std = "+busted" }
-- specs destructure results they do not all assert on, and capture io.stdout
files["tests/lua"].ignore = { "211", "231", "311", "122" }
