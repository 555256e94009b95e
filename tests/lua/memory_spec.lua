-- Activation memory is released after every step without help from Lua's garbage collector.
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local modules = require("yolotrain.nn.modules")
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

  it("holds at the end of the loss no more activations than backward reads", function()
    local m = tasks.Detection_Model(fake.tiny_yaml(helpers.tmpdir()), { nc = 4 })
    m:train()
    local batch = {
      img = yt.rand({ 4, 3, 128, 128 }):keep(),
      batch_idx = yt.tensor({ 0, 1, 2, 3 }):keep(),
      cls = yt.tensor({ { 0 }, { 1 }, { 2 }, { 3 } }):keep(),
      bboxes = yt.tensor({
        { 0.5, 0.5, 0.3, 0.3 },
        { 0.4, 0.6, 0.2, 0.5 },
        { 0.3, 0.3, 0.4, 0.2 },
        { 0.6, 0.5, 0.5, 0.5 },
      }):keep(),
    }
    -- The bound, from the shapes the forward makes: what backward may read is at most the input and the output of
    -- every convolution (the weight's gradient reads the input, BatchNorm's backward the convolution's output), the
    -- input of every max-pool and the loss's gradient of the predictions (their size). The image is already in use
    -- before the step. Whatever else is left at the end of the loss (the C2f's first output once split and
    -- concatenated, a Bottleneck's output before its shortcut, an upsampled map, the head's last convolutions, the
    -- predictions) is over the bound unless the forward freed it after its last reader.
    local bound, seen = 0, setmetatable({}, { __mode = "k" }) -- weak: the count must not hold a tensor
    local function count(t)
      if not seen[t] and t ~= batch.img then
        seen[t] = true
        bound = bound + 4 * t:numel()
      end
    end
    local conv, pool, detect = modules.Conv2d.forward, modules.MaxPool2d.forward, modules.Detect.forward
    modules.Conv2d.forward = function(self, x)
      local y = conv(self, x)
      count(x)
      count(y)
      return y
    end
    modules.MaxPool2d.forward = function(self, x)
      count(x)
      return pool(self, x)
    end
    modules.Detect.forward = function(self, xs)
      local out = detect(self, xs)
      for _, o in ipairs(out) do
        bound = bound + 4 * o:numel()
      end
      return out
    end
    collectgarbage("collect")
    collectgarbage("stop") -- what is freed must be freed by the forward, not the collector
    yt.scope_begin()
    local before = yt.memory()
    local ok, err = pcall(function()
      local loss = m:loss(batch)
      local held = yt.memory() - before
      assert(
        held <= bound,
        string.format("%d bytes in use at the end of the loss, over the %d backward may read", held, bound)
      )
      loss:backward()
    end)
    yt.scope_end()
    collectgarbage("restart")
    modules.Conv2d.forward, modules.MaxPool2d.forward, modules.Detect.forward = conv, pool, detect
    assert(ok, err)
  end)
end)
