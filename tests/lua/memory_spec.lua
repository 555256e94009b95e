-- Activation memory is released after every step without help from Lua's garbage collector.
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local helpers = require("helpers")

local fake = require("fake_training")

describe("memory", function()
  it("stays flat over hundreds of training steps", function()
    local m = tasks.Detection_Model(fake.tiny_yaml(helpers.tmpdir()), { nc = 4 })
    m:train()
    local images = yt.rand({ 2, 3, 64, 64 }):keep()
    local function step()
      yt.scope_begin()
      local outs = m(images)
      local loss = outs[1]:sum() + outs[2]:sum()
      loss:backward()
      yt.scope_end()
      for _, p in m:named_parameters() do
        p.grad = nil
      end
    end
    for _ = 1, 10 do
      step()
    end
    -- with the collector stopped, tensor storage is still released at every step's end: the activations do not
    -- wait for Lua's garbage collector (only the small handles do)
    collectgarbage("collect") -- temporaries of model construction (outside any step) go first
    collectgarbage("stop")
    local bytes0 = yt.memory()
    for _ = 1, 60 do
      step()
    end
    assert.are.equal(bytes0, (yt.memory()))
    assert.are.equal(0, yt.tape_length())
    collectgarbage("restart")
    -- as training runs it (the collector on), the resident set is flat over hundreds of steps
    for _ = 1, 30 do
      step()
    end
    local rss0 = yt.machine.rss()
    for _ = 1, 200 do
      step()
    end
    local rss1 = yt.machine.rss()
    assert.are.equal(bytes0, (yt.memory()))
    assert(rss1 - rss0 < 16e6, string.format("RSS grew by %.1f MB over 200 steps", (rss1 - rss0) / 1e6))
  end)
end)
