-- Every 10 epochs, "upload" the latest weights to a destination folder (the first argument): copied to a
-- temporary name and renamed, so a reader of the destination never sees half a file. The hook is
-- on_model_save, which fires after that epoch's checkpoint (last.safetensors) has been written.
--   build/yolotrain recipes/upload_weights.lua /path/to/destination [every=10] [key=value ...]
local cfg = require("yolotrain.cfg")
local utils = require("yolotrain.utils")
local detect = require("yolotrain.models.yolo.detect")

local words = {}
local every = 10
for i = 1, #arg do
  local n = arg[i]:match("^every=(%d+)$")
  if n then
    every = tonumber(n)
  else
    words[#words + 1] = arg[i]
  end
end
local overrides, positional =
  cfg.recipe_overrides({ data = "shapes", model = "yolov8n.yaml", epochs = 10, imgsz = 160, name = "upload" }, words)
local destination = positional[1]
  or error("usage: upload_weights.lua <destination folder> [every=N] [key=value ...]", 0)
utils.mkdir_p(destination)

local function upload(trainer)
  local epoch = trainer.epoch + 1
  if epoch % every ~= 0 then return end
  local target = utils.join(destination, string.format("epoch%d.safetensors", epoch))
  utils.atomic_copy(trainer.last, target)
  print(string.format("uploaded %s -> %s", trainer.last, target))
end

local trainer = detect.Detection_Trainer { overrides = overrides }
trainer:add_callback("on_model_save", upload)
trainer:train()
