--- Detection metrics (Ultralytics 8.2.100 semantics): DetMetrics and ConfusionMatrix.
--
-- Numbers are computed in C (src/metrics/ap.c); this module keeps the results and offers Ultralytics' views:
--   local metrics = require("yolotrain.utils.metrics")
--   local m = metrics.DetMetrics{ names = { [0] = "person", ... }, save_dir = "runs/val", plot = true }
--   m:process(tp, conf, pred_cls, target_cls)      -- tensors: tp (n,10) uint8, conf (n), pred_cls (n), target_cls (nt)
--   m.results_dict   --> { ["metrics/precision(B)"]=, ["metrics/recall(B)"]=, ["metrics/mAP50(B)"]=,
--                          ["metrics/mAP50-95(B)"]=, fitness= }
--   m:mean_results() --> { mp, mr, map50, map }     m:class_result(i) --> { p, r, ap50, ap } (i is 1-based)
--   m.maps           --> class id (0-based) -> mAP50-95 (classes without GT get the mean)
--   m.fitness, m.ap_class_index (list of class ids), m.keys, m.curves, m.curves_results
-- Class ids are 0-based everywhere (as in the data and in Ultralytics); list positions are 1-based.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local defaults = require("yolotrain.cfg.default")

local M = {}

local KEYS = { "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)" }

local function mean(t)
  local n = #t
  if n == 0 then return 0.0 end
  local s = 0.0
  for i = 1, n do
    s = s + t[i]
  end
  return s / n
end

local function count_names(names)
  if not names then return 0 end
  local n = 0
  for k in pairs(names) do
    if math.type(k) == "integer" and k + 1 > n then n = k + 1 end
  end
  return n
end

-- Name of class id c from a 0-based names table (or a 1-based list when names[0] is absent).
local function class_name(names, c)
  if not names then return tostring(c) end
  if names[0] ~= nil then return names[c] or tostring(c) end
  return names[c + 1] or tostring(c)
end
M.class_name = class_name

---------------------------------------------------------------------------------------------------------------
-- Metric: the box metric container (Ultralytics' Metric)
---------------------------------------------------------------------------------------------------------------
local Metric = class.Object:extend("Metric")
M.Metric = Metric

function Metric:init()
  self.p, self.r, self.f1, self.all_ap, self.ap_class_index, self.nc = {}, {}, {}, {}, {}, 0
end

-- Metric.new(): the form before Metric was a class
Metric:static("new", function() return Metric() end)

function Metric:ap50()
  local o = {}
  for i, row in ipairs(self.all_ap) do
    o[i] = row[1]
  end
  return o
end

function Metric:ap()
  local o = {}
  for i, row in ipairs(self.all_ap) do
    o[i] = mean(row)
  end
  return o
end

function Metric:mp() return mean(self.p) end
function Metric:mr() return mean(self.r) end
function Metric:map50() return mean(self:ap50()) end
function Metric:map75()
  local o = {}
  for i, row in ipairs(self.all_ap) do
    o[i] = row[6]
  end
  return mean(o)
end
function Metric:map()
  local s, n = 0.0, 0
  for _, row in ipairs(self.all_ap) do
    for _, v in ipairs(row) do
      s = s + v
      n = n + 1
    end
  end
  return n > 0 and s / n or 0.0
end

function Metric:mean_results() return { self:mp(), self:mr(), self:map50(), self:map() } end

function Metric:class_result(i) return { self.p[i], self.r[i], self.all_ap[i][1], mean(self.all_ap[i]) } end

function Metric:maps()
  local m, ap = self:map(), self:ap()
  local o = {}
  for c = 0, self.nc - 1 do
    o[c] = m
  end
  for i, c in ipairs(self.ap_class_index) do
    o[c] = ap[i]
  end
  return o
end

function Metric:fitness()
  local r = self:mean_results()
  return 0.0 * r[1] + 0.0 * r[2] + 0.1 * r[3] + 0.9 * r[4]
end

---------------------------------------------------------------------------------------------------------------
-- DetMetrics
---------------------------------------------------------------------------------------------------------------
local DetMetrics = class.Object:extend("DetMetrics")
M.DetMetrics = DetMetrics

-- properties computed on access (Ultralytics exposes these as @property)
DetMetrics:property("keys", function() return { KEYS[1], KEYS[2], KEYS[3], KEYS[4] } end)
DetMetrics:property("fitness", function(self) return self.box:fitness() end)
DetMetrics:property("maps", function(self) return self.box:maps() end)
DetMetrics:property("ap_class_index", function(self) return self.box.ap_class_index end)
DetMetrics:property("results_dict", function(self)
  local r = self:mean_results()
  local d = {}
  for i, k in ipairs(KEYS) do
    d[k] = r[i]
  end
  d.fitness = self.box:fitness()
  return d
end)
DetMetrics:property(
  "curves",
  function() return { "Precision-Recall(B)", "F1-Confidence(B)", "Precision-Confidence(B)", "Recall-Confidence(B)" } end
)
DetMetrics:property("curves_results", function(self) return self.curves_data end)

DetMetrics.__tostring = function(self)
  local r = self:mean_results()
  return string.format("DetMetrics(P %.5f, R %.5f, mAP50 %.5f, mAP50-95 %.5f)", r[1], r[2], r[3], r[4])
end

--- DetMetrics{ names = {[0]="person", ...}, save_dir = "dir", plot = false }, or Ultralytics' positional form
--- DetMetrics(save_dir, plot, on_plot, names).
function DetMetrics:init(opts, plot_, on_plot_, names_)
  if type(opts) ~= "table" then opts = { save_dir = opts, plot = plot_, on_plot = on_plot_, names = names_ } end
  rawset(self, "names", opts.names or {})
  rawset(self, "save_dir", opts.save_dir)
  rawset(self, "plot", opts.plot or false)
  rawset(self, "on_plot", opts.on_plot)
  rawset(self, "box", Metric())
  rawset(self, "speed", { preprocess = 0.0, inference = 0.0, loss = 0.0, postprocess = 0.0 })
  rawset(self, "task", "detect")
end
M.DetectionMetrics = M.DetMetrics

local function to_list(t) return t:tolist() end

local function rows(t) return t:numel() > 0 and t:totable() or {} end

--- Scores the concatenated validation statistics. tp (n,K) uint8/bool-like, conf (n), pred_cls (n),
-- target_cls (nt): tensors (or nested Lua tables, converted).
function DetMetrics:process(tp, conf, pred_cls, target_cls)
  local function T(x, dt)
    if yt.is_tensor(x) then return x end
    if type(x) == "table" and #x == 0 then return yt.zeros({ 0 }, dt) end
    return yt.tensor(x, dt)
  end
  local res =
    yt.metrics.ap_per_class(T(tp, "uint8"), T(conf, "float32"), T(pred_cls, "float32"), T(target_cls, "float32"))
  local box = self.box
  box.p, box.r, box.f1 = to_list(res.p), to_list(res.r), to_list(res.f1)
  box.all_ap = rows(res.ap)
  box.ap_class_index = to_list(res.ap_class_index)
  box.nc = math.max(count_names(self.names), 0)
  if box.nc == 0 then
    for _, c in ipairs(box.ap_class_index) do
      if c + 1 > box.nc then box.nc = c + 1 end
    end
  end
  box.tp, box.fp = to_list(res.tp), to_list(res.fp)
  rawset(self, "raw", res)
  rawset(self, "curves_data", {
    { x = res.x, y = res.prec_values, xlabel = "Recall", ylabel = "Precision" },
    { x = res.x, y = res.f1_curve, xlabel = "Confidence", ylabel = "F1" },
    { x = res.x, y = res.p_curve, xlabel = "Confidence", ylabel = "Precision" },
    { x = res.x, y = res.r_curve, xlabel = "Confidence", ylabel = "Recall" },
  })
  if self.plot and self.save_dir then self:plot_curves(self.save_dir) end
  return self
end

function DetMetrics:mean_results() return self.box:mean_results() end

--- P, R, AP50, AP50-95 of the i-th class of ap_class_index (1-based i).
function DetMetrics:class_result(i) return self.box:class_result(i) end

--- Writes PR_curve.png, F1_curve.png, P_curve.png, R_curve.png into dir; returns the paths.
function DetMetrics:plot_curves(dir)
  local res = self.raw
  if not res then error("DetMetrics:plot_curves: call process() first", 2) end
  local labels = {}
  for i, c in ipairs(self.box.ap_class_index) do
    labels[i] = class_name(self.names, c)
  end
  -- the PR curve uses only classes that had predictions (like Ultralytics)
  local has = res.has_prec:tolist()
  local keep, kl, ap50 = {}, {}, {}
  for i = 1, #has do
    if has[i] ~= 0 then
      keep[#keep + 1] = res.prec_values[i]:totable()
      kl[#kl + 1] = labels[i]
      ap50[#ap50 + 1] = self.box.all_ap[i][1]
    end
  end
  local paths = {}
  local function out(name)
    local p = dir .. "/" .. name
    paths[#paths + 1] = p
    return p
  end
  local py = #keep > 0 and yt.tensor(keep, "float64") or yt.zeros({ 0, res.x:numel() }, "float64")
  local ap = #ap50 > 0 and yt.tensor(ap50, "float64") or yt.zeros({ 0 }, "float64")
  yt.metrics.plot_pr_curve(out("PR_curve.png"), res.x, py, ap, { names = kl })
  yt.metrics.plot_mc_curve(out("F1_curve.png"), res.x, res.f1_curve, { names = labels, ylabel = "F1" })
  yt.metrics.plot_mc_curve(out("P_curve.png"), res.x, res.p_curve, { names = labels, ylabel = "Precision" })
  yt.metrics.plot_mc_curve(out("R_curve.png"), res.x, res.r_curve, { names = labels, ylabel = "Recall" })
  if self.on_plot then
    for _, p in ipairs(paths) do
      self.on_plot(p)
    end
  end
  return paths
end

---------------------------------------------------------------------------------------------------------------
-- ConfusionMatrix
---------------------------------------------------------------------------------------------------------------
local ConfusionMatrix = {}
ConfusionMatrix.__index = ConfusionMatrix
M.ConfusionMatrix_methods = ConfusionMatrix

--- ConfusionMatrix{ nc = 80, conf = 0.25, iou_thres = 0.45 } (conf nil or 0.001 means 0.25, as Ultralytics).
-- matrix: (nc+1, nc+1) float64 tensor, rows = predicted class, columns = true class, last = background.
function M.ConfusionMatrix(opts, conf_, iou_thres_, task_)
  if type(opts) == "number" then opts = { nc = opts, conf = conf_, iou_thres = iou_thres_, task = task_ } end
  opts = opts or {}
  local nc = assert(opts.nc, "ConfusionMatrix: nc is required")
  local conf = opts.conf
  if conf == nil or conf == 0.001 then conf = defaults.predict_conf end
  return setmetatable({
    nc = nc,
    conf = conf,
    iou_thres = opts.iou_thres or 0.45,
    task = opts.task or "detect",
    matrix = yt.zeros({ nc + 1, nc + 1 }, "float64"),
  }, ConfusionMatrix)
end

--- detections (n,6) x1 y1 x2 y2 conf cls or nil; gt_bboxes (m,4) xyxy; gt_cls (m).
function ConfusionMatrix:process_batch(detections, gt_bboxes, gt_cls)
  yt.metrics.confusion_matrix_update(
    self.matrix,
    detections,
    gt_bboxes,
    gt_cls,
    { conf = self.conf, iou = self.iou_thres }
  )
end

--- True positives and false positives per class (background excluded): two Lua lists of nc numbers.
function ConfusionMatrix:tp_fp()
  local m = self.matrix:totable()
  local tp, fp = {}, {}
  for c = 1, self.nc do
    local row = 0.0
    for j = 1, self.nc + 1 do
      row = row + m[c][j]
    end
    tp[c] = m[c][c]
    fp[c] = row - m[c][c]
  end
  return tp, fp
end

--- Writes the heat map. path: a .png file, or a directory (then confusion_matrix[_normalized].png in it).
-- names: class names (0-based table or 1-based list). normalize defaults to true. Returns the file written.
function ConfusionMatrix:plot(path, names, normalize)
  if normalize == nil then normalize = true end
  if not path:match("%.png$") then
    path = path .. "/confusion_matrix" .. (normalize and "_normalized" or "") .. ".png"
  end
  yt.metrics.plot_confusion_matrix(self.matrix, path, { names = names, normalize = normalize })
  return path
end

function ConfusionMatrix:print()
  local m = self.matrix:totable()
  for i = 1, self.nc + 1 do
    local parts = {}
    for j = 1, self.nc + 1 do
      parts[j] = string.format("%g", m[i][j])
    end
    print(table.concat(parts, " "))
  end
end

return M
