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
  local f = io.popen(cmd .. ' 2>&1; echo "__rc=$?"')
  local out = f:read("a")
  f:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  out = out:gsub("__rc=%d+%s*$", "")
  return rc == 0, rc, out
end

-- A small dataset (train = val) of the first n coco128 val images (symlinks), so specs stay fast; returns its folder.
function helpers.coco_subset(n)
  local coco = helpers.datasets_dir .. "/coco128"
  local yt = require("yolotrain.core")
  local dir = helpers.tmpdir()
  local src = coco .. "/images/val2017"
  assert(os.execute(string.format("mkdir -p '%s/images/val' '%s/labels/val'", dir, dir)))
  local files = yt.sys.listdir(src)
  table.sort(files)
  local abs = yt.sys.realpath(coco)
  for i = 1, n do
    local f = files[i]
    os.execute(string.format("ln -s '%s/images/val2017/%s' '%s/images/val/%s'", abs, f, dir, f))
    local stem = f:gsub("%.jpg$", "")
    os.execute(
      string.format(
        "[ -f '%s/labels/val2017/%s.txt' ] && ln -s '%s/labels/val2017/%s.txt' '%s/labels/val/'",
        abs,
        stem,
        abs,
        stem,
        dir
      )
    )
  end
  local yaml = helpers.read_file(coco .. "/data.yaml")
  helpers.write_file(dir .. "/data.yaml", "train: images/val\nval: images/val\n" .. yaml:match("(names:.*)$"))
  return dir
end

-- A new table with the fields of each argument in turn (a later one wins): overrides built on common ones
function helpers.merged(...)
  local o = {}
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do
      o[k] = v
    end
  end
  return o
end

return helpers
