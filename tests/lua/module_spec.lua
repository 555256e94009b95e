-- nn.Module fields: assigning a layer or a Parameter registers it, in assignment order, as torch's __setattr__ does.
local yt = require("yolotrain.core")
local modules = require("yolotrain.nn.modules")
local tasks = require("yolotrain.nn.tasks")
local helpers = require("helpers")

local Module, Parameter = modules.Module, modules.Module.Parameter

-- The PyTorch habit: sub-layers assigned to fields.
local Pair = Module:extend("Pair")
function Pair:init(c)
  Module.init(self)
  self.cv1 = modules.Conv(c, c, 3)
  self.cv2 = modules.Conv(c, c, 3)
  self.gain = Parameter(yt.ones({ 1, c, 1, 1 }))
  self.note = "plain values stay plain"
  self.counter = yt.zeros({ 1 }) -- a tensor that is not a Parameter is not registered
end
function Pair:forward(x) return self.cv2(self.cv1(x)) * self.gain end
function Pair:onnx(g, x)
  return g:op("Mul", { g:call(self.cv2, "cv2", g:call(self.cv1, "cv1", x)), g:param(self.gain, "gain") })
end

local function conv_params(c) return c * c * 9 + 2 * c end -- conv weight + BN weight and bias

describe("Module fields", function()
  it("register sub-layers and Parameters in assignment order, with torch's state-dict names", function()
    local m = Pair(32)
    local n = m:num_params()
    assert.are.equal(2 * conv_params(32) + 32, n)
    assert.are.same({
      "gain",
      "cv1.conv.weight",
      "cv1.bn.weight",
      "cv1.bn.bias",
      "cv1.bn.running_mean",
      "cv1.bn.running_var",
      "cv1.bn.num_batches_tracked",
      "cv2.conv.weight",
      "cv2.bn.weight",
      "cv2.bn.bias",
      "cv2.bn.running_mean",
      "cv2.bn.running_var",
      "cv2.bn.num_batches_tracked",
    }, m:state_dict_names())
    assert.are.equal("plain values stay plain", m.note)
    assert.is_true(yt.is_tensor(m.counter))
    assert.is_true(m.gain.requires_grad)
  end)

  it("train, save, reload and fuse like layers added with add_module", function()
    yt.manual_seed(1)
    local m = Pair(8)
    local x = yt.rand({ 2, 8, 6, 6 })
    m:train()
    local loss = m(x):sum()
    loss:backward()
    assert.is_not_nil(m.cv1.conv.weight.grad, "the assigned conv gets a gradient")
    assert.is_not_nil(m.gain.grad)
    local dir = helpers.tmpdir()
    yt.io.save_safetensors(dir .. "/pair.safetensors", m:state_dict())
    local m2 = Pair(8)
    m2:load_state_dict((yt.io.load_safetensors(dir .. "/pair.safetensors")))
    m:eval()
    m2:eval()
    local prev = yt.set_grad_enabled(false)
    local y1, y2 = m(x), m2(x)
    assert.are.equal(0, (y1 - y2):abs():max():item())
    m2.cv1:fuse()
    m2.cv2:fuse()
    assert.is_nil(m2.cv1.bn)
    assert(((m2(x) - y1):abs():max():item()) < 1e-5, "fused output")
    yt.set_grad_enabled(prev)
  end)

  it("follow reassignment and nil: the state dict is what the fields hold", function()
    local m = Pair(4)
    local fresh = modules.Conv(4, 4, 1)
    m.cv1 = fresh
    assert.are.equal(fresh, m.cv1)
    assert.are.same({ 4, 4, 1, 1 }, m:state_dict()["cv1.conv.weight"]:shape())
    assert.are.equal("cv1.conv.weight", m:state_dict_names()[2], "a reassigned layer keeps its place")
    m.cv2 = nil
    assert.is_nil(m.cv2)
    assert.is_nil(m:state_dict()["cv2.conv.weight"])
    m.gain = yt.full({ 1, 4, 1, 1 }, 2.0)
    assert.are.equal(2.0, m:state_dict().gain:max():item())
    local ok, err = pcall(function() m.cv1 = 3 end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("cannot assign a number to 'cv1', a sub-module of Pair", 1, true), err)
  end)

  it("say what to do when a layer is assigned before Module.init", function()
    local Early = Module:extend("Early")
    function Early:init()
      self.cv = modules.Conv(2, 2, 1)
      Module.init(self)
    end
    local ok, err = pcall(Early)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("call Module.init(self) in Early:init", 1, true), err)
  end)

  it("show a Lua-defined layer of a model YAML under its own class name and export it", function()
    modules.register("Pair", Pair, {
      channels = function(c1, args)
        table.insert(args, 1, c1)
        return c1
      end,
    })
    local dir = helpers.tmpdir()
    helpers.write_file(
      dir .. "/pair.yaml",
      [==[
nc: 2
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Pair, []]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[1, 2, 3], 1, Detect, [nc]]
]==]
    )
    local m = tasks.Detection_Model(dir .. "/pair.yaml", { verbose = false })
    local row
    for _, r in ipairs(m.layer_rows) do
      if r:find("Pair", 1, true) then row = r end
    end
    assert.truthy(row and row:find(" Pair ", 1, true) and not row:find("yolotrain.nn.modules.Pair", 1, true), row)
    assert.are.equal(2 * conv_params(16) + 16, m.model.items[2]:num_params())
    assert.truthy(m:state_dict()["model.1.cv1.conv.weight"])
    local Exporter = require("yolotrain.engine.exporter")
    local path = Exporter { overrides = { format = "onnx", imgsz = 64 }, file = dir .. "/pair.onnx" }(m)
    assert.truthy(yt.sys.stat(path).size > 0)
  end)
end)
