-- yolotrain.data: Ultralytics-format detection datasets (YAML resolution here; scanning, verification, caching,
-- decoding, augmentation and the threaded loader in C, see src/data and docs/data.md).
--
--   local data = require("yolotrain.data")
--   local info = data.check_det_dataset("coco128.yaml" or folder)   -- {path, train, val, test, names={[0]=..}, nc}
--   local ds = data.build_yolo_dataset(cfg, info.train, 16, info, "train", false, 32)
--   local loader = data.build_dataloader(ds, 16, 2, true, -1, 0)
--   for batch in loader do ... end        -- one epoch; #loader batches; loader:set_epoch(e); loader:close_mosaic()
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")

local M = {}

-- Where warnings and scan summaries go; replace to redirect (e.g. to the trainer's logger).
M.log = function(msg) io.stderr:write(msg, "\n") end

M.IMG_FORMATS = { "bmp", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp" }

-- ---- paths ----
local is_abs, normalize, absolute = utils.is_abs, utils.normalize, utils.absolute
local function dirname(p)
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

local function join(a, b)
  if is_abs(b) then return b end
  if a == "" or a == "." then return b end
  if a:sub(-1) == "/" then return a .. b end
  return a .. "/" .. b
end

local sys = yt.sys
local exists, is_dir = utils.exists, utils.is_dir

M._normalize, M._join, M._dirname = normalize, join, dirname

-- ---- dataset YAML ----

-- Names as a table indexed from 0 (Ultralytics' dict), from a YAML list or map.
local function names_from(raw)
  local names, n = {}, 0
  if type(raw) ~= "table" then return nil, 0 end
  if raw[1] ~= nil and raw[0] == nil then -- list
    for i, v in ipairs(raw) do names[i - 1] = tostring(v) end
    n = #raw
  else
    local maxk = -1
    for k, v in pairs(raw) do
      local ki = math.tointeger(tonumber(k))
      if ki == nil or ki < 0 or ki >= yt.data_max_classes then
        error(string.format("dataset names: key %s is not a class index (0..%d)", tostring(k), yt.data_max_classes - 1), 0)
      end
      names[ki] = tostring(v)
      if ki > maxk then maxk = ki end
    end
    for i = 0, maxk do
      if names[i] == nil then error(string.format("dataset names: class %d is missing (indices must be 0..%d)", i, maxk), 0) end
    end
    n = maxk + 1
  end
  return names, n
end

-- Datasets shipped as generators under datasets/ (data=shapes): generated on first use.
local BUILTIN = { shapes = "shapes.lua", ["shapes.yaml"] = "shapes.lua" }
local SOURCE_DIR = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local DATASETS_DIR = SOURCE_DIR .. "../../../datasets/"
-- Dataset YAMLs shipped in the Lua tree (coco128.yaml, coco8.yaml), as Ultralytics' cfg/datasets
M.SHIPPED_DIR = normalize(SOURCE_DIR .. "../cfg/datasets")

local function shipped_names()
  local names = {}
  for _, n in ipairs(sys.listdir(M.SHIPPED_DIR) or {}) do
    if n:match("%.ya?ml$") then names[#names + 1] = n end
  end
  table.sort(names)
  return names
end

-- data=NAME.yaml: the file of that name (relative to the working directory) first, then the shipped one.
local function find_yaml(dataset)
  if exists(dataset) or dataset:find("/", 1, true) then return dataset end
  local shipped = join(M.SHIPPED_DIR, dataset)
  if exists(shipped) then return shipped end
  return nil
end

-- The dataset root: the YAML's folder when `path` is empty; a relative `path` against the YAML's folder when it
-- exists there (datasets laid out beside their YAML), else against datasets_dir, as Ultralytics resolves it.
local function dataset_root(yaml_file, path)
  local root = dirname(yaml_file)
  if path ~= nil and type(path) ~= "string" then
    error(string.format("%s: 'path' must be a folder name, not %s", yaml_file, tostring(path)), 0)
  end
  if path == nil or path == "" then return root end
  if is_abs(path) then return path end
  local beside = normalize(join(root, path))
  if exists(beside) then return beside end
  return normalize(join(require("yolotrain.utils.settings").get("datasets_dir"), path))
end

-- train/val/test/minival made absolute against the root.
local function resolve_splits(yaml_file, data, path, info)
  for _, k in ipairs({ "train", "val", "test", "minival" }) do
    local v = data[k]
    if type(v) == "string" then
      local x = normalize(join(path, v))
      if not exists(x) and v:sub(1, 3) == "../" then x = normalize(join(path, v:sub(4))) end
      info[k] = x
    elseif v ~= nil and type(v) ~= "table" then
      error(string.format("%s: '%s' must be a path or a list of paths, not %s", yaml_file, k, tostring(v)), 0)
    elseif type(v) == "table" then
      local out = {}
      for i, s in ipairs(v) do out[i] = normalize(join(path, tostring(s))) end
      info[k] = out
    end
  end
end

-- The first train or val path that does not exist (and its key), or nil.
local function missing_split(info)
  for _, k in ipairs({ "train", "val" }) do
    local list = type(info[k]) == "table" and info[k] or { info[k] }
    for _, p in ipairs(list) do
      if not exists(p) then return p, k end
    end
  end
  return nil
end

-- The URLs named in a text (for the message refusing a download: that is code).
local function urls_in(text)
  local out, seen = {}, {}
  for u in text:gmatch("https?://[%w%-%._~:/%?#%[%]@!%$&%*%+,;=%%]+") do
    u = u:gsub("[%.,;:'\"%)%]]+$", "")
    if not seen[u] then seen[u] = true; out[#out + 1] = u end
  end
  return out
end

-- train/val are missing: fetch the dataset through its YAML's `download:` when that is a URL. Code (Python, or
-- a "bash ..." command) is never run: the error says what to fetch by hand instead.
local function download_missing(yaml_file, info, missing, key, opts)
  local dl = info.download
  local base = string.format("Dataset '%s': %s path '%s' does not exist", yaml_file, key, missing)
  if dl == nil or dl == yt.null or dl == "" then error(base, 0) end
  if type(dl) ~= "string" then
    error(string.format("%s, and its 'download:' is not a URL (%s)", base, type(dl)), 0)
  end
  if not require("yolotrain.utils.downloads").is_url(dl) then
    local urls = urls_in(dl)
    local named = #urls > 0 and string.format(" (the code names %s)", table.concat(urls, ", ")) or ""
    error(string.format("%s, and its 'download:' is code, which yolotrain never runs: download the dataset by " ..
      "hand%s and put it so that %s exists", base, named, missing), 0)
  end
  if opts.autodownload == false then
    error(string.format("%s (not downloading %s: autodownload is off)", base, dl), 0)
  end
  local downloads = require("yolotrain.utils.downloads")
  downloads.log(string.format("Dataset '%s' images not found, missing path '%s'", yaml_file, missing))
  downloads.download_dataset(dl, require("yolotrain.utils.settings").get("datasets_dir"), missing,
    function() return missing_split(info) == nil end)
  local still, k2 = missing_split(info)
  if still then
    error(string.format("Dataset '%s': %s path '%s' does not exist after downloading %s: its 'path:' must name " ..
      "the folder the archive unpacks to", yaml_file, k2, still, dl), 0)
  end
end

--- Resolves a dataset YAML (or a folder holding data.yaml) into {path, train, val, test, names, nc, yaml_file}.
--- train/val/test become absolute paths (string or list). A bare YAML name not in the working directory is
--- looked for among the shipped dataset YAMLs (coco128.yaml). `path` defaults to the YAML's folder (see
--- dataset_root for a relative one). When train or val is missing and the YAML's `download:` is a URL, the dataset
--- is downloaded into datasets_dir and unpacked there (opts.autodownload = false: an error instead).
function M.check_det_dataset(dataset, opts)
  opts = opts or {}
  if type(dataset) == "table" then return dataset end
  if type(dataset) ~= "string" or dataset == "" then error("data= must be a dataset YAML or a folder", 0) end
  if BUILTIN[dataset] and not exists(dataset) then
    dataset = dofile(DATASETS_DIR .. BUILTIN[dataset])()
  end
  local yaml_file = dataset
  if not dataset:match("%.ya?ml$") then
    if is_dir(dataset) then
      yaml_file = join(dataset, "data.yaml")
      if not exists(yaml_file) and exists(join(dataset, "data.yml")) then yaml_file = join(dataset, "data.yml") end
    end
  else
    yaml_file = find_yaml(dataset)
    if yaml_file == nil then
      error(string.format("Dataset '%s' not found (no such YAML file here, nor among the shipped datasets: %s)",
        dataset, table.concat(shipped_names(), ", ")), 0)
    end
  end
  if not exists(yaml_file) then error(string.format("Dataset '%s' not found (no such YAML file)", yaml_file), 0) end
  if not yt.load_yaml then error("yolotrain.core has no load_yaml: cannot read " .. yaml_file, 0) end
  local data = yt.load_yaml(yaml_file)
  if type(data) ~= "table" then error(string.format("%s: expected a mapping at the top level", yaml_file), 0) end
  yaml_file = absolute(yaml_file)
  if data.val == nil and data.validation ~= nil then data.val = data.validation; data.validation = nil end
  for _, k in ipairs({ "train", "val" }) do
    if data[k] == nil then
      error(string.format("%s '%s:' key missing. 'train' and 'val' are required in all data YAMLs.", yaml_file, k), 0)
    end
  end
  if data.names == nil and data.nc == nil then
    error(string.format("%s: key 'names' (or 'nc') missing", yaml_file), 0)
  end
  local names, n
  if data.names ~= nil then
    names, n = names_from(data.names)
    if names == nil then error(string.format("%s: 'names' must be a list or a map", yaml_file), 0) end
  else
    names, n = {}, math.tointeger(data.nc)
    if n == nil or n < 1 or n > yt.data_max_classes then
      error(string.format("%s: nc must be an integer in 1..%d", yaml_file, yt.data_max_classes), 0)
    end
    for i = 0, n - 1 do names[i] = "class_" .. i end
  end
  if n > yt.data_max_classes then
    error(string.format("%s: %d names, more than the %d classes a dataset may have", yaml_file, n, yt.data_max_classes), 0)
  end
  if data.nc ~= nil and math.tointeger(data.nc) ~= n then
    error(string.format("%s names length %d and 'nc: %s' must match.", yaml_file, n, tostring(data.nc)), 0)
  end
  local path = dataset_root(yaml_file, data.path)
  local info = { yaml_file = yaml_file, path = path, names = names, nc = n }
  for k, v in pairs(data) do
    if info[k] == nil and k ~= "names" then info[k] = v end
  end
  resolve_splits(yaml_file, data, path, info)
  local missing, key = missing_split(info)
  if missing then download_missing(yaml_file, info, missing, key, opts) end
  info.nc = n
  return info
end

-- ---- datasets ----

local Dataset = {}
Dataset.__index = Dataset
Dataset.__len = function(self) return #self._c end

function Dataset:labels(i) return self._c:labels(i) end
-- Every image's labels in dataset order, concatenated: cls (N, 1), bboxes (N, 4) normalised xywh.
function Dataset:all_labels() return self._c:all_labels() end
function Dataset:im_files() return self._c:im_files() end
function Dataset:close_mosaic() self._c:close_mosaic() end
function Dataset:summary() return self._c:summary() end
function Dataset:msgs() return self._c:msgs() end
function Dataset:batch_shapes() return self._c:batch_shapes() end
function Dataset:cache_stats() return self._c:cache_stats() end

local HYP_KEYS = { "mosaic", "degrees", "translate", "scale", "shear", "perspective", "flipud", "fliplr",
  "hsv_h", "hsv_s", "hsv_v", "mixup" }

local DEFAULTS = { imgsz = 640, mosaic = 1.0, degrees = 0.0, translate = 0.1, scale = 0.5, shear = 0.0,
  perspective = 0.0, flipud = 0.0, fliplr = 0.5, hsv_h = 0.015, hsv_s = 0.7, hsv_v = 0.4, mixup = 0.0,
  copy_paste = 0.0, fraction = 1.0 }

local function arg(cfg, k)
  local v = cfg[k]
  if v == nil then return DEFAULTS[k] end
  return v
end

--- Builds a YOLO detection dataset (Ultralytics' build_yolo_dataset): augment for mode "train", rect batches
--- when cfg.rect or rect, pad 0 (train) / 0.5 (val), fraction only for training.
function M.build_yolo_dataset(cfg, img_path, batch, data, mode, rect, stride)
  cfg = cfg or {}
  mode = mode or "train"
  local train = mode == "train"
  if (tonumber(arg(cfg, "copy_paste")) or 0) > 0 then
    error("copy_paste > 0 is not supported (it needs segment masks); set copy_paste=0", 0)
  end
  local imgsz = arg(cfg, "imgsz")
  if type(imgsz) == "table" then imgsz = math.max(table.unpack(imgsz)) end
  imgsz = math.tointeger(tonumber(imgsz))
  if not imgsz or imgsz < 32 then error("imgsz must be an integer >= 32", 0) end
  local files = yt.data_list_images(img_path)
  local cache = cfg.cache
  local cache_ram = cache == true or cache == "ram" or cache == "disk" or cache == "True"
  local opts = {
    imgsz = imgsz, augment = train, rect = (cfg.rect or rect) and true or false, stride = math.tointeger(stride) or 32,
    pad = train and 0.0 or 0.5, batch_size = batch or 16, cache_ram = cache_ram,
    single_cls = cfg.single_cls and true or false, fraction = train and (arg(cfg, "fraction")) or 1.0,
    nc = data and data.nc or 80, prefix = mode .. ": ", label_cache = cfg.label_cache ~= false,
  }
  for _, k in ipairs(HYP_KEYS) do opts[k] = tonumber(arg(cfg, k)) end
  if cfg.classes ~= nil then
    opts.classes = type(cfg.classes) == "table" and cfg.classes or { math.tointeger(cfg.classes) }
  end
  local c = yt.data_dataset(files, opts)
  local msgs = c:msgs()
  for _, m in ipairs(msgs) do M.log(m) end
  if cache == "disk" then M.log(mode .. ": WARNING cache='disk' is not supported, caching images in RAM instead") end
  local summary = c:summary()
  M.log(summary)
  local self = setmetatable({ _c = c, rect = opts.rect, augment = train, imgsz = imgsz, batch_size = opts.batch_size,
    data = data, names = data and data.names, nc = opts.nc, mode = mode, img_path = img_path, stride = opts.stride,
    prefix = opts.prefix, msgs_list = msgs, summary_line = summary }, Dataset)
  return self
end

-- ---- loader ----

local Loader = {}
Loader.__index = Loader
Loader.__len = function(self) return #self._c end
-- `for batch in loader do ... end` iterates one epoch (the next call starts the next epoch).
Loader.__call = function(self) return self._c:next() end

function Loader:iter()
  local c = self._c
  return function() return c:next() end
end
function Loader:next() return self._c:next() end
function Loader:set_epoch(e) self._c:set_epoch(e) end
function Loader:epoch() return self._c:epoch() end
function Loader:close_mosaic() self._c:close_mosaic(); self.dataset.mosaic_closed = true end
-- The mosaic probability of the batches not yet taken (trainer:set{mosaic=}); a closed mosaic stays closed.
function Loader:set_mosaic(p) if not self.dataset.mosaic_closed then self._c:set_mosaic(p) end end
function Loader:reset() self._c:set_epoch(self._c:epoch()) end
function Loader:dataset_size() return #self.dataset end
function Loader:build(epoch, i) return self._c:build(epoch, i) end
function Loader:close() self._c:close() end

--- A loader over dataset (from build_yolo_dataset): `workers` threads decode and augment ahead; identical batches
--- for any worker count given seed; reshuffled every epoch when shuffle. With world_size > 1 each rank gets a
--- disjoint shard of the same shuffled order (padded to equal length); `batch` is then this rank's batch.
function M.build_dataloader(dataset, batch, workers, shuffle, rank, seed, world_size)
  if getmetatable(dataset) ~= Dataset then error("build_dataloader: dataset must come from build_yolo_dataset", 2) end
  batch = math.min(math.tointeger(batch) or 16, #dataset)
  local ncpu = sys.nproc()
  local nw = math.min(ncpu, math.tointeger(workers) or 0)
  if dataset.rect and shuffle then
    M.log("WARNING 'rect=True' is incompatible with DataLoader shuffle, setting shuffle=False")
    shuffle = false
  end
  if dataset.rect and batch ~= math.min(dataset.batch_size, #dataset) then
    error(string.format("build_dataloader: rect dataset was built for batch %d, got %d", dataset.batch_size, batch), 2)
  end
  world_size = math.tointeger(world_size) or 1
  local shard_rank = (world_size > 1) and math.max(math.tointeger(rank) or 0, 0) or 0
  local c = yt.data_loader(dataset._c, batch, nw, shuffle and true or false, math.tointeger(seed) or 0,
    world_size, shard_rank)
  return setmetatable({ _c = c, dataset = dataset, batch_size = batch, num_workers = nw, shuffle = shuffle and true or false,
    rank = rank }, Loader)
end

--- Writes a grid of the batch's images (at most 16) with boxes and class names to path (.jpg or .png).
function M.plot_batch(batch, names, path)
  return yt.data_plot_batch(batch, names or {}, path)
end

M.Dataset, M.Loader = Dataset, Loader -- the metatables of what build_yolo_dataset / build_dataloader return

M.load_image = yt.data_load_image
M.letterbox = yt.data_letterbox
M.list_images = yt.data_list_images

return M
