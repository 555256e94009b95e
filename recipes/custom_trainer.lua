-- A trainer subclass that builds its own model: override build_model(cfg, weights).
-- Here: YOLOv8n with the data's class count and a thinner head is not needed; we build the model from the
-- YAML at scale "n" and print what we built, then load pretrained weights when given.
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local tasks = require("yolotrain.nn.tasks")

local CustomTrainer = detect.Detection_Trainer:extend("CustomTrainer")

function CustomTrainer:build_model(model_cfg, weights, verbose)
  local model = tasks.Detection_Model(model_cfg or "yolov8n.yaml", { nc = self.data.nc, verbose = verbose })
  if weights then model:load(weights) end
  local layers, params = model:info(false)
  print(string.format("CustomTrainer.build_model: %d layers, %d parameters, nc=%d", layers, params, model.nc))
  self.built_by_recipe = true
  return model
end

local overrides = cfg.recipe_overrides(
  { data = "shapes", model = "yolov8n.yaml", epochs = 3, imgsz = 160, name = "custom_trainer" },
  arg
)
local trainer = CustomTrainer { overrides = overrides }
trainer:DDP_or_normally_train()
assert(trainer.built_by_recipe, "build_model override was not used")
print(trainer.best)
