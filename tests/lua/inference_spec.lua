-- The fused inference path (nn/modules.lua, "the fused inference path"): after fuse() and with grad mode off,
-- every convolution runs as a prepared oneDNN plan (yt.nn.conv2d_plan), activations stay channels-last and Detect
-- decodes in one C pass (yt.nn.detect_decode). Checked against the unfused eval model, the ops it replaces, and
-- the fixtures of ../shared/parity (forward.safetensors: eval outputs and layer outputs; pt/expected.safetensors:
-- a trained checkpoint's eval output).
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local modules = require("yolotrain.nn.modules")
local detect = require("yolotrain.models.yolo.detect")
local torch_utils = require("yolotrain.utils.torch_utils")
local helpers = require("helpers")

local P = helpers.parity_dir
local init_sd = yt.io.load_safetensors(P .. "/yolov8n_init.safetensors")
local fwd = yt.io.load_safetensors(P .. "/forward.safetensors")
local PT = P .. "/pt/yolov8n_coco128.pt"
local IMAGE = helpers.datasets_dir .. "/coco128/images/val2017/000000000139.jpg"

local function max_diff(a, b) return (a - b):abs():max():item() end

-- the init weights with the BatchNorm statistics recalibrated on the fixture's images (realistic magnitudes)
local function calibrated_model()
  local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
  m:load_state_dict(init_sd)
  local sd = m:state_dict()
  for name, ref in pairs(fwd) do
    local bn = name:match("^calib%.(.*)$")
    if bn and sd[bn] then sd[bn]:copy_(ref) end
  end
  return m:eval()
end

-- model(x) with grad mode off, the plans on or off
local function infer(m, x, plans)
  local was = modules.fused_inference
  modules.fused_inference = plans
  local prev = yt.set_grad_enabled(false)
  local ok, y, raw = pcall(m, x)
  yt.set_grad_enabled(prev)
  modules.fused_inference = was
  assert(ok, y)
  return y, raw
end

-- boxes within rel x max |box| of ref, class probabilities within abs
local function assert_decoded_close(y, ref, rel, abs, what)
  assert.are.same(ref:shape(), y:shape(), what .. ": shape")
  local rb, yb = ref:narrow(2, 1, 4), y:narrow(2, 1, 4)
  local db, scale = max_diff(yb, rb), rb:abs():max():item()
  local nc = ref:shape(2) - 4
  local dp = max_diff(y:narrow(2, 5, nc), ref:narrow(2, 5, nc))
  assert(db <= rel * scale, string.format("%s: boxes differ by %.3g px (max %.3g px)", what, db, scale))
  assert(dp <= abs, string.format("%s: class probabilities differ by %.3g", what, dp))
  return db, dp
end

-- The Conv layers of a model (and every fused convolution) with a plan now.
local function plans_of(m)
  local out = {}
  local prev = yt.set_grad_enabled(false)
  for layer in m:modules() do
    if layer:is_instance(modules.Conv) then out[#out + 1] = layer:infer_plan() end
  end
  yt.set_grad_enabled(prev)
  return out
end

describe("the fused inference path", function()
  it("equals the unfused eval model within 1e-4, at 320 and at a non-square size", function()
    local m = calibrated_model()
    local x320 = fwd.images
    -- real image content (random pixels are far from what the calibrated statistics saw: there folding the
    -- BatchNorms alone moves the probabilities by 1e-4), cut to 256x320 as a rectangular batch would be
    local xr = fwd.images:narrow(3, 33, 256):contiguous():keep()
    local ref320, refr = infer(m, x320, false):clone(), infer(m, xr, false):clone()
    m:fuse()
    local y320, raw = infer(m, x320, true)
    local db, dp = assert_decoded_close(y320, ref320, 1e-4, 1e-4, "320")
    assert.is_true(#raw == 3 and raw[1]:shape(2) == 144)
    local yr = infer(m, xr, true)
    local db2, dp2 = assert_decoded_close(yr, refr, 1e-4, 1e-4, "256x320")
    print(string.format("\n  fused plans vs unfused: 320 %.2g px %.2g; 256x320 %.2g px %.2g", db, dp, db2, dp2))
  end)

  it("equals the fused model's own ops (plans off) and runs a plan per convolution", function()
    local m = calibrated_model():fuse()
    local y_ops = infer(m, fwd.images, false):clone()
    local y = infer(m, fwd.images, true)
    assert_decoded_close(y, y_ops, 1e-4, 1e-5, "plans vs ops")
    local plans = plans_of(m)
    assert.are.equal(57, #plans) -- every Conv of YOLOv8n
    for _, p in ipairs(plans) do
      assert.are.equal(1, p:shapes())
      assert.is_truthy(tostring(p):match("^Conv2dPlan%("))
    end
    -- the activations between layers are channels-last: the raw Detect levels are too, and read the same
    local _, raw = infer(m, fwd.images, true)
    local _, raw_ops = infer(m, fwd.images, false)
    assert.is_false(raw[1]:is_contiguous())
    assert(max_diff(raw[1], raw_ops[1]) <= 1e-3, "raw level 1")
  end)

  it("matches the fixtures: calibrated eval output, and each layer's output", function()
    local m = calibrated_model():fuse()
    local y = infer(m, fwd.images, true)
    -- ../shared/parity/README.md: boxes within 5e-2 px, class probabilities within 1e-4
    local db = max_diff(y:narrow(2, 1, 4), fwd.calib_eval_out:narrow(2, 1, 4))
    local dp = max_diff(y:narrow(2, 5, 80), fwd.calib_eval_out:narrow(2, 5, 80))
    assert(db <= 5e-2 and dp <= 1e-4, string.format("boxes %.3g px, probabilities %.3g", db, dp))
    -- layer by layer on image 0 (calib_layer.<k>: top-level modules; upsample and concat are not stored)
    local prev = yt.set_grad_enabled(false)
    local x, outs, checked = fwd.images:narrow(1, 1, 1), {}, 0
    for _, layer in ipairs(m.model.items) do
      local inp = x
      if type(layer.f) == "table" then
        inp = {}
        for q, j in ipairs(layer.f) do
          inp[q] = j == -1 and x or outs[j]
        end
      elseif layer.f ~= -1 then
        inp = outs[layer.f]
      end
      x = layer(inp)
      outs[layer.i] = x
      local ref = fwd["calib_layer." .. layer.i]
      if ref then
        local excess = ((x - ref):abs() - (ref:abs() * 1e-4 + 1e-4)):max():item()
        assert(excess <= 0, string.format("layer %d: max diff %.3g", layer.i, max_diff(x, ref)))
        checked = checked + 1
      end
    end
    yt.set_grad_enabled(prev)
    assert.are.equal(16, checked)
  end)

  it("matches a trained checkpoint's eval output (pt/expected.safetensors)", function()
    local expected = yt.io.load_safetensors(P .. "/pt/expected.safetensors")
    local m = tasks.load_checkpoint_model(PT):eval():fuse()
    local y = infer(m, expected.input, true)
    local db = max_diff(y:narrow(2, 1, 4), expected.eval_out:narrow(2, 1, 4))
    local dp = max_diff(y:narrow(2, 5, 80), expected.eval_out:narrow(2, 5, 80))
    assert(db <= 5e-2 and dp <= 1e-4, string.format("boxes %.3g px, probabilities %.3g", db, dp))
  end)

  it("detect_decode equals the Lua decode (NCHW and channels-last levels, large logits)", function()
    local det = calibrated_model().model.items[23]
    local function decode(ls) return det:inference(ls) end
    for _, spread in ipairs({ 1, 12 }) do
      local levels = {}
      for i, hw in ipairs({ { 10, 8 }, { 5, 4 }, { 3, 2 } }) do
        levels[i] = ((yt.rand({ 2, 144, hw[1], hw[2] }) - 0.5) * (2 * spread)):keep()
      end
      local ref = infer(decode, levels, false)
      local got = infer(decode, levels, true)
      assert_decoded_close(got, ref, 1e-5, 1e-6, "decode, spread " .. spread)
      local cl = {}
      for i, l in ipairs(levels) do
        cl[i] = l:permute({ 1, 3, 4, 2 }):contiguous():permute({ 1, 4, 2, 3 })
      end
      assert.are.equal(0, max_diff(infer(decode, cl, true), got))
    end
    assert.has_error(function() yt.nn.detect_decode({ yt.zeros({ 1, 100, 2, 2 }) }, { 8 }, 80) end)
    assert.has_error(function() yt.nn.detect_decode({ yt.zeros({ 1, 144, 2, 2 }) }, { 8, 16 }, 80) end)
  end)

  it("gives the same predictions on a coco128 image as the ops", function()
    -- the checkpoint is barely trained (probabilities ~1e-4): a tiny conf gives boxes to compare
    local function predict(plans)
      local was = modules.fused_inference
      modules.fused_inference = plans
      local p = detect.Detection_Predictor {
        overrides = { model = PT, imgsz = 320, conf = 5e-5, verbose = false, save = false },
      }
      local ok, res = pcall(p, IMAGE)
      modules.fused_inference = was
      assert(ok, res)
      return res[1].boxes
    end
    local a, b = predict(true), predict(false)
    assert.is_true(#a > 10, "boxes: " .. #a)
    local xa, xb = a.xyxy:tolist(), b.xyxy:tolist()
    local ca, cb, ka, kb = a.conf:tolist(), b.conf:tolist(), a.cls:tolist(), b.cls:tolist()
    -- every box clear of the threshold is in both, in the same place with the same class and confidence
    local function matched(xs, cs, ks, i, ys, ds, ls)
      for j = 1, #ds do
        local close = ks[i] == ls[j] and math.abs(cs[i] - ds[j]) <= 1e-6
        for k = 0, 3 do
          close = close and math.abs(xs[4 * (i - 1) + k + 1] - ys[4 * (j - 1) + k + 1]) <= 1e-2
        end
        if close then return true end
      end
      return false
    end
    for i = 1, #ca do
      if ca[i] > 5e-5 + 1e-6 then assert.is_true(matched(xa, ca, ka, i, xb, cb, kb), "plan box " .. i) end
    end
    for i = 1, #cb do
      if cb[i] > 5e-5 + 1e-6 then assert.is_true(matched(xb, cb, kb, i, xa, ca, ka), "ops box " .. i) end
    end
  end)

  describe("plans", function()
    it("are freed by release_plans, load_state_dict and a forward with gradients", function()
      local m = calibrated_model():fuse()
      infer(m, fwd.images, true)
      local plans = plans_of(m)
      m:release_plans()
      for _, p in ipairs(plans) do
        assert.is_true(p:closed())
      end
      assert.has_error(function() plans[1]:forward(fwd.images) end, "attempt to use a closed conv2d plan")
      plans = plans_of(m)
      assert.is_false(plans[1]:closed())
      m:load_state_dict(m:state_dict())
      assert.is_true(plans[1]:closed())
      -- with gradients the ops run (and record), and the plan made before is dropped: training may change weights
      plans = plans_of(m)
      local y = m(fwd.images:narrow(1, 1, 1))
      assert.is_truthy(y.requires_grad)
      assert.is_true(plans[1]:closed())
      yt.tape_clear()
    end)

    it("are made again when a fused layer's weights are replaced, and copies make their own", function()
      local m = calibrated_model():fuse()
      local y1 = infer(m, fwd.images, true):clone()
      local copy = torch_utils.deepcopy(m)
      local conv = copy.model.items[1].conv
      conv.weight = conv.weight * 0 -- a new tensor: the copy's plan is made again
      local y2 = infer(copy, fwd.images, true)
      assert(max_diff(y2, y1) > 1e-3, "the copy runs its new weights")
      assert.are.equal(0, max_diff(infer(m, fwd.images, true), y1))
    end)

    it("keep memory flat over many forwards, and a closed plan stays closed", function()
      local m = calibrated_model():fuse()
      local x = yt.rand({ 1, 3, 320, 256 }):keep()
      local function step()
        yt.scope_begin()
        infer(m, x, true)
        yt.scope_end()
      end
      step()
      local base = yt.memory()
      for _ = 1, 5 do
        step()
      end
      assert.are.equal(base, (yt.memory()))
      local p = yt.nn.conv2d_plan(yt.randn({ 4, 3, 3, 3 }), yt.zeros({ 4 }), 1, 1, "silu")
      do
        local q <close> = p
        assert.is_false(q:closed())
      end
      assert.is_true(p:closed())
      p:close()
      assert.are.equal("Conv2dPlan(closed)", tostring(p))
    end)

    it("are not used with gradients on, nor while counting FLOPs", function()
      local m = calibrated_model():fuse()
      local x = fwd.images:narrow(1, 1, 1)
      local y = m(x)
      assert.is_truthy(y.requires_grad)
      yt.tape_clear()
      local _, _, _, gflops = m:info(false)
      assert(math.abs(gflops - 8.7464) < 0.01, "fused GFLOPs " .. gflops)
      local prev = yt.set_grad_enabled(false)
      assert.has_error(function() yt.nn.conv2d_plan(yt.randn({ 4, 3, 3, 3 }), nil, 1, 1, "relu") end)
      local p = yt.nn.conv2d_plan(yt.randn({ 4, 3, 3, 3 }), nil, 1, 1)
      assert.has_error(function() p:forward(yt.zeros({ 1, 5, 8, 8 })) end)
      p:close()
      yt.set_grad_enabled(prev)
    end)
  end)
end)
