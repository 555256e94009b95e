-- Validate a detector on a dataset, as `yolo val` / model.val() does, from Lua: the per-class table, the Speed line,
-- plots in runs/detect/val*, and the metrics returned. A custom step shows how validators are customised.
--   build/yolotrain recipes/validate.lua model=runs/detect/train/weights/best.safetensors data=coco128 imgsz=320
--   build/yolotrain recipes/validate.lua      (defaults: Ultralytics' init weights of yolov8n on coco128)
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local here = (debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./") .. "../" -- the repository

local overrides = cfg.recipe_overrides({
  model = "yolov8n.yaml",
  pretrained = here .. "../shared/parity/yolov8n_init.safetensors",
  data = here .. "../shared/datasets/coco128",
  imgsz = 320,
  batch = 16,
}, arg)

-- A validator subclass: count the images each batch had (any overridable step works the same way).
local Counting, Base = detect.Detection_Validator:extend("Counting")
function Counting:update_metrics(preds, batch)
  self.images_seen = (self.images_seen or 0) + #preds
  return Base.update_metrics(self, preds, batch)
end

local validator = Counting { args = overrides }
validator:add_callback(
  "on_val_end",
  function(v) print(string.format("on_val_end: %d images in %d batches", v.images_seen, v.nb_run)) end
)
local metrics = validator(nil, overrides.model)
print(
  string.format(
    "mAP50 %.4f  mAP50-95 %.4f  fitness %.4f",
    metrics["metrics/mAP50(B)"],
    metrics["metrics/mAP50-95(B)"],
    metrics.fitness or validator.metrics.fitness
  )
)
for c, m in pairs(metrics.maps) do
  if m > 0 then print(string.format("  class %d (%s): mAP50-95 %.4f", c, validator.names[c], m)) end
end
