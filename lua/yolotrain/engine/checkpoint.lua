-- The yolotrain checkpoint: one safetensors file per save (last, best, epochN) holding
--   model.<name>          the EMA model's state dict (what val, predict and export use)
--   train_model.<name>    the raw training weights        \
--   optimizer.<name>      the optimizer's state            > only while training: removed by strip()
--   pending_grad.<name>   gradients accumulated, not stepped /
-- and string metadata: format, epoch (0-based; -1 once stripped), epochs, the model YAML, names, nc, train_args,
-- train_metrics, and the counters resume needs. The trainer writes it; tasks, val and resume read it here.
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")
local cfg = require("yolotrain.cfg")
local cjson = require("cjson")

local M = {}

M.FORMAT = "yolotrain-checkpoint-1"
M.STRIPPED_EPOCH = -1 -- as Ultralytics marks a finished run's weights

-- Metadata a stripped checkpoint keeps; the rest only serves resuming.
local KEPT_META = { "format", "epochs", "yaml", "names", "nc", "train_args", "train_metrics", "date", "version" }

-- The entries of tensors under prefix, with the prefix removed.
function M.with_prefix(prefix, tensors)
  local out = {}
  for name, t in pairs(tensors) do
    if name:sub(1, #prefix) == prefix then out[name:sub(#prefix + 1)] = t end
  end
  return out
end

-- The EMA model's state dict of a checkpoint.
function M.model_state(tensors) return M.with_prefix("model.", tensors) end

-- Whether a loaded file is a yolotrain checkpoint (rather than a plain state dict).
function M.is_checkpoint(tensors, meta)
  if meta and meta.format == M.FORMAT then return true end
  return next(M.with_prefix("train_model.", tensors)) ~= nil
end

function M.is_stripped(meta) return tonumber(meta.epoch) == M.STRIPPED_EPOCH end

local function free_all(tensors)
  for _, t in pairs(tensors) do
    t:free()
  end
end

-- Ultralytics' strip_optimizer for a finished run: keeps the EMA weights only, as F16 (a YOLOv8n checkpoint goes
-- from ~48 MB to ~6 MB), and marks the epoch -1 so that resume says the run is finished. Loading widens the
-- weights back to F32 exactly. Idempotent; durable like every checkpoint write. Returns the new size in bytes.
function M.strip(path)
  local tensors, meta = yt.io.load_safetensors(path)
  meta = meta or {}
  local kept, kept_meta = {}, {}
  for name, t in pairs(tensors) do
    if name:sub(1, 6) == "model." then kept[name] = t end
  end
  for _, k in ipairs(KEPT_META) do
    kept_meta[k] = meta[k]
  end
  kept_meta.epoch = tostring(M.STRIPPED_EPOCH)
  local ok, err = pcall(yt.io.save_safetensors, path, kept, kept_meta, { dtype = "F16" })
  free_all(tensors)
  if not ok then utils.write_error(path, err) end
  local st = yt.sys.stat(path)
  return st and st.size or 0
end

-- ---- read on resume (the metadata of a file that may come from anywhere) ----

-- An integer counter of a checkpoint's metadata (epoch, epochs, updates), refused unless it is one: a hostile or
-- damaged "nan" would otherwise restart at epoch 1 and overwrite that run's weights.
function M.counter(path, meta, key, min, fallback)
  local raw = meta[key]
  if raw == nil and fallback ~= nil then raw = fallback end
  local v = tonumber(raw)
  if not (v and v == math.floor(v) and v >= min and v < 2 ^ 31) then
    error(
      string.format(
        "resume=%s: checkpoint metadata '%s' is %s, not an integer >= %d",
        path,
        key,
        raw == nil and "missing" or string.format("%q", tostring(raw)),
        min
      ),
      0
    )
  end
  return math.tointeger(v)
end

-- The checkpoint's training arguments, each checked as the command line checks it.
function M.train_args(path, meta)
  local ok, ckpt_args = pcall(cjson.decode, meta.train_args or "")
  if not ok or type(ckpt_args) ~= "table" then
    error(string.format("resume=%s: checkpoint metadata 'train_args' is not a JSON object", path), 0)
  end
  for k, v in pairs(ckpt_args) do
    if cfg.defaults.kinds[k] and v ~= cjson.null then
      local vok, err = pcall(cfg.check_value, k, v, 0)
      if not vok then error(string.format("resume=%s: checkpoint train_args: %s", path, err), 0) end
    end
  end
  return ckpt_args
end

-- The optimizer's parameter groups (lr, momentum, weight_decay of each): at most n_groups, finite numbers.
function M.optimizer_groups(path, meta, n_groups)
  local ok, groups = pcall(cjson.decode, meta.optimizer_groups or "[]")
  local function bad(why) error(string.format("resume=%s: checkpoint metadata 'optimizer_groups' %s", path, why), 0) end
  if not ok or type(groups) ~= "table" then bad("is not a JSON array") end
  if #groups > n_groups then bad(string.format("has %d groups, the optimizer %d", #groups, n_groups)) end
  local out = {}
  for j = 1, #groups do
    local g = groups[j]
    if type(g) ~= "table" then bad(string.format("group %d is not an object", j)) end
    out[j] = {}
    for _, k in ipairs({ "lr", "momentum", "weight_decay" }) do
      local v = g[k]
      if v ~= nil then
        if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
          bad(string.format("group %d: %s is %s, not a finite number", j, k, tostring(v)))
        end
        out[j][k] = v
      end
    end
  end
  return out
end

-- ---- what a model's weights bring to val, predict and export ----

-- The training arguments a checkpoint hands on when the command line does not give them, as Ultralytics' YOLO
-- model does (its _reset_ckpt_args): the image size and dataset it was trained with, and single_cls.
M.INHERITED_ARGS = { "imgsz", "data", "single_cls" }

-- { imgsz =, data =, single_cls = } from the train_args of a yolotrain checkpoint or an Ultralytics .pt (each
-- checked as on the command line; missing or unusable values are left out), and the .pt's license.
function M.inherited_args(path)
  local out, train_args = {}, nil
  if type(path) == "string" and path:match("%.pt$") then
    path = require("yolotrain.utils.pt").locate(path) -- yolov8n.pt: its weights_dir copy, downloaded if need be
  end
  if type(path) ~= "string" or not utils.exists(path) then return out end
  if path:match("%.pt$") then
    local ok, ckpt = pcall(yt.io.load_pt, path)
    if ok and type(ckpt) == "table" then
      train_args = ckpt.train_args
      if type(ckpt.license) == "string" then out.license = ckpt.license end
    end
  elseif path:match("%.safetensors$") then
    local ok, meta = pcall(yt.io.load_safetensors_metadata, path)
    if ok then
      local dok, args = pcall(cjson.decode, (meta or {}).train_args or "")
      if dok then train_args = args end
    end
  end
  if type(train_args) ~= "table" then return out end
  for _, k in ipairs(M.INHERITED_ARGS) do
    local v = train_args[k]
    if v ~= nil and v ~= cjson.null and v ~= yt.io.null and pcall(cfg.check_value, k, v, 0) then out[k] = v end
  end
  return out
end

return M
