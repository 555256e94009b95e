-- Activation memory is released after every step without help from Lua's garbage collector.
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local helpers = require("helpers")

local TINY = [==[
nc: 4
scales:
  t: [0.33, 0.125, 256]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, SPPF, [256, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 2], 1, Concat, [1]]
  - [-1, 1, C2f, [128]]
  - [[7, 4], 1, Detect, [nc]]
]==]

describe("memory", function()
  it("stays flat over hundreds of training steps", function()
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/tiny-t.yaml", TINY)
    local m = tasks.Detection_Model(dir .. "/tiny-t.yaml", { nc = 4 })
    m:train()
    local images = yt.rand({ 2, 3, 64, 64 }):keep()
    local function step()
      yt.scope_begin()
      local outs = m(images)
      local loss = outs[1]:sum() + outs[2]:sum()
      loss:backward()
      yt.scope_end()
      for _, p in m:named_parameters() do p.grad = nil end
    end
    for _ = 1, 10 do step() end
    -- with the collector stopped, tensor storage is still released at every step's end: the activations do not
    -- wait for Lua's garbage collector (only the small handles do)
    collectgarbage("collect") -- temporaries of model construction (outside any step) go first
    collectgarbage("stop")
    local bytes0 = yt.memory()
    for _ = 1, 100 do step() end
    assert.are.equal(bytes0, (yt.memory()))
    assert.are.equal(0, yt.tape_length())
    collectgarbage("restart")
    -- as training runs it (the collector on), the resident set is flat over hundreds of steps
    for _ = 1, 50 do step() end
    local rss0 = yt.rss()
    for _ = 1, 300 do step() end
    local rss1 = yt.rss()
    assert.are.equal(bytes0, (yt.memory()))
    assert(rss1 - rss0 < 16e6, string.format("RSS grew by %.1f MB over 300 steps", (rss1 - rss0) / 1e6))
  end)
end)
