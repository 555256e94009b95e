-- A Detection_Model subclass with its own loss, composed from the loss pieces yolotrain exposes.
-- MyLoss = the v8 detection loss plus a small L2 penalty on the class logits' mean (a toy regulariser showing
-- that any differentiable expression of the predictions can join the loss).
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local tasks = require("yolotrain.nn.tasks")
local loss = require("yolotrain.utils.loss")

local MyLoss, Base = loss.v8DetectionLoss:extend("MyLoss")

function MyLoss:__call(preds, batch)
  local total, items = Base.__call(self, preds, batch)
  local nc = self.nc
  local penalty = 0
  for _, p in ipairs(preds) do
    local logits = p:narrow(2, p:shape(2) - nc + 1, nc)
    penalty = penalty + logits:mean():pow(2)
  end
  self.last_penalty = penalty:item()
  return total + penalty * 1e-3, items
end

local MyCustomModel = tasks.Detection_Model:extend("MyCustomModel")
function MyCustomModel:build_loss_class() return MyLoss(self) end

local CustomTrainer = detect.Detection_Trainer:extend("CustomTrainer")
function CustomTrainer:build_model(model_cfg, weights)
  local m = MyCustomModel(model_cfg, { nc = self.data.nc })
  if weights then m:load(weights) end
  return m
end

local overrides = cfg.recipe_overrides(
  { data = "shapes", model = "yolov8n.yaml", epochs = 3, imgsz = 160, name = "custom_model_loss" },
  arg
)
local trainer = CustomTrainer { overrides = overrides }
trainer:train()
assert(trainer.model.criterion.last_penalty ~= nil, "the custom loss was not used")
print(
  string.format("custom loss: last penalty %.3g; best weights %s", trainer.model.criterion.last_penalty, trainer.best)
)
