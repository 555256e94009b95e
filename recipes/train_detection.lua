-- The seed's example: train a detector with a callback that reports the latest weights after every epoch.
--   build/yolotrain recipes/train_detection.lua [data=coco128.yaml] [key=value ...]
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")

local overrides = cfg.recipe_overrides({ data = "shapes", model = "yolov8n.yaml", epochs = 3, imgsz = 160 }, arg)

local function log_model(trainer)
  print(string.format("epoch %d done; latest weights: %s", trainer.epoch + 1, trainer.last))
end

local trainer = detect.Detection_Trainer { overrides = overrides }
trainer:add_callback("on_train_epoch_end", log_model)
trainer:DDP_or_normally_train()
print(trainer.best)
