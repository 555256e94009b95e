-- Run a detector on images and use the Results objects, as `yolo predict` / model.predict() does, from Lua.
--   build/yolotrain recipes/predict.lua model=runs/detect/train/weights/best.safetensors source=path/to/images
--   build/yolotrain recipes/predict.lua      (defaults: Ultralytics' init weights, three coco128 images, conf 1e-4
--                                              because untrained scores are tiny)
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local here = (debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./") .. "../" -- the repository

local overrides = cfg.recipe_overrides({
  model = "yolov8n.yaml",
  pretrained = here .. "../shared/parity/yolov8n_init.safetensors",
  source = here .. "../shared/datasets/coco128/images/val2017/0000000007*.jpg",
  imgsz = 320,
  conf = 1e-4,
  save = true,
  save_txt = true,
}, arg)

local predictor = detect.Detection_Predictor { overrides = overrides }
predictor:add_callback("on_predict_batch_end", function(p)
  for _, r in ipairs(p.results) do
    io.write(string.format("  %s: %d boxes\n", r.path, #r.boxes))
  end
end)

-- stream=true: one Results at a time, so a folder of 10,000 images is never held in memory
for r in predictor(overrides.source, nil, true) do
  local top = r:summary()[1]
  if top then
    print(
      string.format(
        "  best box: %s %.3f at (%.0f, %.0f, %.0f, %.0f)",
        top.name,
        top.confidence,
        top.box.x1,
        top.box.y1,
        top.box.x2,
        top.box.y2
      )
    )
  end
  print("  xywhn of the first box: " .. tostring(#r.boxes > 0 and r.boxes.xywhn[1] or "none"))
end
print("saved to " .. predictor.save_dir)
