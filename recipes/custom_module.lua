-- A layer defined in Lua, used inside the model YAML: a learnable per-channel scale ("Scale") inserted after the
-- SPPF block. It is composed of core ops, so autograd, checkpoints and fuse() just work.
local yt = require("yolotrain")
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local modules = require("yolotrain.nn.modules")

local Scale = modules.Module:extend("Scale")
function Scale:init(c1, init_value)
  modules.Module.init(self)
  self:register_parameter("weight", yt.full({ 1, c1, 1, 1 }, init_value or 1.0))
end
function Scale:forward(x) return x * self.weight end
-- what ONNX export writes for it (detect export format=onnx): the same product
function Scale:onnx(g, x) return g:op("Mul", { x, g:param(self.weight, "weight") }) end

-- channels: output = input channels; args in the YAML: [init_value]
modules.register("Scale", Scale, {
  channels = function(c1, args)
    table.insert(args, 1, c1)
    return c1
  end,
})

local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local yaml = here .. "custom_module.yaml"

local overrides =
  cfg.recipe_overrides({ data = "shapes", model = yaml, epochs = 2, imgsz = 160, name = "custom_module" }, arg)
local trainer = detect.Detection_Trainer { overrides = overrides }
trainer:train()
local sd = trainer.model:state_dict()
assert(sd["model.10.weight"], "the Scale layer is not in the model")
print(string.format("custom_module: Scale weights after training: mean %.4f", sd["model.10.weight"]:mean():item()))
