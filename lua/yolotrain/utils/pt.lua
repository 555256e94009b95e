-- Ultralytics `.pt` checkpoints, read as data by yt.io.load_pt (src/io/pt.c: nothing in the file is executed).
--
--   local pt = require("yolotrain.utils.pt")
--   local model, ckpt = pt.load_model("yolov8n.pt")   -- architecture, nc, names and weights from the file
--   local sd = pt.state_dict("best.pt")                -- name -> tensor, with state_dict()'s names (F32, I64)
--   pt.export_safetensors("best.pt")                   -- best.safetensors beside it: a stripped yolotrain checkpoint
--
-- The model of a checkpoint is its EMA when it has one (a save_period or last checkpoint taken mid-training),
-- else `model` (a stripped best.pt, or a released yolov8n.pt), as Ultralytics' attempt_load_weights does. Its
-- pickled `yaml` dict is the architecture; `nc` and `names` are the model's own.
local yt = require("yolotrain.core")
local cjson = require("cjson")
local checkpoint = require("yolotrain.engine.checkpoint")

local pt = {}

function pt.is_pt(path) return type(path) == "string" and path:match("%.pt$") ~= nil end

-- The file a .pt name stands for: the path itself when it exists, else (yolov8n.pt ...) the copy in the
-- weights_dir setting, downloaded there from the Ultralytics assets release when missing (utils/downloads.lua).
-- Every reader of .pt weights (training, val, predict, export, pretrained=) comes through here.
function pt.locate(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return path
  end
  return require("yolotrain.utils.downloads").attempt_download_asset(path)
end

-- The checkpoint as plain data and its model record (the pickled DetectionModel: state_dict, yaml, nc, names).
function pt.load(path)
  local ckpt = yt.io.load_pt(pt.locate(path))
  if type(ckpt) ~= "table" then
    error(string.format("%s: not an Ultralytics checkpoint (its top level is not a dict)", path), 0)
  end
  local rec = ckpt.ema
  if type(rec) ~= "table" or not rec.state_dict then rec = ckpt.model end
  if type(rec) ~= "table" or not rec.state_dict then
    error(string.format("%s holds no pickled model (its 'ema' and 'model' are empty)", path), 0)
  end
  if type(rec.yaml) ~= "table" then
    error(string.format("%s: its model carries no parsed model YAML (not a YOLOv8 DetectionModel?)", path), 0)
  end
  return ckpt, rec
end

function pt.state_dict(path)
  local _, rec = pt.load(path)
  return rec.state_dict
end

-- A copy of v with pickled None (yt.io.null) spelt "None", as a model YAML and its JSON form spell it.
local function plain(v, depth)
  if depth > 32 then error("the checkpoint's model YAML is nested deeper than 32", 0) end
  if v == yt.io.null then return "None" end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    out[k] = plain(x, depth + 1)
  end
  return out
end

-- The model YAML dict of a model record (Ultralytics pickles the parsed dict; yaml_file names the original).
function pt.model_cfg(rec) return plain(rec.yaml, 0) end

-- name list (index 0 first) of a pickled names dict {0: 'person', ...}, nc entries
local function names_list(names, nc)
  local list = {}
  for i = 0, nc - 1 do
    local n = type(names) == "table" and names[i] or nil
    list[i + 1] = type(n) == "string" and n or tostring(i)
  end
  return list
end

local function model_nc(path, rec)
  local nc = rec.nc or rec.yaml.nc
  if math.type(nc) ~= "integer" or nc < 1 or nc > yt.data.max_classes then
    error(
      string.format("%s: the model's nc is %s, not a class count in 1..%d", path, tostring(nc), yt.data.max_classes),
      0
    )
  end
  return nc
end

-- Builds the checkpoint's model with its own nc and names and loads its weights strictly. Returns model, ckpt.
function pt.load_model(path, opts)
  opts = opts or {}
  local tasks = require("yolotrain.nn.tasks")
  local ckpt, rec = pt.load(path)
  local nc = model_nc(path, rec)
  local names = {}
  for i, n in ipairs(names_list(rec.names, nc)) do
    names[i - 1] = n
  end
  local cfg = pt.model_cfg(rec)
  cfg.nc = nc
  local model = tasks.Detection_Model(cfg, { nc = nc, names = names, verbose = opts.verbose })
  local ok, err = pcall(model.load_state_dict, model, rec.state_dict)
  if not ok then error(string.format("%s: its weights do not fit its own architecture: %s", path, err), 0) end
  return model, ckpt
end

-- The checkpoint's train_args (a dict, or an Ultralytics namespace object pickled with its attributes) as JSON.
local function train_args_json(ckpt)
  local args = {}
  for k, v in pairs(type(ckpt.train_args) == "table" and ckpt.train_args or {}) do
    if type(k) == "string" and k:sub(1, 2) ~= "__" and (type(v) ~= "table" and type(v) ~= "userdata") then
      args[k] = v
    end
  end
  return cjson.encode(args)
end

-- Writes the checkpoint's model as a stripped yolotrain checkpoint (<stem>.safetensors beside the .pt unless out
-- is given): tensors model.<name> in F32 (fp16 -> fp32 is exact), metadata yaml, nc, names, train_args. model=
-- loads it for val, predict, export and as the start of a training. Returns the path written.
function pt.export_safetensors(path, out)
  local ckpt, rec = pt.load(path)
  out = out or (path:gsub("%.pt$", "") .. ".safetensors")
  local nc = model_nc(path, rec)
  local tensors = {}
  for _, name in ipairs(rec.state_dict_order) do
    tensors["model." .. name] = rec.state_dict[name]
  end
  local yaml = pt.model_cfg(rec)
  yaml.nc = nc
  local meta = {
    format = checkpoint.FORMAT,
    epoch = tostring(checkpoint.STRIPPED_EPOCH),
    yaml = cjson.encode(yaml),
    nc = tostring(nc),
    names = cjson.encode(names_list(rec.names, nc)),
    train_args = train_args_json(ckpt),
    date = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    version = yt.version,
    source = path,
  }
  yt.io.save_safetensors(out, tensors, meta)
  for _, t in pairs(rec.state_dict) do
    t:free()
  end
  return out
end

return pt
