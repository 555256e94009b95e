-- Exporter: Ultralytics' export mode, its argument names and its output naming (<weights stem>.<format> beside
-- the weights).
--
--   yolotrain detect export model=best.safetensors format=onnx imgsz=640 [opset=17] [dynamic=true] [batch=1]
--   yolotrain detect export model=yolov8n.pt format=safetensors      -- a .pt converted once
--
--   local Exporter = require("yolotrain.engine.exporter")
--   local path = Exporter{ overrides = { format = "onnx", imgsz = 320 } }("best.safetensors")
--
-- format=onnx writes the graph Ultralytics exports: input `images` (B x 3 x H x W float32), output `output0`
-- (B x (4 + nc) x A: boxes cx, cy, w, h in input pixels, then class probabilities), Conv+BN fused, and the same
-- metadata_props keys. Callbacks: on_export_start, on_export_end.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local cfgmod = require("yolotrain.cfg")
local callbacks = require("yolotrain.utils.callbacks")
local utils = require("yolotrain.utils")
local onnx = require("yolotrain.utils.onnx")
local pt = require("yolotrain.utils.pt")
local checkpoint = require("yolotrain.engine.checkpoint")

local Exporter = class.Object:extend("Exporter")
callbacks.mixin(Exporter)

local log = utils.log

Exporter.FORMATS = { "onnx", "safetensors" }
-- what the exported file records as its license when the weights carry none of their own
Exporter.DEFAULT_LICENSE = "unspecified (see the weights' source)"
Exporter.DOCS = "yolotrain docs/export.md"

-- Exporter{ overrides = { format = , imgsz = , ... }, file = <output path>, _callbacks = }
function Exporter:init(opts)
  opts = opts or {}
  self.overrides = opts.overrides or {}
  self.file = opts.file
  self.args = cfgmod.get_cfg(self.overrides)
  self.callbacks = opts._callbacks or callbacks.get_default_callbacks()
end

local function supported(format)
  for _, f in ipairs(Exporter.FORMATS) do
    if f == format then return true end
  end
  return false
end

-- "{0: 'person', 1: 'bicycle'}": the names dict as Python writes it, which is how Ultralytics' readers parse it
local function names_repr(names, nc)
  local tasks = require("yolotrain.nn.tasks")
  local parts = {}
  for i = 0, nc - 1 do
    parts[#parts + 1] = string.format("%d: %s", i, tasks.pyrepr(names[i] or tostring(i)))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- The export arguments Ultralytics takes that yolotrain's ONNX writer handles differently, said once each.
function Exporter:check_args()
  local a = self.args
  if a.half then
    log("WARNING: half=True only compatible with GPU export, setting half=False")
    a.half = false
  end
  if a.int8 then error("int8=True: yolotrain exports float32 ONNX only (no INT8 calibration)", 0) end
  if a.nms then error("nms=True: yolotrain's ONNX graph ends at output0 (NMS runs after it, as Ultralytics')", 0) end
  if a.simplify then log("simplify=True: nothing to do, the graph is written folded (Conv+BN fused, no dead nodes)") end
  local opset = a.opset
  if opset == cfgmod.NONE or opset == nil then opset = onnx.DEFAULT_OPSET end
  if math.type(opset) ~= "integer" or opset < onnx.MIN_OPSET or opset > onnx.MAX_OPSET then
    error(string.format("opset=%s is not supported: give %d..%d", tostring(opset), onnx.MIN_OPSET, onnx.MAX_OPSET), 0)
  end
  a.opset = opset
  local batch = self.overrides.batch
  if batch ~= nil and (math.type(batch) ~= "integer" or batch < 1) then
    error(string.format("batch=%s: export needs a whole batch size >= 1", tostring(batch)), 0)
  end
end

-- exporter(model): model is a path (.pt, .safetensors checkpoint, or .yaml with pretrained=) or a Detection_Model.
-- Returns the path written.
Exporter.__call = function(self, model)
  model = model or self.args.model
  if model == nil or model == cfgmod.NONE then
    error("'model' argument is missing: give model=<weights.safetensors> or model=<weights.pt>", 0)
  end
  local format = tostring(self.args.format):lower()
  if not supported(format) then
    error(
      string.format(
        "format=%s is not supported: yolotrain exports format=%s",
        format,
        table.concat(Exporter.FORMATS, " or format=")
      ),
      0
    )
  end
  self.args.format = format
  self:run_callbacks("on_export_start")
  local t0 = yt.machine.now()
  local file
  if format == "safetensors" then
    file = self:export_safetensors(model)
  else
    file = self:export_onnx(model)
  end
  self.file = file
  log(
    "\nExport complete (%.1fs)\nResults saved to %s",
    yt.machine.now() - t0,
    yt.sys.realpath(utils.dirname(file)) or file
  )
  self:run_callbacks("on_export_end")
  return file
end

function Exporter:export_safetensors(model)
  if not pt.is_pt(model) then
    error(
      string.format(
        "format=safetensors converts a .pt checkpoint; model=%s is not one (yolotrain's own "
          .. "weights are safetensors already)",
        tostring(model)
      ),
      0
    )
  end
  local out = pt.export_safetensors(model, self.file) -- finds or downloads the .pt (utils.pt.locate)
  log("safetensors: export success, saved as '%s' (%.1f MB)", out, (yt.sys.stat(out) or { size = 0 }).size / 1e6)
  return out
end

-- The output path: <weights stem>.onnx beside the weights (a model YAML: <yaml stem>.onnx in the current folder)
local function output_path(model, ext)
  if type(model) ~= "string" then return "model." .. ext end
  if model:match("%.ya?ml$") then return (model:match("([^/]+)%.ya?ml$")) .. "." .. ext end
  return (model:gsub("%.[^./]+$", "")) .. "." .. ext
end

function Exporter:load_model(model)
  local Detection_Validator = require("yolotrain.models.yolo.detect.val")
  local args = setmetatable({ verbose = false }, { __index = self.args })
  local m = Detection_Validator.resolve_model(model, args, nil)
  m:eval()
  return m
end

function Exporter:export_onnx(model)
  self:check_args()
  local a = self.args
  local source = type(model) == "string" and model or nil
  local info = checkpoint.inherited_args(source)
  local m = self:load_model(model)
  local stride = utils.max_stride(m)
  local imgsz = self.overrides.imgsz or info.imgsz or a.imgsz
  local hw = utils.check_imgsz(imgsz, stride, 2)
  local batch = self.overrides.batch or 1 -- as Ultralytics: 1 unless given
  local file = self.file or output_path(source, "onnx")
  local nc = m.nc

  -- a dry run as Ultralytics does: the shapes the graph must reproduce
  local prev = yt.set_grad_enabled(false)
  yt.scope_begin()
  local ok, y = pcall(function() return m(yt.zeros({ batch, 3, hw[1], hw[2] })) end)
  local out_shape = ok and y:shape() or nil
  yt.scope_end()
  yt.set_grad_enabled(prev)
  if not ok then error(y, 0) end
  log(
    "yolotrain: starting from '%s' with input shape (%d, 3, %d, %d) BCHW and output shape(s) (%d, %d, %d)",
    tostring(source or "a " .. (m.__name or "model")),
    batch,
    hw[1],
    hw[2],
    out_shape[1],
    out_shape[2],
    out_shape[3]
  )
  log("ONNX: starting export with opset %d...", a.opset)
  local t0 = yt.machine.now()

  local g = onnx.Graph { opset = a.opset, static_hw = (not a.dynamic) and hw or nil }
  local output = g:call(m, "", "images")
  -- the graph's last value takes the name consumers look for
  g.writer:node("Identity", "/output0", { output }, { "output0" })
  local in_dims = a.dynamic and { "batch", 3, "height", "width" } or { batch, 3, hw[1], hw[2] }
  local out_dims = a.dynamic and { "batch", 4 + nc, "anchors" } or out_shape
  local data = self.overrides.data or info.data
  local trained_on = type(data) == "string" and ("trained on " .. utils.basename(data)) or "(untrained)"
  local names = m.names or {}
  local w = g:finish {
    inputs = { { "images", in_dims } },
    outputs = { { "output0", out_dims } },
    metadata = {
      { "description", string.format("yolotrain %s model %s", self:pretty_name(m), trained_on) },
      { "author", "yolotrain" },
      { "date", os.date("!%Y-%m-%dT%H:%M:%S") },
      { "version", yt.version },
      { "license", info.license or Exporter.DEFAULT_LICENSE },
      { "docs", Exporter.DOCS },
      { "stride", tostring(math.floor(stride)) },
      { "task", "detect" },
      { "batch", tostring(batch) },
      { "imgsz", string.format("[%d, %d]", hw[1], hw[2]) },
      { "names", names_repr(names, nc) },
    },
  }
  local okw, err = pcall(w.save, w, file)
  w:close()
  if not okw then error(err, 0) end
  log(
    "ONNX: export success %.1fs, saved as '%s' (%.1f MB)",
    yt.machine.now() - t0,
    file,
    (yt.sys.stat(file) or { size = 0 }).size / 1e6
  )
  return file
end

-- "YOLOv8n" from the model's YAML file name, as the model summary names it
function Exporter:pretty_name(m)
  local line = select(5, m:info(false))
  return (line:match("^(%S+) summary") or "YOLOv8")
end

-- The CLI's export mode: yolotrain detect export model=... format=...
Exporter:static("export", function(overrides) return Exporter { overrides = overrides }(overrides.model) end)

return Exporter
