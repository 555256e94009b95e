-- Small utilities shared by the engine: paths, run directories, atomic file writes, logging.
local yt = require("yolotrain.core")

local utils = {}

function utils.exists(path) return yt.sys.stat(path) ~= nil end

function utils.is_dir(path)
  local st = yt.sys.stat(path)
  return st ~= nil and st.is_dir
end

function utils.mkdir_p(path)
  local ok, err = yt.sys.mkdir_p(path)
  if ok == false or ok == nil and err then
    error(string.format("cannot create directory '%s': %s", path, tostring(err)), 2)
  end
end

function utils.dirname(path) return path:match("^(.*)/[^/]*$") or "." end

function utils.basename(path) return path:match("([^/]+)/*$") or path end

function utils.join(...)
  local parts = { ... }
  local out = parts[1]
  for i = 2, #parts do
    if parts[i]:sub(1, 1) == "/" then
      out = parts[i]
    else
      out = out:gsub("/+$", "") .. "/" .. parts[i]
    end
  end
  return out
end

function utils.is_abs(path) return path:sub(1, 1) == "/" end

-- Collapses "." and ".." components (like Path.resolve without following links).
function utils.normalize(p)
  local abs = utils.is_abs(p)
  local out = {}
  for part in p:gmatch("[^/]+") do
    if part == ".." then
      if #out > 0 and out[#out] ~= ".." then
        out[#out] = nil
      elseif not abs then
        out[#out + 1] = ".."
      end
    elseif part ~= "." then
      out[#out + 1] = part
    end
  end
  local s = table.concat(out, "/")
  if abs then return "/" .. s end
  return s == "" and "." or s
end

-- The absolute, normalised form of a path relative to the working directory.
function utils.absolute(p)
  if utils.is_abs(p) then return utils.normalize(p) end
  return utils.normalize((yt.sys.realpath(".") or os.getenv("PWD") or ".") .. "/" .. p)
end

-- runs/detect/train, train2, train3, ... (the first free one), as Ultralytics' increment_path.
function utils.increment_path(path, exist_ok)
  if exist_ok or not utils.exists(path) then return path end
  local n = 2
  while utils.exists(path .. n) do
    n = n + 1
  end
  return path .. n
end

-- The folder of a task's run directories: project=, else <runs_dir setting>/<task> (runs/detect by default).
function utils.project_dir(args)
  if args.project then return args.project end
  return utils.join(require("yolotrain.utils.settings").get("runs_dir"), args.task or "detect")
end

-- The run directory <project>/<name> of a mode (see project_dir), name defaulting to default_name; numbered
-- (name2, name3, ...) by increment_path unless exist_ok.
function utils.run_dir(args, default_name, exist_ok)
  local project = utils.project_dir(args)
  local name = args.name or default_name
  return utils.increment_path(utils.join(project, name), exist_ok)
end

-- Python's round(): halves go to the even neighbour.
function utils.round_half_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 then return f + 1 end
  if d < 0.5 then return f end
  return (f % 2 == 0) and f or f + 1
end

-- The grid size of a model: its largest stride (floored), at least 32.
function utils.max_stride(model)
  local gs = 32
  for _, s in ipairs(model.stride or {}) do
    gs = math.max(gs, math.floor(s))
  end
  return gs
end

-- Ultralytics' check_imgsz: imgsz rounded up to a multiple of stride (at least stride), with its warning when
-- that changes it. dims 1: a number (a table gives its first entry); dims 2: {h, w} (a number is square).
function utils.check_imgsz(imgsz, stride, dims)
  if dims == 2 then
    if type(imgsz) ~= "table" then imgsz = { imgsz, imgsz } end
    if #imgsz == 1 then imgsz = { imgsz[1], imgsz[1] } end
  elseif type(imgsz) == "table" then
    imgsz = imgsz[1]
  end
  local function fix(v) return math.max(math.ceil(v / stride) * stride, stride) end
  if dims ~= 2 then
    local fixed = fix(imgsz)
    if fixed ~= imgsz then
      utils.log("WARNING: imgsz=%s must be a multiple of max stride %d, updating to %d", tostring(imgsz), stride, fixed)
    end
    return fixed
  end
  local fixed = { fix(imgsz[1]), fix(imgsz[2]) }
  if fixed[1] ~= imgsz[1] or fixed[2] ~= imgsz[2] then
    local shown = table.concat(imgsz, ",")
    utils.log(
      "WARNING: imgsz=%s must be a multiple of max stride %d, updating to [%d, %d]",
      shown,
      stride,
      fixed[1],
      fixed[2]
    )
  end
  return fixed
end

-- printf-style line to stdout, flushed (the engine's progress and warnings).
function utils.log(...)
  io.stdout:write(string.format(...), "\n")
  io.stdout:flush()
end

-- A message without the "file.lua:line: " position Lua puts in front of an error raised by a function.
function utils.strip_where(msg) return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", "")) end

-- A write that failed for a reason outside the program (a full disk, an I/O error, a permission): raised as a
-- value the engine reports in one line with no traceback. reason may already name the path.
local WriteError = { __tostring = function(e) return e.message end }
function utils.write_error(path, reason)
  reason = utils.strip_where(reason)
  local message = reason:find(path, 1, true) and reason or string.format("cannot write '%s': %s", path, reason)
  error(setmetatable({ write_error = true, path = path, message = message }, WriteError), 0)
end

-- Writes content to path through a temporary file, fsync and a rename: a reader never sees half a file, and a
-- crash or power loss leaves the old file or the new one (io/durable.h). Failures raise utils.write_error.
function utils.atomic_write(path, content)
  local tmp = yt.sys.temp_path(path)
  local f, err = io.open(tmp, "wb")
  if not f then utils.write_error(path, err) end
  local ok, werr = f:write(content)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    utils.write_error(path, werr or cerr)
  end
  local rok, rerr = pcall(yt.sys.durable_rename, tmp, path)
  if not rok then utils.write_error(path, rerr) end
end

-- Copies a file atomically (to a temporary name beside the destination, then a rename).
function utils.atomic_copy(src, dst)
  local f, err = io.open(src, "rb")
  if not f then error(string.format("cannot read '%s': %s", src, err), 2) end
  local data = f:read("a")
  f:close()
  utils.atomic_write(dst, data)
end

function utils.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

-- "1,234,567"
function utils.commas(n)
  local s = tostring(math.floor(n))
  local r = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (r:gsub("^,", ""):gsub("^%-,", "-"))
end

-- "1.23MB", as tqdm's unit_scale with unit_divisor 1024 (kB, MB, GB in steps of 1024)
function utils.fmt_bytes(n)
  local units = { "B", "kB", "MB", "GB", "TB" }
  local i = 1
  while n >= 1024 and i < #units do
    n, i = n / 1024, i + 1
  end
  if i == 1 then return string.format("%d%s", math.floor(n), units[i]) end
  return string.format("%.2f%s", n, units[i])
end

-- Terminal colours only when stdout is a terminal (Ultralytics' colorstr).
local COLORS =
  { blue = "\27[34m", bold = "\27[1m", red = "\27[31m", green = "\27[32m", yellow = "\27[33m", reset = "\27[0m" }
function utils.colorstr(...)
  local args = { ... }
  local text = table.remove(args)
  if #args == 0 then args = { "blue", "bold" } end
  if not (yt.sys and yt.sys.isatty and yt.sys.isatty(1)) then return text end
  local pre = ""
  for _, c in ipairs(args) do
    pre = pre .. (COLORS[c] or "")
  end
  return pre .. text .. COLORS.reset
end

-- Lua value -> compact human text (tables one level deep), for logs.
function utils.repr(v)
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do
      parts[#parts + 1] = utils.repr(v[i])
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  if type(v) == "string" then return v end
  return tostring(v)
end

return utils
