-- Detection_Validator: validates YOLO detectors (Ultralytics 8.2's DetectionValidator).
--
--   local detect = require("yolotrain.models.yolo.detect")
--   local v = detect.Detection_Validator{ args = { data = "coco128.yaml", imgsz = 320, batch = 16 } }
--   local m = v(nil, "best.safetensors")     -- or a Detection_Model, or args.model = yaml + args.pretrained
--   m["metrics/mAP50-95(B)"], m.fitness ~= nil only during training, m.maps[0], v.metrics, v.confusion_matrix
--
-- Predictions and labels are scaled back to the original image pixels (ratio_pad) before matching; NMS runs with
-- conf 0.001, multi_label; scoring is yolotrain.utils.metrics (C, parity with Ultralytics).
local yt = require("yolotrain.core")
local Engine_Validator = require("yolotrain.engine.validator")
local metrics_mod = require("yolotrain.utils.metrics")
local results = require("yolotrain.engine.results")
local utils = require("yolotrain.utils")

-- Predictions drawn on the val batch images: those a prediction would keep (the C plotter draws the same).
local PLOT_CONF = require("yolotrain.cfg.default").predict_conf

local ops = results.ops
local log = Engine_Validator.log

local Detection_Validator = Engine_Validator:extend("Detection_Validator")

function Detection_Validator:init(dataloader, save_dir, args, callbacks)
  Engine_Validator.init(self, dataloader, save_dir, args, callbacks)
  self.nt_per_class = nil
  self.nt_per_image = nil
  self.is_coco = false
  self.class_map = nil
  self.args.task = "detect"
  self.metrics =
    metrics_mod.DetMetrics { save_dir = self.save_dir, plot = false, on_plot = function(p) self:on_plot(p) end }
  self.iouv = yt.metrics.iou_thresholds()
  self.niou = 10
  self.lb = {}
  if self.args.save_hybrid then
    log("WARNING: 'save_hybrid=True' is not supported by yolotrain's validator; ignored")
  end
end

local function count_names(names)
  local n = 0
  for k in pairs(names or {}) do
    if math.type(k) == "integer" and k + 1 > n then n = k + 1 end
  end
  return n
end

local function numeric_names(names)
  for k, v in pairs(names or {}) do
    if tostring(k) ~= tostring(v) then return false end
  end
  return true
end

-- Resolves a model for inference: a Detection_Model as is; a yolotrain checkpoint (architecture and names in its
-- metadata) or an Ultralytics .pt (architecture, nc and names of its pickled model); a model YAML with args.pretrained = a plain Ultralytics state dict (.safetensors). data: the dataset
-- dictionary or nil (gives nc and names to YAML models). Fuses it; prints the summary when verbose.
local function resolve_model(model, args, data)
  local tasks = require("yolotrain.nn.tasks")
  model = model or args.model
  if model == nil then
    error("no model given: pass model=<checkpoint.safetensors> or model=<model.yaml> pretrained=<weights>", 0)
  end
  if type(model) == "string" then
    if model:match("%.safetensors$") then
      if not utils.exists(model) then error(string.format("model '%s' not found", model), 0) end
      local meta = yt.io.load_safetensors_metadata(model)
      if meta and meta.yaml then
        model = tasks.load_checkpoint_model(model)
      else
        error(
          string.format(
            "model=%s is a plain state dict without an architecture: give model=<model.yaml> " .. "pretrained=%s",
            model,
            model
          ),
          0
        )
      end
    elseif model:match("%.pt$") then -- found or downloaded by utils.pt.locate
      model = tasks.load_checkpoint_model(model)
    elseif model:match("%.ya?ml$") then
      local m = tasks.Detection_Model(model, { nc = data and data.nc or nil, verbose = false })
      local w = args.pretrained
      if type(w) == "string" then
        if not w:match("%.pt$") and not utils.exists(w) then -- a .pt is found or downloaded by utils.pt.locate
          error(string.format("pretrained=%s not found", w), 0)
        end
        local loaded, total = m:load(w, false)
        log("Transferred %d/%d items from pretrained weights %s", loaded, total, w)
        if loaded == 0 then
          error(string.format("pretrained=%s: no tensor matches the model %s (names or shapes differ)", w, model), 0)
        end
      else
        log("WARNING: %s has randomly initialised weights (give pretrained=<weights.safetensors>)", model)
      end
      model = m
    else
      error(string.format("model=%s: expected a .safetensors or .pt checkpoint, or a model .yaml", model), 0)
    end
  elseif type(model) ~= "table" or not model.named_parameters then
    error("model must be a Detection_Model, a checkpoint path or a model YAML", 0)
  end
  if data then
    local nc = model.nc or count_names(model.names)
    if data.nc > nc and not args.single_cls then
      error(string.format("the dataset %s has %d classes but the model only %d", tostring(args.data), data.nc, nc), 0)
    end
    if (model.names == nil or numeric_names(model.names)) and data.nc == nc then model.names = data.names end
  end
  if model.fuse then
    model:fuse()
    if args.verbose ~= false and model.info then model:info(true) end
  end
  return model
end
rawset(Detection_Validator, "resolve_model", resolve_model)

function Detection_Validator:setup_model(model)
  local data = require("yolotrain.data")
  if self.args.data ~= nil then
    self.data = data.check_det_dataset(self.args.data)
  elseif not self.dataloader then
    error("no dataset given: pass data=<data.yaml or a folder holding data.yaml>", 0)
  end
  return resolve_model(model, self.args, self.data)
end

function Detection_Validator:build_dataset(img_path, mode, batch)
  local data = require("yolotrain.data")
  return data.build_yolo_dataset(
    self.args,
    img_path,
    batch,
    self.data,
    mode or "val",
    true,
    self.stride or 32,
    self.dataset_class
  )
end

function Detection_Validator:get_dataloader(dataset_path, batch_size)
  local data = require("yolotrain.data")
  local dataset = self:build_dataset(dataset_path, "val", batch_size)
  if #dataset < batch_size then
    -- fewer images than one batch: rect batch shapes must be computed for the batch actually used
    batch_size = #dataset
    dataset = self:build_dataset(dataset_path, "val", batch_size)
  end
  return data.build_dataloader(dataset, batch_size, self.args.workers, false, -1)
end

-- uint8 images -> float 0..1
function Detection_Validator:preprocess(batch)
  if batch.img:dtype() ~= "float32" then batch.img = batch.img:float(1 / 255) end
  return batch
end

function Detection_Validator:init_metrics(model)
  local names = model.names or (self.data and self.data.names) or {}
  self.names = names
  self.nc = model.nc or count_names(names)
  rawset(self.metrics, "names", names)
  rawset(self.metrics, "plot", self.args.plots and true or false)
  rawset(self.metrics, "save_dir", self.save_dir)
  local box = metrics_mod.Metric.new()
  box.nc = self.nc
  rawset(self.metrics, "box", box)
  self.confusion_matrix = metrics_mod.ConfusionMatrix { nc = self.nc, conf = self.args.conf }
  self.seen = 0
  self.jdict = {}
  self.stats = { tp = {}, conf = {}, pred_cls = {}, target_cls = {}, target_img = {}, n = 0 }
end

function Detection_Validator:get_desc()
  return string.format(
    "%22s%11s%11s%11s%11s%11s%11s",
    "Class",
    "Images",
    "Instances",
    "Box(P",
    "R",
    "mAP50",
    "mAP50-95)"
  )
end

function Detection_Validator:postprocess(preds)
  return yt.metrics.nms(preds, {
    conf = self.args.conf,
    iou = self.args.iou,
    multi_label = true,
    agnostic = (self.args.single_cls or self.args.agnostic_nms) and true or false,
    max_det = self.args.max_det,
  })
end

-- Labels of image si (0-based) in original image pixels: { cls = {...}, bbox = { {x1,y1,x2,y2}, ... },
-- ori_shape, imgsz, ratio_pad }.
function Detection_Validator:_prepare_batch(si, batch)
  local cache = batch._val_lists
  if not cache then
    cache = {
      bi = batch.batch_idx:tolist(),
      cls = batch.cls:contiguous():tolist(),
      bb = batch.bboxes:contiguous():tolist(),
    }
    batch._val_lists = cache
  end
  local shape = batch.img:shape()
  local imgsz = { shape[3], shape[4] }
  local ori_shape = batch.ori_shape[si + 1]
  local ratio_pad = batch.ratio_pad and batch.ratio_pad[si + 1]
  local cls, bbox = {}, {}
  for j, b in ipairs(cache.bi) do
    if b == si then
      cls[#cls + 1] = cache.cls[j]
      local k = (j - 1) * 4
      local box = ops.xywh2xyxy({ cache.bb[k + 1], cache.bb[k + 2], cache.bb[k + 3], cache.bb[k + 4] })
      box = {
        ops.f32(box[1] * imgsz[2]),
        ops.f32(box[2] * imgsz[1]),
        ops.f32(box[3] * imgsz[2]),
        ops.f32(box[4] * imgsz[1]),
      }
      bbox[#bbox + 1] = ops.scale_box(box, imgsz, ori_shape, ratio_pad)
    end
  end
  return { cls = cls, bbox = bbox, ori_shape = ori_shape, imgsz = imgsz, ratio_pad = ratio_pad }
end

-- Prediction rows {x1, y1, x2, y2, conf, cls} scaled to the original image.
function Detection_Validator:_prepare_pred(pred_rows, pbatch)
  local out = {}
  for i, r in ipairs(pred_rows) do
    local b = ops.scale_box({ r[1], r[2], r[3], r[4] }, pbatch.imgsz, pbatch.ori_shape, pbatch.ratio_pad)
    out[i] = { b[1], b[2], b[3], b[4], r[5], r[6] }
  end
  return out
end

-- Correct-prediction matrix (n, 10) uint8 for predictions (rows, original pixels) against GT boxes and classes.
function Detection_Validator:_process_batch(predn, gt_bboxes, gt_cls)
  local pb = ops.rows_tensor(predn, 6)
  local iou = yt.metrics.box_iou(ops.rows_tensor(gt_bboxes, 4), pb:narrow(2, 1, 4):contiguous())
  local pc = pb:narrow(2, 6, 1):contiguous():reshape({ #predn })
  return yt.metrics.match_predictions(pc, yt.tensor(gt_cls), iou, self.iouv)
end

function Detection_Validator:update_metrics(preds, batch)
  local st = self.stats
  for si, pred in ipairs(preds) do
    self.seen = self.seen + 1
    local rows = ops.tensor_rows(pred)
    local npr = #rows
    local pbatch = self:_prepare_batch(si - 1, batch)
    local cls, bbox = pbatch.cls, pbatch.bbox
    local nl = #cls
    local seen_cls = {}
    for _, c in ipairs(cls) do
      seen_cls[c] = true
    end
    if npr == 0 then
      if nl > 0 then
        for _, c in ipairs(cls) do
          st.target_cls[#st.target_cls + 1] = c
        end
        for c in pairs(seen_cls) do
          st.target_img[#st.target_img + 1] = c
        end
        if self.args.plots then self.confusion_matrix:process_batch(nil, ops.rows_tensor(bbox, 4), yt.tensor(cls)) end
      end
    else
      if self.args.single_cls then
        for _, r in ipairs(rows) do
          r[6] = 0
        end
      end
      local predn = self:_prepare_pred(rows, pbatch)
      local tp
      if nl > 0 then tp = self:_process_batch(predn, bbox, cls):tolist() end
      local base = st.n
      for i, r in ipairs(predn) do
        st.conf[base + i] = r[5]
        st.pred_cls[base + i] = r[6]
        local o = (base + i - 1) * 10
        for k = 1, 10 do
          st.tp[o + k] = tp and tp[(i - 1) * 10 + k] or 0
        end
      end
      st.n = base + npr
      for _, c in ipairs(cls) do
        st.target_cls[#st.target_cls + 1] = c
      end
      for c in pairs(seen_cls) do
        st.target_img[#st.target_img + 1] = c
      end
      if self.args.plots then
        self.confusion_matrix:process_batch(ops.rows_tensor(predn, 6), ops.rows_tensor(bbox, 4), yt.tensor(cls))
      end
      if self.args.save_txt then
        local stem = (batch.im_file[si] or ("image" .. si)):match("([^/]+)$"):gsub("%.[^.]*$", "")
        self:save_one_txt(
          predn,
          self.args.save_conf,
          pbatch.ori_shape,
          utils.join(self.save_dir, "labels", stem .. ".txt")
        )
      end
    end
  end
end

function Detection_Validator:save_one_txt(predn, save_conf, shape, file)
  local r = results.Results { orig_shape = shape, path = file, names = self.names, boxes = predn }
  os.remove(file)
  r:save_txt(file, { save_conf = save_conf })
end

function Detection_Validator:finalize_metrics()
  rawset(self.metrics, "speed", self.speed)
  rawset(self.metrics, "confusion_matrix", self.confusion_matrix)
end

-- Scores the accumulated statistics; returns the metrics' results_dict.
function Detection_Validator:get_stats()
  local st = self.stats
  local nc = math.max(self.nc or 0, 1)
  local per_class, per_image = {}, {}
  for c = 0, nc - 1 do
    per_class[c], per_image[c] = 0, 0
  end
  for _, c in ipairs(st.target_cls) do
    c = math.floor(c)
    per_class[c] = (per_class[c] or 0) + 1
  end
  for _, c in ipairs(st.target_img) do
    c = math.floor(c)
    per_image[c] = (per_image[c] or 0) + 1
  end
  self.nt_per_class, self.nt_per_image = per_class, per_image
  local any_tp = false
  for _, v in ipairs(st.tp) do
    if v ~= 0 then
      any_tp = true
      break
    end
  end
  if any_tp then
    local n = st.n
    local tp = yt.tensor(st.tp, "uint8"):reshape({ n, 10 })
    self.metrics:process(
      tp,
      yt.tensor(st.conf),
      yt.tensor(st.pred_cls),
      #st.target_cls > 0 and yt.tensor(st.target_cls) or yt.zeros({ 0 })
    )
  end
  return self.metrics.results_dict
end

function Detection_Validator:print_results()
  local total = 0
  for _, v in pairs(self.nt_per_class or {}) do
    total = total + v
  end
  local mr = self.metrics:mean_results()
  local pf = "%22s%11d%11d%11.3g%11.3g%11.3g%11.3g"
  log(pf, "all", self.seen, total, mr[1], mr[2], mr[3], mr[4])
  if total == 0 then
    log("WARNING: no labels found in %s set, can not compute metrics without labels", self.args.task or "detect")
  end
  if self.args.verbose and not self.training and (self.nc or 0) > 1 and self.stats.n >= 0 then
    for i, c in ipairs(self.metrics.ap_class_index) do
      local r = self.metrics:class_result(i)
      log(
        pf,
        results.name_of(self.names, c),
        self.nt_per_image[c] or 0,
        self.nt_per_class[c] or 0,
        r[1],
        r[2],
        r[3],
        r[4]
      )
    end
  end
  if self.args.plots then
    local labels = {}
    for c = 0, self.nc - 1 do
      labels[c] = results.name_of(self.names, c)
    end
    for _, normalize in ipairs({ true, false }) do
      local p = self.confusion_matrix:plot(self.save_dir, labels, normalize)
      self:on_plot(p)
    end
  end
end

function Detection_Validator:plot_val_samples(batch, ni)
  local data = require("yolotrain.data")
  data.plot_batch(batch, self.names, utils.join(self.save_dir, string.format("val_batch%d_labels.jpg", ni)))
end

-- Predictions drawn on the batch images (conf > 0.25 as Ultralytics' plot_images, at most max_det per image).
function Detection_Validator:plot_predictions(batch, preds, ni)
  local shape = batch.img:shape()
  local H, W = shape[3], shape[4]
  local cls, boxes, bidx, conf = {}, {}, {}, {}
  for si, pred in ipairs(preds) do
    local rows = ops.tensor_rows(pred)
    for i, r in ipairs(rows) do
      if i > self.args.max_det then break end
      if r[5] > PLOT_CONF then
        local b = ops.xyxy2xywh(r)
        cls[#cls + 1] = { r[6] }
        boxes[#boxes + 1] = { b[1] / W, b[2] / H, b[3] / W, b[4] / H }
        bidx[#bidx + 1] = si - 1
        conf[#conf + 1] = r[5]
      end
    end
  end
  local pb = {
    img = batch.img,
    cls = ops.rows_tensor(cls, 1),
    bboxes = ops.rows_tensor(boxes, 4),
    batch_idx = #bidx > 0 and yt.tensor(bidx) or yt.zeros({ 0 }),
    im_file = batch.im_file,
  }
  yt.data.plot_batch(
    pb,
    self.names,
    utils.join(self.save_dir, string.format("val_batch%d_pred.jpg", ni)),
    #conf > 0 and yt.tensor(conf) or yt.zeros({ 0 })
  )
end

return Detection_Validator
