-- yolotrain.models.yolo.detect: the detection trainer, validator and predictor (with Ultralytics' spellings as
-- aliases). Validator and predictor load on first use.
local M = {}
M.Detection_Trainer = require("yolotrain.models.yolo.detect.train")
M.DetectionTrainer = M.Detection_Trainer

local lazy = {
  Detection_Validator = "yolotrain.models.yolo.detect.val",
  DetectionValidator = "yolotrain.models.yolo.detect.val",
  Detection_Predictor = "yolotrain.models.yolo.detect.predict",
  DetectionPredictor = "yolotrain.models.yolo.detect.predict",
}
return setmetatable(M, {
  __index = function(t, k)
    local mod = lazy[k]
    if mod then
      local v = require(mod)
      rawset(t, k, v)
      return v
    end
  end,
})
