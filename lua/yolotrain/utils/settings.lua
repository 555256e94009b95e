-- User settings, as Ultralytics' settings file: where datasets, weights and runs go, for every run of this user.
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
  return getenv("YOLOTRAIN_CONFIG_DIR") or utils.join(getenv("XDG_CONFIG_HOME") or utils.join(home(), ".config"),
    "yolotrain")
end

-- The folder datasets and weights default to ($XDG_DATA_HOME/yolotrain, ~/.local/share/yolotrain), outside any
-- source tree, so that an installed or read-only copy of yolotrain works.
local function data_home()
  return utils.join(getenv("XDG_DATA_HOME") or utils.join(home(), ".local/share"), "yolotrain")
end

-- Every setting, in the order the file and `yolotrain settings` list them: {key, default(), meaning}.
M.SETTINGS = {
  { "settings_version", function() return "1" end, "format of this file" },
  { "datasets_dir", function() return utils.join(data_home(), "datasets") end,
    "where downloaded and generated datasets go, and where a dataset YAML's relative 'path' is looked for" },
  { "weights_dir", function() return utils.join(data_home(), "weights") end,
    "where named weights (model=yolov8n.pt) are downloaded to and looked for" },
  { "runs_dir", function() return "runs" end,
    "the folder of run directories (<runs_dir>/<task>/<name>); relative to the working directory unless absolute" },
}
local BY_KEY = {}
for _, s in ipairs(M.SETTINGS) do BY_KEY[s[1]] = s end

function M.file() return utils.join(M.config_dir(), "settings.yaml") end

local function defaults()
  local out = {}
  for _, s in ipairs(M.SETTINGS) do out[s[1]] = s[2]() end
  return out
end

local function check_value(key, value, where)
  local s = BY_KEY[key]
  if s == nil then
    local names = {}
    for _, x in ipairs(M.SETTINGS) do names[#names + 1] = x[1] end
    error(string.format("%s'%s' is not a setting; settings are %s", where, tostring(key),
      table.concat(names, ", ")), 0)
  end
  if key == "settings_version" then return tostring(value) end
  if type(value) ~= "string" or value == "" then
    error(string.format("%s'%s' must be a folder name, not %s", where, key, tostring(value)), 0)
  end
  return value
end

-- All settings: the defaults, with the file's values over them. A malformed file is an error naming it.
function M.load()
  local out = defaults()
  local path = M.file()
  if not utils.exists(path) then return out end
  local ok, data = pcall(yt.load_yaml, path)
  if not ok then error(string.format("%s: %s", path, utils.strip_where(tostring(data))), 0) end
  if data == nil then return out end
  if type(data) ~= "table" then error(string.format("%s: expected a mapping of settings", path), 0) end
  for k, v in pairs(data) do out[k] = check_value(k, v, path .. ": ") end
  return out
end

function M.get(key)
  if BY_KEY[key] == nil then check_value(key, nil, "") end
  return M.load()[key]
end

local function save(values)
  local order = {}
  for _, s in ipairs(M.SETTINGS) do order[#order + 1] = s[1] end
  utils.mkdir_p(M.config_dir())
  utils.atomic_write(M.file(), yt.dump_yaml(values, order))
end

-- Changes the given settings (relative folders become absolute, except runs_dir) and writes the file.
function M.update(changes)
  local values = M.load()
  for k, v in pairs(changes) do
    v = check_value(k, v, "")
    if k ~= "settings_version" and k ~= "runs_dir" then v = utils.absolute(v) end
    values[k] = v
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
    if w == "reset" then reset = true
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
  for _, s in ipairs(M.SETTINGS) do io.stdout:write(string.format("  %-17s %s\n", s[1], tostring(values[s[1]]))) end
  return 0
end

return M
