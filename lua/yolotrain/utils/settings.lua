-- User settings, as Ultralytics' settings file: where datasets, weights and runs go, and whether trainings log to
-- TensorBoard, for every run of this user.
--
--   local settings = require("yolotrain.utils.settings")
--   settings.get("datasets_dir")         -- an absolute folder: downloaded and generated datasets go here
--   settings.update{ runs_dir = "/data/runs" }   -- validated, written to the file atomically
--   settings.reset()                     -- back to the defaults
--
-- The file is settings.yaml in $YOLOTRAIN_CONFIG_DIR, else $XDG_CONFIG_HOME/yolotrain, else ~/.config/yolotrain.
-- It is written only when a setting changes; until then every value is its default. `yolotrain settings` shows
-- them and `yolotrain settings key=value` changes them.
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")

local M = {}

local function getenv(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function home() return getenv("HOME") or "." end

-- The folder of the settings file.
function M.config_dir()
  return getenv("YOLOTRAIN_CONFIG_DIR")
    or utils.join(getenv("XDG_CONFIG_HOME") or utils.join(home(), ".config"), "yolotrain")
end

-- The folder datasets and weights default to ($XDG_DATA_HOME/yolotrain, ~/.local/share/yolotrain), outside any
-- source tree, so that an installed or read-only copy of yolotrain works.
local function data_home() return utils.join(getenv("XDG_DATA_HOME") or utils.join(home(), ".local/share"), "yolotrain") end

-- How each kind of setting is checked: check(value) -> the value to keep, or nil when it is not of the kind
-- (`what` names the kind in the error); store(value), when given, is what `update` writes for a change.
local function folder_name(v) return type(v) == "string" and v ~= "" and v or nil end
local KINDS = {
  version = { what = "a version", check = function(v) return tostring(v) end },
  -- a relative folder given to `update` is made absolute: it must not depend on where a later run starts
  folder = { what = "a folder name", check = folder_name, store = function(v) return utils.absolute(v) end },
  -- kept as given: relative to the working directory of each run
  relative_folder = { what = "a folder name", check = folder_name },
  -- YAML's booleans from the file; "true"/"false" (any case) from `yolotrain settings key=value`
  bool = {
    what = "true or false",
    check = function(v)
      if type(v) == "boolean" then return v end
      local low = type(v) == "string" and v:lower() or nil
      if low == "true" then
        return true
      elseif low == "false" then
        return false
      end
      return nil
    end,
  },
}

-- Every setting, in the order the file and `yolotrain settings` list them.
M.SETTINGS = {
  { key = "settings_version", kind = "version", default = function() return "1" end, meaning = "format of this file" },
  {
    key = "datasets_dir",
    kind = "folder",
    default = function() return utils.join(data_home(), "datasets") end,
    meaning = "where downloaded and generated datasets go, and where a dataset YAML's relative 'path' is looked for",
  },
  {
    key = "weights_dir",
    kind = "folder",
    default = function() return utils.join(data_home(), "weights") end,
    meaning = "where named weights (model=yolov8n.pt) are downloaded to and looked for",
  },
  {
    key = "runs_dir",
    kind = "relative_folder",
    default = function() return "runs" end,
    meaning = "the folder of run directories (<runs_dir>/<task>/<name>); relative to the working directory unless "
      .. "absolute",
  },
  {
    key = "tensorboard",
    kind = "bool",
    default = function() return true end,
    meaning = "trainings write TensorBoard event files into their run directory (tensorboard= overrides it per run)",
  },
}
local BY_KEY = {}
for _, s in ipairs(M.SETTINGS) do
  BY_KEY[s.key] = s
end

function M.file() return utils.join(M.config_dir(), "settings.yaml") end

local function defaults()
  local out = {}
  for _, s in ipairs(M.SETTINGS) do
    out[s.key] = s.default()
  end
  return out
end

local function check_value(key, value, where)
  local s = BY_KEY[key]
  if s == nil then
    local names = {}
    for _, x in ipairs(M.SETTINGS) do
      names[#names + 1] = x.key
    end
    error(string.format("%s'%s' is not a setting; settings are %s", where, tostring(key), table.concat(names, ", ")), 0)
  end
  local kind = KINDS[s.kind]
  local v = kind.check(value)
  if v == nil then error(string.format("%s'%s' must be %s, not %s", where, key, kind.what, tostring(value)), 0) end
  return v
end

-- All settings: the defaults, with the file's values over them. A malformed file is an error naming it.
function M.load()
  local out = defaults()
  local path = M.file()
  if not utils.exists(path) then return out end
  local ok, data = pcall(yt.io.load_yaml, path)
  if not ok then error(string.format("%s: %s", path, utils.strip_where(tostring(data))), 0) end
  if data == nil then return out end
  if type(data) ~= "table" then error(string.format("%s: expected a mapping of settings", path), 0) end
  for k, v in pairs(data) do
    out[k] = check_value(k, v, path .. ": ")
  end
  return out
end

function M.get(key)
  if BY_KEY[key] == nil then check_value(key, nil, "") end
  return M.load()[key]
end

local function save(values)
  local order = {}
  for _, s in ipairs(M.SETTINGS) do
    order[#order + 1] = s.key
  end
  utils.mkdir_p(M.config_dir())
  utils.atomic_write(M.file(), yt.io.dump_yaml(values, order))
end

-- Changes the given settings (relative folders become absolute, except runs_dir) and writes the file.
function M.update(changes)
  local values = M.load()
  for k, v in pairs(changes) do
    v = check_value(k, v, "")
    local store = KINDS[BY_KEY[k].kind].store
    values[k] = store and store(v) or v
  end
  save(values)
  return values
end

function M.reset()
  save(defaults())
  return M.load()
end

-- `yolotrain settings [reset] [key=value ...]`: prints the file's path and every setting after the changes.
function M.cli(words)
  local changes, reset = {}, false
  for i = 2, #words do
    local w = words[i]
    if w == "reset" then
      reset = true
    else
      local k, v = w:match("^([%w_]+)=(.*)$")
      if k == nil then error(string.format("'%s' is not key=value (see yolotrain settings)", w), 0) end
      changes[k] = v
    end
  end
  if reset then M.reset() end
  if next(changes) ~= nil then M.update(changes) end
  local values = M.load()
  io.stdout:write("Settings: ", M.file(), utils.exists(M.file()) and "" or " (not written yet: all defaults)", "\n")
  for _, s in ipairs(M.SETTINGS) do
    io.stdout:write(string.format("  %-17s %s\n", s.key, tostring(values[s.key])))
  end
  return 0
end

return M
