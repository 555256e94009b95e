-- Shared helpers for the busted specs.
local helpers = {}

local function script_dir()
  local src = debug.getinfo(1, "S").source:sub(2)
  return src:match("(.*/)") or "./"
end

local function absolute(p)
  if p:sub(1, 1) == "/" then return p end
  local h = io.popen("pwd")
  local cwd = h:read("l")
  h:close()
  return cwd .. "/" .. p
end

helpers.repo_dir = absolute(script_dir() .. "../../")
helpers.parity_dir = helpers.repo_dir .. "../shared/parity"
helpers.datasets_dir = helpers.repo_dir .. "../shared/datasets"
helpers.build_dir = absolute(os.getenv("YT_BUILD_DIR") or (helpers.repo_dir .. "build"))
helpers.yolotrain = helpers.build_dir .. "/yolotrain"

function helpers.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

function helpers.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function helpers.write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

-- Runs a shell command, returns ok, exit code, combined output.
function helpers.run(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"__rc=$?\"")
  local out = f:read("a")
  f:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  out = out:gsub("__rc=%d+%s*$", "")
  return rc == 0, rc, out
end

return helpers
