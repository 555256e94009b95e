-- The README's main job. Until the trainer lands: build YOLOv8n, print its summary, and time a
-- forward and a forward+backward pass of a batch of 16 images at 320x320.
local yt = require("yolotrain")
local tasks = require("yolotrain.nn.tasks")

local model = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
model:info()

local images = yt.rand({ 16, 3, 320, 320 }):keep()
model:train()
for step = 1, 3 do
  yt.scope_begin()
  local t0 = yt.now()
  local outs = model(images)
  local t1 = yt.now()
  local loss = outs[1]:sum() + outs[2]:sum() + outs[3]:sum()
  loss:backward()
  local t2 = yt.now()
  yt.scope_end()
  print(string.format("step %d: forward %.0f ms, backward %.0f ms (batch 16, 320x320)", step, (t1 - t0) * 1000,
    (t2 - t1) * 1000))
end
