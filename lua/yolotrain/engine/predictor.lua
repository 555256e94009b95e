-- Engine_Predictor: the inference loop of Ultralytics 8.2's BasePredictor, in Lua (Detection_Predictor in
-- yolotrain.models.yolo.detect.predict implements the detection steps).
--
--   local p = Detection_Predictor{ overrides = { model = "best.safetensors", conf = 0.25, save = false } }
--   local results = p("path/to/images")                   -- a list of Results
--   for r in p:stream_inference("big_folder") do ... end  -- one image at a time (nothing accumulates)
--
-- Sources: an image file, a folder (its images, sorted), a glob ("dir/*.jpg"), a .txt file listing image paths,
-- an (H, W, 3) uint8 RGB tensor, a (B, 3, H, W) float 0..1 tensor (sizes multiple of the stride), or a list of
-- those. Callbacks: on_predict_start, on_predict_batch_start, on_predict_postprocess_end, on_predict_batch_end,
-- on_predict_end. Overridable steps: setup_model, setup_source, preprocess, inference, postprocess,
-- write_results, save_predicted_images.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local cfgmod = require("yolotrain.cfg")
local callbacks = require("yolotrain.utils.callbacks")
local utils = require("yolotrain.utils")
local results_mod = require("yolotrain.engine.results")

local ops = results_mod.ops

local Engine_Predictor = class.Object:extend("Engine_Predictor")
callbacks.mixin(Engine_Predictor)

local log = utils.log

local IMG_EXT = { bmp = true, jpeg = true, jpg = true, mpo = true, png = true, tif = true, tiff = true, webp = true }
local VID_EXT = {
  asf = true,
  avi = true,
  gif = true,
  m4v = true,
  mkv = true,
  mov = true,
  mp4 = true,
  mpeg = true,
  mpg = true,
  ts = true,
  wmv = true,
  webm = true,
}

local function ext_of(p) return (p:match("%.([^./]+)$") or ""):lower() end

-- Engine_Predictor{ cfg = , overrides = , _callbacks = } or Engine_Predictor(cfg, overrides, _callbacks)
function Engine_Predictor:init(cfg, overrides, _callbacks)
  if
    type(cfg) == "table"
    and overrides == nil
    and _callbacks == nil
    and (cfg.overrides ~= nil or cfg.cfg ~= nil or cfg._callbacks ~= nil or next(cfg) == nil)
  then
    cfg, overrides, _callbacks = cfg.cfg, cfg.overrides, cfg._callbacks
  end
  if type(cfg) == "string" then cfg = cfgmod.load_args_yaml(cfg) end
  overrides = overrides or {}
  local base = cfgmod.get_cfg(cfg or {})
  self.args = cfgmod.get_cfg(overrides, base)
  self.args.mode = "predict"
  if overrides.batch == nil and not (cfg and cfg.batch) then self.args.batch = 1 end -- Model.predict's default
  if self.args.conf == nil then self.args.conf = cfgmod.defaults.predict_conf end
  self.save_dir = self:get_save_dir()
  self.done_warmup = false
  self.model = nil
  self.data = self.args.data
  self.imgsz = nil
  self.dataset = nil
  self.plotted_img = nil
  self.seen = 0
  self.batch = nil
  self.results = nil
  self.callbacks = _callbacks or callbacks.get_default_callbacks()
  self.txt_path = nil
end

-- runs/detect/predict, predict2, ... (created when something is saved)
function Engine_Predictor:get_save_dir() return utils.run_dir(self.args, "predict", self.args.exist_ok) end

-- ---- sources ----

local function list_dir_images(dir)
  local names = yt.sys.listdir(dir)
  if not names then error(string.format("source folder '%s' cannot be read", dir), 0) end
  table.sort(names)
  local out = {}
  for _, n in ipairs(names) do
    local p = utils.join(dir, n)
    if IMG_EXT[ext_of(n)] and not utils.is_dir(p) then out[#out + 1] = p end
  end
  return out
end

local function glob_to_pattern(g)
  local p = g:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".")
  return "^" .. p .. "$"
end

-- A list of image file paths from a path-like source (file, folder, glob, .txt list).
local function expand_path_source(src, out)
  out = out or {}
  if src:find("[%*%?]") then
    local dir, pat = src:match("^(.*)/([^/]*)$")
    if not dir then
      dir, pat = ".", src
    end
    if dir:find("[%*%?]") then error(string.format("source '%s': wildcards only in the file name", src), 0) end
    local lp = glob_to_pattern(pat)
    local names = yt.sys.listdir(dir) or {}
    table.sort(names)
    local n0 = #out
    for _, n in ipairs(names) do
      if n:match(lp) and IMG_EXT[ext_of(n)] then out[#out + 1] = utils.join(dir, n) end
    end
    if #out == n0 then error(string.format("source '%s' matches no images", src), 0) end
    return out
  end
  if utils.is_dir(src) then
    local imgs = list_dir_images(src)
    if #imgs == 0 then
      error(string.format("no images found in '%s' (supported: bmp jpeg jpg mpo png tif tiff webp)", src), 0)
    end
    for _, p in ipairs(imgs) do
      out[#out + 1] = p
    end
    return out
  end
  if not utils.exists(src) then error(string.format("source '%s' does not exist", src), 0) end
  local e = ext_of(src)
  if e == "txt" then
    local text = utils.read_file(src) or ""
    local base = utils.dirname(src)
    for line in text:gmatch("[^\r\n]+") do
      line = line:match("^%s*(.-)%s*$")
      if line ~= "" then
        if line:sub(1, 2) == "./" then line = utils.join(base, line:sub(3)) end
        expand_path_source(line, out)
      end
    end
    return out
  end
  if VID_EXT[e] then
    error(string.format("source '%s': videos are not supported by yolotrain (images only)", src), 0)
  end
  if not IMG_EXT[e] then
    error(string.format("source '%s' is not a supported image (bmp jpeg jpg mpo png tif tiff webp)", src), 0)
  end
  out[#out + 1] = src
  return out
end

rawset(Engine_Predictor, "expand_path_source", expand_path_source)

-- The inference source: a list of items {path=, tensor=} (images are read lazily, one batch at a time).
function Engine_Predictor:setup_source(source)
  if source == nil then error("no source given: pass source=<image, folder, glob, .txt list or tensor>", 0) end
  local items = {}
  local function add(s)
    if yt.is_tensor(s) then
      local shape = s:shape()
      if #shape == 4 then
        for b = 1, shape[1] do
          items[#items + 1] = { tensor = s[b], chw = true }
        end
      elseif #shape == 3 and s:dtype() == "uint8" and shape[3] == 3 then
        items[#items + 1] = { tensor = s }
      elseif #shape == 3 and shape[1] == 3 then
        items[#items + 1] = { tensor = s, chw = true }
      else
        error("tensor source: expected (H, W, 3) uint8 RGB or (B, 3, H, W) float 0..1", 0)
      end
    elseif type(s) == "string" then
      for _, p in ipairs(expand_path_source(s)) do
        items[#items + 1] = { path = p }
      end
    elseif type(s) == "table" then
      for _, x in ipairs(s) do
        add(x)
      end
    else
      error("source must be a path, a glob, a tensor or a list of them, got " .. type(s), 0)
    end
  end
  add(source)
  for i, it in ipairs(items) do
    if not it.path then
      it.path = string.format("image%d.jpg", i - 1)
      it.from_tensor = true
    end
  end
  self.dataset =
    { items = items, nf = #items, bs = math.max(1, math.floor(tonumber(self.args.batch) or 1)), mode = "image" }
  return self.dataset
end

-- ---- model ----

function Engine_Predictor:setup_model(model, verbose)
  error("setup_model must be provided by a task predictor (Detection_Predictor)", 2)
end

-- ---- steps ----

-- Letterbox parameters as Ultralytics' LetterBox (auto = minimal padding to a stride multiple).
function Engine_Predictor:letterbox_shape(h, w, auto)
  local imgsz = self.imgsz
  local r = math.min(imgsz[1] / h, imgsz[2] / w)
  local nw, nh = ops.pyround(w * r), ops.pyround(h * r)
  local dw, dh = imgsz[2] - nw, imgsz[1] - nh
  if auto then
    dw, dh = dw % self.stride, dh % self.stride
  end
  return nh + dh, nw + dw
end

-- im0s: list of (H, W, 3) uint8 tensors (or (3, H, W) float ones) -> (B, 3, h, w) float 0..1
function Engine_Predictor:preprocess(im0s)
  local data = require("yolotrain.data")
  local first = im0s[1]:shape()
  local same = true
  for _, im in ipairs(im0s) do
    local s = im:shape()
    if s[1] ~= first[1] or s[2] ~= first[2] or s[3] ~= first[3] then same = false end
  end
  local parts = {}
  for i, im in ipairs(im0s) do
    if im:dtype() ~= "uint8" then
      local s = im:shape()
      parts[i] = im:contiguous():reshape({ 1, s[1], s[2], s[3] })
    else
      local s = im:shape()
      local H, W = self:letterbox_shape(s[1], s[2], same)
      local lb = data.letterbox(im, H, W, true)
      local ls = lb:shape()
      parts[i] = lb:permute({ 3, 1, 2 }):contiguous():reshape({ 1, 3, ls[1], ls[2] }):float(1 / 255)
    end
  end
  if #parts == 1 then return parts[1] end
  return yt.cat(parts, 1)
end

function Engine_Predictor:inference(im) return self.model(im) end

function Engine_Predictor:postprocess(preds, img, orig_imgs) return preds end

-- The console string of image i and its side effects (annotated image, label file).
function Engine_Predictor:write_results(i, p, im, s)
  local result = self.results[i]
  local shape = im:shape()
  local str = ""
  local item = self.batch.items[i]
  if item.from_tensor then str = string.format("%d: ", i - 1) end
  local stem = (p:match("([^/]+)$") or p):gsub("%.[^.]*$", "")
  self.txt_path = utils.join(self.save_dir, "labels", stem)
  str = str .. string.format("%gx%g ", shape[3], shape[4])
  result.save_dir = self.save_dir
  str = str .. result:verbose() .. string.format("%.1fms", result.speed.inference or 0)
  if self.args.save or self.args.show then
    self.plotted_img = result:plot {
      line_width = self.args.line_width,
      boxes = self.args.show_boxes,
      conf = self.args.show_conf,
      labels = self.args.show_labels,
    }
  end
  if self.args.save_txt then result:save_txt(self.txt_path .. ".txt", { save_conf = self.args.save_conf }) end
  if self.args.save then self:save_predicted_images(utils.join(self.save_dir, p:match("([^/]+)$") or p)) end
  return str
end

function Engine_Predictor:save_predicted_images(save_path)
  local plotting = require("yolotrain.utils.plotting")
  local e = ext_of(save_path)
  if e ~= "jpg" and e ~= "jpeg" and e ~= "png" then save_path = save_path:gsub("%.[^./]*$", "") .. ".jpg" end
  plotting.save_image(self.plotted_img, save_path)
end

-- ---- the loop ----

local function load_item(item)
  if item.tensor then return item.tensor end
  local data = require("yolotrain.data")
  return data.load_image(item.path)
end

-- An iterator over Results (one per image); images are loaded one batch at a time.
function Engine_Predictor:stream_inference(source, model)
  local co = coroutine.create(function() self:_stream(source, model) end)
  return function()
    if coroutine.status(co) == "dead" then return nil end
    local ok, r = coroutine.resume(co)
    if not ok then error(r, 0) end
    return r
  end
end

function Engine_Predictor:_stream(source, model)
  if not self.model then self:setup_model(model) end
  self:setup_source(source ~= nil and source or self.args.source)
  if self.args.save or self.args.save_txt then
    utils.mkdir_p(self.args.save_txt and utils.join(self.save_dir, "labels") or self.save_dir)
  end
  self.seen, self.batch = 0, nil
  local dt = { 0.0, 0.0, 0.0 }
  self:run_callbacks("on_predict_start")
  local items, bs = self.dataset.items, self.dataset.bs
  local last_shape
  for b0 = 1, #items, bs do
    local bitems, paths, im0s, s = {}, {}, {}, {}
    for i = b0, math.min(b0 + bs - 1, #items) do
      local it = items[i]
      local loaded, im0 = pcall(load_item, it)
      if loaded then
        bitems[#bitems + 1] = it
        paths[#paths + 1] = it.path
        im0s[#im0s + 1] = im0
        s[#s + 1] = it.from_tensor and "" or string.format("image %d/%d %s: ", i, #items, it.path)
      else
        -- one unreadable file of a folder does not end the run (Ultralytics stops at it)
        log("WARNING image %d/%d skipped: %s", i, #items, utils.strip_where(im0))
      end
    end
    if #im0s == 0 then goto next_batch end
    self.batch = { paths = paths, im0s = im0s, s = s, items = bitems, [1] = paths, [2] = im0s, [3] = s }
    self:run_callbacks("on_predict_batch_start")
    local prev = yt.set_grad_enabled(false)
    yt.scope_begin()
    local ok, err = pcall(function()
      local t0 = yt.machine.now()
      local im = self:preprocess(im0s)
      local t1 = yt.machine.now()
      local preds = self:inference(im)
      local t2 = yt.machine.now()
      self.results = self:postprocess(preds, im, im0s)
      local t3 = yt.machine.now()
      dt[1], dt[2], dt[3] = dt[1] + t1 - t0, dt[2] + t2 - t1, dt[3] + t3 - t2
      self._im_shape = im:shape()
      local n = #im0s
      for i = 1, n do
        self.results[i].speed = {
          preprocess = (t1 - t0) * 1e3 / n,
          inference = (t2 - t1) * 1e3 / n,
          postprocess = (t3 - t2) * 1e3 / n,
        }
      end
      self._batch_dt = { t1 - t0, t2 - t1, t3 - t2 }
      self._im_for_write = im
      -- write results inside the scope (im is alive); Results hold only Lua tables and the original images
      for i = 1, n do
        self.seen = self.seen + 1
        if self.args.verbose or self.args.save or self.args.save_txt or self.args.show then
          s[i] = s[i] .. self:write_results(i, paths[i], im, s)
        end
      end
      self._im_for_write = nil
    end)
    yt.scope_end()
    yt.set_grad_enabled(prev)
    if not ok then error(err, 0) end
    last_shape = self._im_shape
    self:run_callbacks("on_predict_postprocess_end")
    if self.args.verbose then log("%s", table.concat(s, "\n")) end
    self:run_callbacks("on_predict_batch_end")
    for _, r in ipairs(self.results) do
      coroutine.yield(r)
    end
    collectgarbage("step", 0)
    ::next_batch::
  end
  if self.args.verbose and self.seen > 0 then
    log(
      "Speed: %.1fms preprocess, %.1fms inference, %.1fms postprocess per image at shape (%d, 3, %d, %d)",
      dt[1] / self.seen * 1e3,
      dt[2] / self.seen * 1e3,
      dt[3] / self.seen * 1e3,
      math.min(bs, self.seen),
      last_shape and last_shape[3] or 0,
      last_shape and last_shape[4] or 0
    )
  end
  self.speed = {
    preprocess = dt[1] / math.max(self.seen, 1) * 1e3,
    inference = dt[2] / math.max(self.seen, 1) * 1e3,
    postprocess = dt[3] / math.max(self.seen, 1) * 1e3,
  }
  if self.args.save or self.args.save_txt or self.args.save_crop then
    local s = ""
    if self.args.save_txt then
      local nl = 0
      for _, n in ipairs(yt.sys.listdir(utils.join(self.save_dir, "labels")) or {}) do
        if n:match("%.txt$") then nl = nl + 1 end
      end
      s = string.format("\n%d label%s saved to %s", nl, nl > 1 and "s" or "", utils.join(self.save_dir, "labels"))
    end
    log("Results saved to %s%s", utils.colorstr("bold", self.save_dir), s)
  end
  self:run_callbacks("on_predict_end")
end

-- predictor(source, model, stream): a list of Results, or an iterator when stream is true.
Engine_Predictor.__call = function(self, source, model, stream)
  if stream then return self:stream_inference(source, model) end
  local out = {}
  for r in self:stream_inference(source, model) do
    out[#out + 1] = r
  end
  return out
end

function Engine_Predictor:predict_cli(source, model)
  local n = 0
  for _ in self:stream_inference(source, model) do
    n = n + 1
  end
  return n
end

return Engine_Predictor
