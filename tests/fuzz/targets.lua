-- The readers written in Lua, as libFuzzer targets (one harness each: tests/fuzz/fuzz_lua_<name>.c). Each takes
-- the input bytes as a string and feeds them to one reader of text a user may receive from others. A reader may
-- refuse with error(message); any Lua runtime error ("attempt to index a nil value", a bad argument to a library
-- function, ...) is reported back as a finding: the reader let bad input reach code that did not expect it.
local cfg = require("yolotrain.cfg")
local checkpoint = require("yolotrain.engine.checkpoint")
local data = require("yolotrain.data")
local plotting = require("yolotrain.utils.plotting")

local M = {}
local dir -- a private temporary folder, given by the harness

function M.setup(tmpdir) dir = tmpdir end

-- Whether an error is a bug rather than a refusal. Who raised it decides, since inputs can hold any text: the VM
-- inside a Lua function (indexing nil, arithmetic on a string, stack overflow), or a library function's argument
-- check ("bad argument #1 to 'tonumber'"). error() and a reader's own luaL_error are refusals, unless they carry a
-- runtime error caught and re-raised further down ("<file>.lua:<line>: attempt to ..."; Lua's pattern matcher,
-- unlike a plain find, gives libFuzzer no comparison to learn that text from).
local WRAPPED_RUNTIME_ERRORS = {
  "%.lua:%d+: attempt to ",
  "%.lua:%d+: bad argument #",
  "%.lua:%d+: stack overflow",
  "%.lua:%d+: table index is ",
  "%.lua:%d+: number has no integer representation",
}

local function is_runtime_error(msg, raiser)
  if type(msg) ~= "string" then return true end -- error() with a non-string is never a message for a user
  if raiser and raiser.what ~= "C" then return true end
  if raiser and raiser.name ~= "error" and msg:find("^bad argument #") then return true end
  for _, pat in ipairs(WRAPPED_RUNTIME_ERRORS) do
    if msg:find(pat) then return true end
  end
  return false
end

-- Runs one check: a runtime error is raised again (with its traceback), a refusal is swallowed.
local function check(fn, ...)
  local ok, err = xpcall(fn, function(e)
    -- level 2: the function that raised (level 1 is this handler)
    return is_runtime_error(e, debug.getinfo(2, "Sn")) and { debug.traceback(tostring(e), 2) } or e
  end, ...)
  if not ok and type(err) == "table" then error(err, 0) end
  return ok and err or nil
end

local function to_file(name, bytes)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

local function lines(bytes)
  local out = {}
  for w in (bytes .. "\n"):gmatch("([^\n]*)\n") do
    out[#out + 1] = w
  end
  return out
end

local targets = {}

-- The command line (one word per line): key=value grammar, spacing, values, and the checks of each key.
function targets.cli(bytes)
  local ws = lines(bytes)
  local parsed = check(function() return { cfg.parse_args(ws) } end)
  if parsed then check(cfg.get_cfg, parsed[3]) end
end

-- cfg=<args.yaml>: a run's arguments file given back on the command line.
function targets.args_yaml(bytes)
  local args = check(cfg.load_args_yaml, to_file("args.yaml", bytes))
  if args then check(cfg.get_cfg, args) end
end

-- The metadata of a checkpoint given to resume= (one key=value per line): counters, train_args JSON, optimizer
-- groups. Each is checked on its own so that one refusal does not hide the others.
function targets.resume_meta(bytes)
  local meta = {}
  for _, l in ipairs(lines(bytes)) do
    local k, v = l:match("^([^=]+)=(.*)$")
    if k then meta[k] = v end
  end
  check(checkpoint.train_args, "fuzz.safetensors", meta)
  check(checkpoint.counter, "fuzz.safetensors", meta, "epoch", -1)
  check(checkpoint.counter, "fuzz.safetensors", meta, "epochs", 1, 3)
  check(checkpoint.counter, "fuzz.safetensors", meta, "updates", 0, 0)
  check(checkpoint.optimizer_groups, "fuzz.safetensors", meta, 3)
  check(checkpoint.is_stripped, meta)
end

-- A run's results.csv, read back to draw results.png (at the end of training and on resume). The drawing itself
-- (cairo, ~30 ms) is left to the specs: here it would cut the inputs per second a hundredfold.
function targets.results_csv(bytes) check(plotting.read_results, to_file("results.csv", bytes)) end

-- A dataset YAML: keys, names/nc, paths (relative to the file's folder, which holds images/ and labels/), and
-- its download: refused or reported (autodownload off: a fuzzed URL is never fetched).
function targets.data_yaml(bytes) check(data.check_det_dataset, to_file("data.yaml", bytes), { autodownload = false }) end

-- Returns nil, or the message of a runtime error the input caused.
function M.run(name, bytes)
  local ok, err = pcall(targets[name], bytes)
  if ok then return nil end
  return type(err) == "table" and err[1] or tostring(err)
end

return M
