-- Datasets as classes of the engine (the roles of Ultralytics' BaseDataset and YOLODataset). A dataset is built
-- as a list of named steps, each a method a subclass may override:
--
--   im_files = self:get_img_files(img_path)     the image files (a folder, a .txt list, an image, or a list)
--   labels   = self:get_labels()                the label table: { {im_file, shape = {h, w}, cls = N x 1,
--                                                 bboxes = N x 4 normalised cx cy w h[, segments]}, ... }
--   self:update_labels(include_class)           keep only some classes; single_cls
--   (the C dataset is made from self.labels)
--   self:set_rect()                             rect batches: sort by aspect ratio, one shape per batch
--   transforms = self:build_transforms(hyp)     what a sample goes through, declared as data (see below)
--
-- The transforms run in C on the loader threads (src/data/dataset.c); no Lua runs there. A list of steps, in order:
--   { "mosaic", p = }  { "letterbox", scaleup = }
--   { "random_perspective", degrees =, translate =, scale =, shear =, perspective = }  { "mixup", p = }
--   { "random_hsv", hgain =, sgain =, vgain = }  { "flipud", p = }  { "fliplr", p = }
-- Every parameter is given; a letterbox is required and only a mosaic may come before it (it sizes the images that
-- are not a mosaic); a mixup blends with a partner that went through the steps before it.
--
-- load_image(i) (1-based) may be overridden in Lua: it returns a uint8 H x W x 3 RGB tensor (any size: it is
-- resized to the long side imgsz). Such a dataset builds its samples on the main thread (the loader gets no
-- worker threads), so it is slower; the base method decodes the file (self:load_image(i) from an override).
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local utils = require("yolotrain.utils")

local function log(msg) require("yolotrain.data").log(msg) end

local Base_Dataset = class.Object:extend("Base_Dataset")

Base_Dataset.__len = function(self) return #self._c end

-- opts: img_path, imgsz, batch_size, augment, hyp (the arguments: cfg/default.lua's names), rect, stride, pad,
-- single_cls, classes, fraction, cache (true | "ram" | "disk"), label_cache, data ({nc, names}), prefix.
function Base_Dataset:init(opts)
  if type(opts) ~= "table" or opts.img_path == nil then
    error(
      string.format("%s{ img_path = ..., imgsz = ..., hyp = ... }: a table of options with img_path", self:class_name()),
      2
    )
  end
  self.img_path = opts.img_path
  self.imgsz = opts.imgsz
  self.batch_size = opts.batch_size
  self.augment = opts.augment and true or false
  self.hyp = opts.hyp
  self.rect = opts.rect and true or false
  self.stride = opts.stride
  self.pad = opts.pad
  self.single_cls = opts.single_cls and true or false
  self.fraction = opts.fraction
  self.cache = opts.cache
  self.label_cache = opts.label_cache ~= false
  self.data = opts.data
  self.names = opts.data and opts.data.names
  self.nc = opts.data and opts.data.nc or 80
  self.prefix = opts.prefix or ""
  self:_build(opts.classes)
end

-- The build, as the list of its steps.
function Base_Dataset:_build(include_class)
  self.im_files = self:get_img_files(self.img_path)
  self.labels = self:get_labels()
  self:update_labels(include_class)
  self:_set_im_files()
  self:_callable_labels()
  self._c = yt.data.dataset(self.labels, {
    imgsz = self.imgsz,
    augment = self.augment,
    stride = self.stride,
    pad = self.pad,
    batch_size = self.batch_size,
    cache_ram = self:_cache_ram(),
    nc = self.nc,
  })
  self.lua_images = self.load_image ~= Base_Dataset.load_image
  if self.lua_images then self._c:set_image_source(self) end
  self.ni = #self._c
  if self.rect then self:set_rect() end
  self.transforms = self:build_transforms(self.hyp)
  self._c:set_transforms(self.transforms)
  if self:_cache_ram() then self._c:cache_all() end
end

function Base_Dataset:_cache_ram()
  local c = self.cache
  return c == true or c == "ram" or c == "disk" or c == "True"
end

-- The image files under img_path, sorted; the first round(n * fraction) of them when fraction < 1.
function Base_Dataset:get_img_files(img_path)
  local files = yt.data.list_images(img_path)
  local f = self.fraction or 1.0
  if f < 1.0 then
    local n = math.max(1, math.tointeger(utils.round_half_even(#files * f)))
    for i = #files, n + 1, -1 do
      files[i] = nil
    end
  end
  return files
end

function Base_Dataset:get_labels()
  error(self:class_name() .. ":get_labels() must return the label table (see yolotrain.data.YOLO_Dataset)", 2)
end

-- rows x cols float32 tensor from a flat list
local function f32(rows, cols, flat)
  if rows == 0 then return yt.zeros({ 0, cols }) end
  local nested = {}
  for r = 1, rows do
    local row = {}
    for c = 1, cols do
      row[c] = flat[(r - 1) * cols + c]
    end
    nested[r] = row
  end
  return yt.tensor(nested)
end

-- Keeps only the instances of the classes in include_class (a list, an integer, or nil for all); single_cls
-- makes every class 0.
function Base_Dataset:update_labels(include_class)
  local keep
  if include_class ~= nil then
    keep = {}
    for _, c in ipairs(type(include_class) == "table" and include_class or { include_class }) do
      keep[math.tointeger(c) or c] = true
    end
  end
  for _, l in ipairs(self.labels) do
    local n = l.cls:numel()
    if keep and n > 0 then
      local cls, boxes, kc, kb, segs = l.cls:tolist(), l.bboxes:tolist(), {}, {}, l.segments and {}
      for k = 1, n do
        if keep[math.tointeger(cls[k])] then
          kc[#kc + 1] = cls[k]
          for j = 1, 4 do
            kb[#kb + 1] = boxes[4 * (k - 1) + j]
          end
          if segs then segs[#segs + 1] = l.segments[k] end
        end
      end
      l.cls, l.bboxes, l.segments = f32(#kc, 1, kc), f32(#kc, 4, kb), segs
      n = #kc
    end
    if self.single_cls and n > 0 then l.cls = yt.zeros({ n, 1 }) end
  end
end

-- Image i (1-based) from its file with its long side at imgsz: a uint8 H x W x 3 tensor. Overriding it makes
-- the dataset build its samples on the main thread (see the header).
function Base_Dataset:load_image(i) return self._c:decode_image(i) end

-- Rect batches: images sorted by aspect ratio, a shape per batch of batch_size (the labels follow the order).
function Base_Dataset:set_rect()
  local order = self._c:set_rect()
  local sorted = {}
  for i, j in ipairs(order) do
    sorted[i] = self.labels[j]
  end
  self.labels = sorted
  self:_set_im_files()
  self:_callable_labels()
  self.rect = true
end

function Base_Dataset:build_transforms(hyp)
  error(self:class_name() .. ":build_transforms(hyp) must return the list of transforms", 2)
end

-- Mosaic and mixup off (the last close_mosaic epochs): the transforms are built again from hyp with them at 0.
function Base_Dataset:close_mosaic(hyp)
  local h = {}
  for k, v in pairs(hyp or self.hyp) do
    h[k] = v
  end
  h.mosaic, h.mixup, h.copy_paste = 0.0, 0.0, 0.0
  self.transforms = self:build_transforms(h)
  self._c:set_transforms(self.transforms)
  self.mosaic_closed = true
end

-- A live change of the mosaic probability (trainer:set{mosaic=}): the transforms are built again with it from
-- the next batch built; a closed mosaic stays closed.
function Base_Dataset:set_mosaic(p)
  local h = {}
  for k, v in pairs(self.hyp or {}) do
    h[k] = v
  end
  h.mosaic = p
  self.hyp = h
  if self.mosaic_closed then return end
  self.transforms = self:build_transforms(h)
  self._c:set_transforms(self.transforms)
end

-- im_files from the labels (a list; calling it, ds:im_files(), gives the same list as before)
local callable_list = { __call = function(t) return t end }
function Base_Dataset:_set_im_files()
  local files = {}
  for i, l in ipairs(self.labels) do
    files[i] = l.im_file
  end
  self.im_files = setmetatable(files, callable_list)
end

-- ds:labels(i), the form before labels became the label table, still gives the entry of image i
function Base_Dataset:_callable_labels()
  if getmetatable(self.labels) == nil then setmetatable(self.labels, { __call = function(t, _, i) return t[i] end }) end
end
-- Every image's labels in dataset order, concatenated: cls (N, 1), bboxes (N, 4) normalised xywh.
function Base_Dataset:all_labels() return self._c:all_labels() end
function Base_Dataset:batch_shapes() return self._c:batch_shapes() end
function Base_Dataset:cache_stats() return self._c:cache_stats() end
-- The scan summary line and its counts { found, missing, empty, corrupt, from_cache, cache_path }.
function Base_Dataset:summary() return self.scan_summary, self.scan_stats end
function Base_Dataset:msgs() return self.scan_msgs or {} end

---------------------------------------------------------------------------------------------------------------
-- YOLO_Dataset: Ultralytics-format detection labels (labels/<name>.txt beside images/), the YOLOv8 transforms
---------------------------------------------------------------------------------------------------------------
local YOLO_Dataset = Base_Dataset:extend("YOLO_Dataset")

-- Verifies every image and label file (in parallel; the label cache when it matches), logs the warnings and the
-- summary line, and returns the label table of the valid images.
function YOLO_Dataset:get_labels()
  local labels, stats, msgs = yt.data.scan(
    self.im_files,
    { nc = self.nc, single_cls = self.single_cls, label_cache = self.label_cache, prefix = self.prefix }
  )
  for _, m in ipairs(msgs) do
    log(m)
  end
  if self.cache == "disk" then
    log(self.prefix .. "WARNING cache='disk' is not supported, caching images in RAM instead")
  end
  log(stats.summary)
  self.scan_stats, self.scan_summary, self.scan_msgs = stats, stats.summary, msgs
  self.labels = labels
  self:_set_im_files()
  return labels
end

-- The YOLOv8 pipeline: training mosaic -> letterbox -> random perspective -> mixup -> HSV -> flips (mosaic and
-- mixup off for rect datasets); validation letterbox without enlarging.
function YOLO_Dataset:build_transforms(hyp)
  if not self.augment then return { { "letterbox", scaleup = false } } end
  if (tonumber(hyp.copy_paste) or 0) > 0 then
    error("copy_paste > 0 is not supported (it needs segment masks); set copy_paste=0", 0)
  end
  local whole = self.rect -- rect batches take whole images
  return {
    { "mosaic", p = whole and 0.0 or hyp.mosaic },
    { "letterbox", scaleup = true },
    {
      "random_perspective",
      degrees = hyp.degrees,
      translate = hyp.translate,
      scale = hyp.scale,
      shear = hyp.shear,
      perspective = hyp.perspective,
    },
    { "mixup", p = whole and 0.0 or hyp.mixup },
    { "random_hsv", hgain = hyp.hsv_h, sgain = hyp.hsv_s, vgain = hyp.hsv_v },
    { "flipud", p = hyp.flipud },
    { "fliplr", p = hyp.fliplr },
  }
end

return { Base_Dataset = Base_Dataset, YOLO_Dataset = YOLO_Dataset }
