-- yolotrain.data: Ultralytics-format detection datasets (YAML resolution here; scanning, verification, caching,
-- decoding, augmentation and the threaded loader in C, see src/data and docs/data.md).
--
--   local data = require("yolotrain.data")
--   local info = data.check_det_dataset("coco128.yaml" or folder)   -- {path, train, val, test, names={[0]=..}, nc}
--   local ds = data.build_yolo_dataset(cfg, info.train, 16, info, "train", false, 32)   -- a data.Dataset
--   local loader = data.build_dataloader(ds, 16, 2, true, -1, 0)                       -- a data.Loader
--   for batch in loader do ... end        -- one epoch; #loader batches; loader:set_epoch(e); loader:close_mosaic()
-- Datasets are classes (yolotrain.data.dataset): data.Dataset:extend("Mine") overrides any step of the build.
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
  local names, n = {}
  if type(raw) ~= "table" then return nil, 0 end
  if raw[1] ~= nil and raw[0] == nil then -- list
    for i, v in ipairs(raw) do
      names[i - 1] = tostring(v)
    end
    n = #raw
  else
    local maxk = -1
    for k, v in pairs(raw) do
      local ki = math.tointeger(tonumber(k))
      if ki == nil or ki < 0 or ki >= yt.data.max_classes then
        error(
          string.format("dataset names: key %s is not a class index (0..%d)", tostring(k), yt.data.max_classes - 1),
          0
        )
      end
      names[ki] = tostring(v)
      if ki > maxk then maxk = ki end
    end
    for i = 0, maxk do
      if names[i] == nil then
        error(string.format("dataset names: class %d is missing (indices must be 0..%d)", i, maxk), 0)
      end
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
      for i, s in ipairs(v) do
        out[i] = normalize(join(path, tostring(s)))
      end
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
    if not seen[u] then
      seen[u] = true
      out[#out + 1] = u
    end
  end
  return out
end

-- train/val are missing: fetch the dataset through its YAML's `download:` when that is a URL. Code (Python, or
-- a "bash ..." command) is never run: the error says what to fetch by hand instead.
local function download_missing(yaml_file, info, missing, key, opts)
  local dl = info.download
  local base = string.format("Dataset '%s': %s path '%s' does not exist", yaml_file, key, missing)
  if dl == nil or dl == yt.io.null or dl == "" then error(base, 0) end
  if type(dl) ~= "string" then error(string.format("%s, and its 'download:' is not a URL (%s)", base, type(dl)), 0) end
  if not require("yolotrain.utils.downloads").is_url(dl) then
    local urls = urls_in(dl)
    local named = #urls > 0 and string.format(" (the code names %s)", table.concat(urls, ", ")) or ""
    error(
      string.format(
        "%s, and its 'download:' is code, which yolotrain never runs: download the dataset by "
          .. "hand%s and put it so that %s exists",
        base,
        named,
        missing
      ),
      0
    )
  end
  if opts.autodownload == false then
    error(string.format("%s (not downloading %s: autodownload is off)", base, dl), 0)
  end
  local downloads = require("yolotrain.utils.downloads")
  downloads.log(string.format("Dataset '%s' images not found, missing path '%s'", yaml_file, missing))
  downloads.download_dataset(
    dl,
    require("yolotrain.utils.settings").get("datasets_dir"),
    missing,
    function() return missing_split(info) == nil end
  )
  local still, k2 = missing_split(info)
  if still then
    error(
      string.format(
        "Dataset '%s': %s path '%s' does not exist after downloading %s: its 'path:' must name "
          .. "the folder the archive unpacks to",
        yaml_file,
        k2,
        still,
        dl
      ),
      0
    )
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
  if BUILTIN[dataset] and not exists(dataset) then dataset = dofile(DATASETS_DIR .. BUILTIN[dataset])() end
  local yaml_file = dataset
  if not dataset:match("%.ya?ml$") then
    if is_dir(dataset) then
      yaml_file = join(dataset, "data.yaml")
      if not exists(yaml_file) and exists(join(dataset, "data.yml")) then yaml_file = join(dataset, "data.yml") end
    end
  else
    yaml_file = find_yaml(dataset)
    if yaml_file == nil then
      error(
        string.format(
          "Dataset '%s' not found (no such YAML file here, nor among the shipped datasets: %s)",
          dataset,
          table.concat(shipped_names(), ", ")
        ),
        0
      )
    end
  end
  if not exists(yaml_file) then error(string.format("Dataset '%s' not found (no such YAML file)", yaml_file), 0) end
  if not yt.io.load_yaml then error("yolotrain.core has no load_yaml: cannot read " .. yaml_file, 0) end
  local data = yt.io.load_yaml(yaml_file)
  if type(data) ~= "table" then error(string.format("%s: expected a mapping at the top level", yaml_file), 0) end
  yaml_file = absolute(yaml_file)
  if data.val == nil and data.validation ~= nil then
    data.val = data.validation
    data.validation = nil
  end
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
    if n == nil or n < 1 or n > yt.data.max_classes then
      error(string.format("%s: nc must be an integer in 1..%d", yaml_file, yt.data.max_classes), 0)
    end
    for i = 0, n - 1 do
      names[i] = "class_" .. i
    end
  end
  if n > yt.data.max_classes then
    error(
      string.format("%s: %d names, more than the %d classes a dataset may have", yaml_file, n, yt.data.max_classes),
      0
    )
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

local datasets = require("yolotrain.data.dataset")
M.Base_Dataset, M.YOLO_Dataset = datasets.Base_Dataset, datasets.YOLO_Dataset
M.Dataset = M.YOLO_Dataset -- the class to extend for a custom dataset

-- The arguments as a dataset reads them: cfg over the defaults of cfg/default.lua (the one home of every default).
local function hyp_of(cfg)
  local h = require("yolotrain.cfg.default").copy()
  for k, v in pairs(cfg or {}) do
    h[k] = v
  end
  return h
end

--- Builds a YOLO detection dataset (Ultralytics' build_yolo_dataset): augment for mode "train", rect batches
--- when cfg.rect or rect, pad 0 (train) / 0.5 (val), fraction only for training. cls (default YOLO_Dataset) is
--- the dataset class to build: a subclass made with data.Dataset:extend("Name").
function M.build_yolo_dataset(cfg, img_path, batch, data, mode, rect, stride, cls)
  local hyp = hyp_of(cfg)
  mode = mode or "train"
  local train = mode == "train"
  local imgsz = hyp.imgsz
  if type(imgsz) == "table" then imgsz = math.max(table.unpack(imgsz)) end
  imgsz = math.tointeger(tonumber(imgsz))
  if not imgsz or imgsz < 32 then error("imgsz must be an integer >= 32", 0) end
  local Cls = cls or M.YOLO_Dataset
  return Cls {
    img_path = img_path,
    imgsz = imgsz,
    batch_size = batch or hyp.batch,
    augment = train,
    hyp = hyp,
    rect = (hyp.rect or rect) and true or false,
    stride = math.tointeger(stride) or 32,
    pad = train and 0.0 or 0.5,
    single_cls = hyp.single_cls,
    classes = hyp.classes,
    fraction = train and hyp.fraction or 1.0,
    cache = hyp.cache,
    label_cache = hyp.label_cache,
    data = data,
    prefix = mode .. ": ",
  }
end

M.Loader = require("yolotrain.data.loader")

--- A loader over dataset (a data.Dataset): `workers` threads decode and augment ahead; identical batches for any
--- worker count given seed; reshuffled every epoch when shuffle (not for rect datasets: a warning says so). With
--- world_size > 1 each rank gets a disjoint shard of the same shuffled order (padded to equal length); `batch` is
--- then this rank's batch.
function M.build_dataloader(dataset, batch, workers, shuffle, rank, seed, world_size)
  return M.Loader(dataset, batch, workers, shuffle, rank, seed, world_size)
end

--- Writes a grid of the batch's images (at most 16) with boxes and class names to path (.jpg or .png).
function M.plot_batch(batch, names, path) return yt.data.plot_batch(batch, names or {}, path) end

M.load_image = yt.data.load_image
M.letterbox = yt.data.letterbox
M.list_images = yt.data.list_images

return M
