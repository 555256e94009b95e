-- Detection_Model against Ultralytics 8.2.100's golden fixtures (../shared/parity).
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local helpers = require("helpers")
local cjson = require("cjson")

local P = helpers.parity_dir

local function max_abs_diff(a, b) return (a - b):abs():max():item() end
local function max_abs(a) return a:abs():max():item() end

-- every element: |a - ref| <= atol + rtol * |ref|
local function assert_close(a, ref, atol, rtol, what)
  assert.are.same(ref:shape(), a:shape(), what .. ": shape")
  local excess = ((a - ref):abs() - (ref:abs() * rtol + atol)):max():item()
  assert(
    excess <= 0,
    string.format("%s: max diff %.3g exceeds the tolerance (max |ref| %.3g)", what, max_abs_diff(a, ref), max_abs(ref))
  )
end

local summary = cjson.decode(helpers.read_file(P .. "/yolov8n_summary.json"))
local init_sd = yt.io.load_safetensors(P .. "/yolov8n_init.safetensors")

local function new_model()
  local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
  m:load_state_dict(init_sd)
  return m
end

describe("Detection_Model (yolov8n)", function()
  it("builds the layers of Ultralytics' table", function()
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
    for i, ref in ipairs(summary.layers) do
      local layer = m.model.items[i]
      assert.are.equal(ref.index, layer.i)
      assert.are.equal(ref.repeats, layer.n, "repeats of layer " .. ref.index)
      assert.are.equal(ref.params, layer.np, "params of layer " .. ref.index)
      assert.are.equal(ref.args, layer.args_repr, "args of layer " .. ref.index)
    end
  end)

  it("prints and returns the summary numbers", function()
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
    local layers, params, grads, gflops, line = m:info(false)
    assert.are.equal(summary.layers_count, layers)
    assert.are.equal(summary.parameters, params)
    assert.are.equal(summary.gradients, grads)
    assert.is_true(math.abs(gflops - summary.gflops_640) < 1e-4, "gflops " .. gflops)
    assert.are.equal(summary.printed_summary, line)
  end)

  it("fuses Conv+BN like Ultralytics", function()
    local m = new_model()
    m:fuse()
    local _, _, _, _, line = m:info(false)
    assert.are.equal(summary.printed_summary_fused, line)
  end)

  it("has Ultralytics' state-dict names in order and loads the init weights strictly", function()
    local m = new_model()
    local names = m:state_dict_names()
    assert.are.equal(355, #names)
    local i = 0
    for name, p in m:named_parameters() do
      i = i + 1
      local ref = summary.named_parameters[i]
      assert.are.equal(ref.name, name)
      assert.are.same(ref.shape, p:shape())
      assert.are.equal(ref.requires_grad, p.requires_grad)
    end
    assert.are.equal(#summary.named_parameters, i)
  end)

  it("leaves the stride probe's BatchNorm statistics like Ultralytics", function()
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
    local sd = m:state_dict()
    assert.is_true(math.abs(sd["model.0.bn.running_var"][1] - 0.9) < 1e-6)
    assert.are.equal(1, sd["model.0.bn.num_batches_tracked"]:item())
    local ref = init_sd["model.22.cv3.0.2.bias"]
    assert.is_true(max_abs_diff(sd["model.22.cv3.0.2.bias"], ref) < 1e-5)
    assert.is_true(max_abs_diff(sd["model.22.cv2.1.2.bias"], init_sd["model.22.cv2.1.2.bias"]) < 1e-6)
  end)

  it("reports missing, unexpected and mismatched keys", function()
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
    local sd = {}
    for k, v in pairs(init_sd) do
      sd[k] = v
    end
    sd["model.0.conv.weight"] = nil
    sd["extra.weight"] = yt.zeros({ 1 })
    sd["model.1.conv.weight"] = yt.zeros({ 2, 2 })
    local ok, err = pcall(m.load_state_dict, m, sd)
    assert.is_false(ok)
    assert.matches("missing keys %(1%)", err)
    assert.matches("model.0.conv.weight", err, 1, true)
    assert.matches("unexpected keys %(1%)", err)
    assert.matches("extra.weight", err, 1, true)
    assert.matches("model.1.conv.weight: checkpoint %[2, 2%], model %[32, 16, 3, 3%]", err)
    local report = m:load_state_dict(sd, { strict = false })
    assert.are.equal(353, report.loaded) -- 355 - one missing - one mismatched
  end)

  describe("forward parity", function()
    local fwd = yt.io.load_safetensors(P .. "/forward.safetensors")

    it("train mode: raw outputs and the BatchNorm running stats", function()
      local m = new_model()
      m:train()
      yt.set_grad_enabled(false)
      local outs = m(fwd.images)
      yt.set_grad_enabled(true)
      for i = 1, 3 do
        assert_close(outs[i], fwd["train_out." .. (i - 1)], 1e-3, 1e-4, "train_out." .. (i - 1))
      end
      local sd = m:state_dict()
      for name, ref in pairs(fwd) do
        local bn = name:match("^bn_after_train%.(.*)$")
        if bn then assert_close(sd[bn], ref, 1e-5, 1e-4, name) end
      end
      assert.are.equal(2, sd["model.0.bn.num_batches_tracked"]:item())
    end)

    it("eval mode: decoded output", function()
      local m = new_model()
      m:eval()
      yt.set_grad_enabled(false)
      local y, raw = m(fwd.images)
      yt.set_grad_enabled(true)
      assert.are.same({ 4, 84, 2100 }, y:shape())
      assert.are.equal(3, #raw)
      local ref = fwd.eval_out
      assert_close(y:narrow(2, 1, 4), ref:narrow(2, 1, 4), 5e-2, 0, "eval boxes")
      assert_close(y:narrow(2, 5, 80), ref:narrow(2, 5, 80), 1e-4, 0, "eval class probabilities")
    end)

    -- the init weights with the BatchNorm statistics recalibrated on the fixture's images
    local function calibrated_model()
      local m = new_model()
      local sd = m:state_dict()
      for name, ref in pairs(fwd) do
        local bn = name:match("^calib%.(.*)$")
        if bn and sd[bn] then sd[bn]:copy_(ref) end
      end
      return m
    end

    it("eval mode with recalibrated statistics", function()
      local m = calibrated_model()
      m:eval()
      yt.set_grad_enabled(false)
      local y = m(fwd.images)
      yt.set_grad_enabled(true)
      local ref = fwd.calib_eval_out
      assert_close(y:narrow(2, 1, 4), ref:narrow(2, 1, 4), 5e-2, 0, "calibrated boxes")
      assert_close(y:narrow(2, 5, 80), ref:narrow(2, 5, 80), 1e-4, 0, "calibrated class probabilities")
    end)

    it("fused eval equals unfused eval", function()
      local m = calibrated_model()
      m:eval()
      yt.set_grad_enabled(false)
      local y1 = m(fwd.images):clone()
      m:fuse()
      local y2 = m(fwd.images)
      yt.set_grad_enabled(true)
      assert_close(y2:narrow(2, 1, 4), y1:narrow(2, 1, 4), 5e-2, 0, "fused boxes")
      assert_close(y2:narrow(2, 5, 80), y1:narrow(2, 5, 80), 1e-4, 0, "fused class probabilities")
    end)
  end)

  it("backward: given the loss gradient at the outputs, every parameter gradient matches", function()
    local ls = yt.io.load_safetensors(P .. "/loss.safetensors")
    local m = new_model()
    m:train()
    local outs = m(ls.images)
    yt.backward({ outs[1], outs[2], outs[3] }, { ls["grad_preds.0"], ls["grad_preds.1"], ls["grad_preds.2"] })
    local worst, count = 0, 0
    for name, p in m:named_parameters() do
      local ref = ls["grad." .. name]
      if p.requires_grad then
        assert.is_not_nil(ref, name)
        assert.is_not_nil(p.grad, "no gradient for " .. name)
        local diff = max_abs_diff(p.grad, ref)
        local scale = max_abs(ref)
        local rel_l2 = math.sqrt((p.grad - ref):pow(2):sum():item() / math.max(ref:pow(2):sum():item(), 1e-30))
        assert(diff <= 1e-3 * scale, string.format("%s: max diff %.3g > 1e-3 * %.3g", name, diff, scale))
        assert(rel_l2 <= 1e-3, string.format("%s: rel-L2 %.3g", name, rel_l2))
        worst = math.max(worst, diff / math.max(scale, 1e-30))
        count = count + 1
      else
        assert.is_nil(ref, name)
      end
    end
    assert.are.equal(183, count)
    print(string.format("\n  network backward: worst per-tensor max diff / max|ref| = %.3g", worst))
  end)

  describe("bad input", function()
    it("names the unknown module and the YAML file", function()
      local dir = helpers.tmpdir()
      helpers.write_file(
        dir .. "/bad.yaml",
        [==[
nc: 3
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Frobnicate, [32]]
head:
  - [[0, 1], 1, Detect, [nc]]
]==]
      )
      local ok, err = pcall(tasks.Detection_Model, dir .. "/bad.yaml")
      assert.is_false(ok)
      assert.matches("bad.yaml", err, 1, true)
      assert.matches("unknown module 'Frobnicate'", err, 1, true)
      assert.matches("layer 1", err, 1, true)
    end)

    it("names the file and line of a YAML syntax error", function()
      local dir = helpers.tmpdir()
      helpers.write_file(dir .. "/broken.yaml", "nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]\n")
      local ok, err = pcall(tasks.Detection_Model, dir .. "/broken.yaml")
      assert.is_false(ok)
      assert.matches("broken.yaml:%d+", err)
    end)

    it("takes the first scale the YAML lists when the file name has none (not the alphabetically first)", function()
      local dir = helpers.tmpdir()
      -- scales listed s, then l: a sorted pick would build the 'l' widths
      helpers.write_file(
        dir .. "/tiny.yaml",
        [==[
nc: 3
scales:
  s: [0.33, 0.25, 1024]
  l: [1.00, 1.00, 512]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[0], 1, Detect, [nc]]
]==]
      )
      local d = tasks.yaml_model_load(dir .. "/tiny.yaml")
      assert.are.equal("s", d.scale)
      local m = tasks.Detection_Model(dir .. "/tiny.yaml", { verbose = false })
      -- Conv(64 * 0.25 = 16 channels, 3x3) on 3 input channels
      assert.are.same({ 16, 3, 3, 3 }, m:state_dict()["model.0.conv.weight"]:shape())
    end)

    it("refuses a missing model config", function()
      local ok, err = pcall(tasks.Detection_Model, "nonexistent_model.yaml")
      assert.is_false(ok)
      assert.matches("not found", err, 1, true)
    end)
  end)
end)
