-- Training arguments: defaults, validation of overrides (as Ultralytics' get_cfg), and the command-line
-- grammar (key=value, `a = b` spacing, true/false/none, numbers, lists; a bare boolean key means true).
local defaults = require("yolotrain.cfg.default")
local errors = require("yolotrain.utils.errors")

local cfg = { NONE = defaults.NONE, defaults = defaults }

local TASKS = { detect = true }
cfg.MODE_LIST = { "train", "val", "predict", "export" } -- the modes yolotrain implements, in the order docs list them
local MODES = {}
for _, m in ipairs(cfg.MODE_LIST) do
  MODES[m] = true
end
cfg.TASKS, cfg.MODES = TASKS, MODES

local function levenshtein(a, b)
  local prev = {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = (a:byte(i) == b:byte(j)) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- Up to three valid keys close to `key` (similarity >= 0.6), formatted as key=default.
function cfg.similar_keys(key)
  local scored = {}
  for _, k in ipairs(defaults.order) do
    local longest = math.max(#key, #k)
    -- the distance is at least the length difference: most keys are out of reach without computing it
    if math.abs(#key - #k) <= 0.4 * longest then
      local ratio = 1 - levenshtein(key, k) / longest
      if ratio >= 0.6 then scored[#scored + 1] = { k, ratio } end
    end
  end
  table.sort(scored, function(x, y) return x[2] > y[2] end)
  local out = {}
  for i = 1, math.min(3, #scored) do
    out[i] = scored[i][1] .. "=" .. tostring(defaults.values[scored[i][1]])
  end
  return out
end

-- Raises msg: at the user's file:line (the recipe line that gave the argument, not the engine's) unless level is 0.
local function raise(msg, level)
  if level == 0 then error(msg, 0) end
  errors.raise_at_user(msg)
end

local function unknown_key_error(key, level)
  local sim = cfg.similar_keys(key)
  local hint = #sim > 0 and (" Similar arguments are i.e. " .. table.concat(sim, ", ") .. ".") or ""
  raise(string.format("'%s' is not a valid yolotrain argument.%s", key, hint), level)
end

local function is_int(v) return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v == v) end

-- Checks the type of one argument; returns the (possibly normalised) value or raises naming the key.
function cfg.check_value(k, v, level)
  level = level or 3
  local kind = defaults.kinds[k]
  if kind == nil then unknown_key_error(k, level) end
  if v == nil or v == defaults.NONE then return nil end
  local function bad(expect, example)
    raise(
      string.format(
        "'%s=%s' is of invalid type %s. Valid '%s' types are %s (i.e. '%s=%s')",
        k,
        tostring(v),
        type(v),
        k,
        expect,
        k,
        example
      ),
      level
    )
  end
  if kind == "float" then
    if type(v) ~= "number" then bad("int (i.e. '" .. k .. "=0') or float", "0.5") end
  elseif kind == "fraction" then
    if type(v) ~= "number" then bad("float", "0.5") end
    if v < 0 or v > 1 then
      raise(
        string.format("'%s=%s' is an invalid value. Valid '%s' values are between 0.0 and 1.0.", k, tostring(v), k),
        level
      )
    end
  elseif kind == "int" then
    if type(v) ~= "number" or not is_int(v) then bad("int", "0") end
    v = math.tointeger(v) or v
  elseif kind == "bool" then
    if type(v) ~= "boolean" then bad("bool", "True") end
  elseif kind == "str" then
    if type(v) ~= "string" then bad("str", "value") end
  end
  local min = defaults.minimum[k]
  if min and type(v) == "number" and not (v >= min) and not cfg.is_autobatch(k, v) then -- luacheck: ignore 581 (NaN fails too)
    local what = kind == "int" and "integers" or "numbers"
    local extra = k == "batch" and " (or -1, or a fraction 0 < batch < 1, for AutoBatch)" or ""
    raise(
      string.format(
        "'%s=%s' is an invalid value. Valid '%s' values are %s >= %s%s.",
        k,
        tostring(v),
        k,
        what,
        tostring(min),
        extra
      ),
      level
    )
  end
  return v
end

-- batch=-1 or 0 < batch < 1: Ultralytics' AutoBatch request.
function cfg.is_autobatch(k, v) return k == "batch" and (v == -1 or (v > 0 and v < 1)) end

-- The training batch size for `batch` (AutoBatch requests resolved as Ultralytics does on a CPU).
function cfg.train_batch_size(batch, log)
  if not cfg.is_autobatch("batch", batch) then return math.tointeger(batch) or batch end
  if log then
    log(
      string.format(
        "AutoBatch: no accelerator memory to measure, using the default CPU batch-size %d",
        defaults.autobatch_cpu
      )
    )
  end
  return defaults.autobatch_cpu
end

-- get_cfg: defaults overlaid with overrides (a table), each checked. Returns a plain table.
function cfg.get_cfg(overrides, base)
  local args = {}
  for k, v in pairs(base or defaults.copy()) do
    args[k] = v
  end
  if overrides ~= nil and type(overrides) ~= "table" then error("overrides must be a table of key = value", 2) end
  for k, v in pairs(overrides or {}) do
    if type(k) ~= "string" then error("overrides: keys must be strings, got " .. tostring(k), 2) end
    args[k] = cfg.check_value(k, v, 3)
  end
  -- Ultralytics treats name/project/model given as numbers as strings
  for _, k in ipairs({ "project", "name" }) do
    if type(args[k]) == "number" then args[k] = tostring(args[k]) end
  end
  return args
end

-- ---- argument files ----

-- The key of args.yaml that lists a run's live changes (trainer:set), oldest first.
cfg.HISTORY_KEY = "history"

-- cfg=<file.yaml>, as Ultralytics: a YAML mapping of arguments (a run's args.yaml, say) that replaces the defaults;
-- arguments given beside it win. Every key is checked as on the command line; an error names the file and key.
-- null values, the file's own `cfg` key and a run's `history` (its live changes, see trainer:set) are left out.
function cfg.load_args_yaml(path)
  if type(path) ~= "string" then error(string.format("cfg=%s: expected the path of a YAML file", tostring(path)), 0) end
  local yt = require("yolotrain.core")
  local ok, data = pcall(yt.io.load_yaml, path)
  if not ok then error(string.format("cfg=%s: %s", path, tostring(data)), 0) end
  if data == nil then return {} end
  if type(data) ~= "table" or (next(data) ~= nil and data[1] ~= nil) then
    error(string.format("cfg=%s: expected a mapping of argument: value", path), 0)
  end
  local out = {}
  for k, v in pairs(data) do
    if type(k) ~= "string" then error(string.format("cfg=%s: key %s is not a name", path, tostring(k)), 0) end
    if k ~= "cfg" and k ~= cfg.HISTORY_KEY and v ~= yt.io.null then
      local vok, checked = pcall(cfg.check_value, k, v, 0)
      if not vok then error(string.format("cfg=%s: %s", path, tostring(checked)), 0) end
      out[k] = checked
    end
  end
  return out
end

-- The overrides of a command line with its cfg=<file.yaml> applied: the file's arguments under the others.
function cfg.apply_cfg_file(overrides)
  if overrides.cfg == nil then return overrides end
  local out = cfg.load_args_yaml(overrides.cfg)
  for k, v in pairs(overrides) do
    if k ~= "cfg" then out[k] = v end
  end
  return out
end

-- ---- command-line values ----

-- "none" -> nil (cfg.NONE), "true"/"false" -> booleans, numbers, [lists], otherwise the string.
function cfg.smart_value(s)
  local low = s:lower()
  if low == "none" then return defaults.NONE end
  if low == "true" then return true end
  if low == "false" then return false end
  local n = math.tointeger(tonumber(s)) or tonumber(s)
  if n ~= nil and s:match("^%s*[-+]?[%d.]") then return n end
  local inner = s:match("^%[(.*)%]$") or s:match("^%((.*)%)$")
  if inner then
    local list = {}
    for item in (inner .. ","):gmatch("%s*([^,]*),") do
      if item ~= "" then list[#list + 1] = cfg.smart_value((item:gsub("^['\"]", ""):gsub("['\"]%s*$", ""))) end
    end
    return list
  end
  return (s:gsub("^['\"](.*)['\"]$", "%1"))
end

-- Joins `a = b`, `a= b`, `a =b` into `a=b`.
function cfg.merge_equals_args(args)
  local out = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "=" and #out > 0 and i < #args then
      out[#out] = out[#out] .. "=" .. args[i + 1]
      i = i + 2
    elseif a:sub(-1) == "=" and #a > 1 and i < #args and not args[i + 1]:find("=") then
      out[#out + 1] = a .. args[i + 1]
      i = i + 2
    elseif a:sub(1, 1) == "=" and #a > 1 and #out > 0 then
      out[#out] = out[#out] .. a
      i = i + 1
    else
      out[#out + 1] = a
      i = i + 1
    end
  end
  return out
end

-- Parses command-line words into task, mode and a table of checked overrides.
function cfg.parse_args(words)
  local merged = cfg.merge_equals_args(words)
  local overrides, task, mode = {}, nil, nil
  for _, w in ipairs(merged) do
    local k, v = w:match("^([^=]+)=(.*)$")
    if k then
      k = k:gsub("^%-%-", ""):gsub("%s+$", "")
      if v == "" then error(string.format("missing '%s' value", k), 0) end
      if defaults.kinds[k] == nil then
        local _, err = pcall(unknown_key_error, k, 0)
        error(w .. ": " .. err, 0)
      end
      overrides[k] = cfg.smart_value(v)
    elseif TASKS[w] then
      task = w
    elseif MODES[w] then
      mode = w
    elseif defaults.kinds[w] == "bool" or type(defaults.values[w]) == "boolean" then
      overrides[w] = true
    else
      unknown_key_error(w, 0)
    end
  end
  for k, v in pairs(overrides) do
    local ok, err = pcall(cfg.check_value, k, v, 0)
    if not ok then error(err, 0) end
    if v == defaults.NONE then overrides[k] = nil end
  end
  return task, mode, overrides
end

-- For recipes: `yolotrain recipe.lua key=value ...` — the recipe's own defaults overlaid with the key=value words
-- of `argv` (the recipe's `arg` table), checked like the command line. Returns the overrides and the positional
-- words (those without '='), in order.
function cfg.recipe_overrides(recipe_defaults, argv)
  local words, positional = {}, {}
  for i = 1, #(argv or {}) do
    local w = argv[i]
    if w:find("=", 1, true) or w == "=" then
      words[#words + 1] = w
    else
      positional[#positional + 1] = w
    end
  end
  -- a bad word is the user's input, not a bug: one line naming it, no traceback
  local ok, err, _, parsed = pcall(cfg.parse_args, cfg.merge_equals_args(words))
  if not ok then errors.refuse(err) end
  local out = {}
  for k, v in pairs(recipe_defaults or {}) do
    out[k] = v
  end
  for k, v in pairs(parsed) do
    out[k] = v
  end
  return out, positional
end

return cfg
