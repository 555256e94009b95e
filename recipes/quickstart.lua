-- The README's main job: train YOLOv8n from scratch on the embedded synthetic "shapes" dataset (generated on
-- first use) and validate it. About four minutes on 2 CPU cores; mAP50 ends near 0.95.
-- nbs=16 (the nominal batch for gradient accumulation) makes the optimizer step after every batch of 16: with
-- Ultralytics' default nbs=64 a 400-image dataset gives only 6 optimizer steps per epoch.
--   build/yolotrain recipes/quickstart.lua [key=value ...]      e.g. epochs=5 imgsz=128
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")

local overrides = cfg.recipe_overrides({
  model = "yolov8n.yaml",
  data = "shapes",
  epochs = 20,
  imgsz = 160,
  batch = 16,
  nbs = 16,
  workers = 2,
  name = "quickstart",
  close_mosaic = 5,
  plots = true,
}, arg)

local trainer = detect.Detection_Trainer { overrides = overrides }
trainer:train()
local m = trainer.metrics or {}
print(
  string.format(
    "quickstart: mAP50 %.3f, mAP50-95 %.3f; best weights: %s",
    m["metrics/mAP50(B)"] or 0,
    m["metrics/mAP50-95(B)"] or 0,
    trainer.best
  )
)
