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
    collectgarbage("stop") -- prove the scope frees activations, not the collector
    local function step()
      yt.scope_begin()
      local outs = m(images)
      local loss = outs[1]:sum() + outs[2]:sum()
      loss:backward()
      yt.scope_end()
      for _, p in m:named_parameters() do p.grad = nil end
    end
    for _ = 1, 10 do step() end
    local bytes0 = yt.memory()
    local rss0 = yt.rss()
    for _ = 1, 300 do step() end
    local bytes1 = yt.memory()
    local rss1 = yt.rss()
    collectgarbage("restart")
    assert.are.equal(bytes0, bytes1)
    assert.are.equal(0, yt.tape_length())
    -- Lua's own small objects grow while the collector is stopped; tensor storage must not
    assert(rss1 - rss0 < 32e6, string.format("RSS grew by %.1f MB", (rss1 - rss0) / 1e6))
  end)
end)
