-- `detect export format=onnx`: the file is Ultralytics' interface (images -> output0, metadata keys) and real
-- consumers run it: onnxruntime (tests/onnx/run_ort.js, the npm package scripts/setup.sh installs), the onnx
-- checker with shape inference and OpenCV DNN (tests/onnx/check.py, Debian's python3-onnx and python3-opencv).
local yt = require("yolotrain.core")
local helpers = require("helpers")
local cjson = require("cjson")
local pt = require("yolotrain.utils.pt")

local PT_DIR = yt.sys.realpath(helpers.parity_dir .. "/pt")
local BEST = PT_DIR .. "/yolov8n_coco128.pt"
local ULTRALYTICS_ONNX = PT_DIR .. "/yolov8n_coco128.onnx"
local ONNX_DIR = helpers.repo_dir .. "tests/onnx"
local PYTHON = "/usr/bin/python3" -- Debian's, which has python3-onnx and python3-opencv

local function sh(dir, args) return helpers.run(string.format("cd '%s' && '%s' %s", dir, helpers.yolotrain, args)) end

-- Exports the .pt (copied into a fresh folder) with the given arguments; returns the .onnx path.
local function export(args)
  local dir = helpers.tmpdir()
  assert(os.execute(string.format("cp '%s' '%s/best.pt'", BEST, dir)))
  local ok, _, out = sh(dir, "detect export model=best.pt format=onnx " .. args)
  assert(ok, out)
  assert.truthy(out:find("saved as 'best.onnx'", 1, true), out)
  return dir .. "/best.onnx", dir
end

-- The checker's report of a file (tests/onnx/check.py); with opencv_in, OpenCV's output for that input too.
local function check(path, opencv_in, opencv_out)
  local extra = opencv_in and string.format(" --opencv '%s' '%s'", opencv_in, opencv_out) or ""
  local ok, _, out = helpers.run(string.format("%s '%s/check.py' '%s'%s", PYTHON, ONNX_DIR, path, extra))
  assert(ok, out)
  return cjson.decode(out:match("([^\n]+)%s*$"))
end

-- onnxruntime's output0 for images
local function run_ort(path, images)
  local dir = helpers.tmpdir()
  yt.io.save_safetensors(dir .. "/in.safetensors", { images = images })
  local ok, _, out = helpers.run(
    string.format("node '%s/run_ort.js' '%s' '%s/in.safetensors' '%s/out.safetensors'", ONNX_DIR, path, dir, dir)
  )
  assert(ok, out)
  return yt.io.load_safetensors(dir .. "/out.safetensors").output0
end

local model_cache
-- yolotrain's own eval forward of the same weights, fused as export fuses them
local function own_forward(images)
  if not model_cache then
    model_cache = pt.load_model(BEST)
    model_cache:eval()
    model_cache:fuse()
  end
  local prev = yt.set_grad_enabled(false)
  local y = model_cache(images):keep()
  yt.set_grad_enabled(prev)
  return y
end

local function images(b, h, w, seed)
  yt.manual_seed(seed)
  return yt.rand({ b, 3, h, w })
end

-- boxes and class probabilities of a against b, within the given tolerances
local function assert_close(a, b, box_tol, prob_tol, what)
  assert.are.same(b:shape(), a:shape(), what)
  local db = (a:narrow(2, 1, 4) - b:narrow(2, 1, 4)):abs():max():item()
  local dp = (a:narrow(2, 5, a:shape(2) - 4) - b:narrow(2, 5, b:shape(2) - 4)):abs():max():item()
  assert(db <= box_tol, string.format("%s: boxes differ by %.3g px (tolerance %g)", what, db, box_tol))
  assert(dp <= prob_tol, string.format("%s: class probabilities differ by %.3g (tolerance %g)", what, dp, prob_tol))
  print(string.format("\n  %s: boxes %.2g px, probabilities %.2g", what, db, dp))
end

describe("ONNX export", function()
  it("has Ultralytics' inputs, outputs, shapes and metadata keys, and passes the full onnx checker", function()
    local path = export("imgsz=320")
    local ours, theirs = check(path), check(ULTRALYTICS_ONNX)
    assert.are.same(theirs.inputs, ours.inputs)
    assert.are.same(theirs.outputs, ours.outputs)
    local keys, their_keys = {}, {}
    for k in pairs(ours.metadata) do
      keys[#keys + 1] = k
    end
    for k in pairs(theirs.metadata) do
      their_keys[#their_keys + 1] = k
    end
    table.sort(keys)
    table.sort(their_keys)
    assert.are.same(their_keys, keys)
    for _, k in ipairs({ "stride", "task", "batch", "imgsz", "names" }) do
      assert.are.equal(theirs.metadata[k], ours.metadata[k], k)
    end
    assert.are.same({ 17 }, ours.opset)
  end)

  it("runs in onnxruntime as yolotrain's eval forward at 320 and 640", function()
    for _, size in ipairs({ 320, 640 }) do
      local path = export("imgsz=" .. size)
      local x = images(1, size, size, size)
      assert_close(run_ort(path, x), own_forward(x), 1e-3, 1e-5, "onnxruntime at " .. size)
    end
  end)

  it("matches Ultralytics' own export of the same weights in onnxruntime", function()
    local path = export("imgsz=320")
    local x = images(1, 320, 320, 7)
    assert_close(run_ort(path, x), run_ort(ULTRALYTICS_ONNX, x), 5e-2, 1e-4, "ours vs Ultralytics' .onnx")
  end)

  it("with dynamic=true runs any batch and a rectangular size", function()
    local path = export("imgsz=320 dynamic=true")
    local report = check(path)
    assert.are.same({ "batch", 3, "height", "width" }, report.inputs.images)
    assert.are.same({ "batch", 84, "anchors" }, report.outputs.output0)
    local x = images(2, 256, 384, 3)
    local y = run_ort(path, x)
    assert.are.same({ 2, 84, 8 * 12 + 16 * 24 + 32 * 48 }, y:shape())
    assert_close(y, own_forward(x), 1e-3, 1e-5, "onnxruntime, dynamic 2x3x256x384")
  end)

  it("loads and runs in OpenCV DNN at opset 12", function()
    local path, dir = export("imgsz=320 opset=12")
    local x = images(1, 320, 320, 12)
    yt.io.save_safetensors(dir .. "/in.safetensors", { images = x })
    local report = check(path, dir .. "/in.safetensors", dir .. "/cv.safetensors")
    assert.are.same({ 12 }, report.opset)
    assert.truthy(report.opencv)
    local y = yt.io.load_safetensors(dir .. "/cv.safetensors").output0
    assert_close(y, own_forward(x), 1e-3, 1e-5, "OpenCV " .. report.opencv .. " DNN, opset 12")
  end)

  it("passes the checker at every opset it accepts", function()
    for _, opset in ipairs({ 11, 13, 16 }) do
      local report = check((export("imgsz=64 opset=" .. opset)))
      assert.are.same({ opset }, report.opset)
    end
  end)

  it("exports a yolotrain checkpoint beside it, named after the weights", function()
    local dir = helpers.tmpdir()
    assert(os.execute(string.format("cp '%s' '%s/w.pt'", BEST, dir)))
    assert(sh(dir, "detect export model=w.pt format=safetensors"))
    local ok, _, out = sh(dir, "detect export model=w.safetensors format=onnx imgsz=160")
    assert(ok, out)
    local x = images(1, 160, 160, 1)
    assert_close(run_ort(dir .. "/w.onnx", x), own_forward(x), 1e-3, 1e-5, "from the converted checkpoint")
  end)

  it("refuses what it cannot export with one message each", function()
    local dir = helpers.tmpdir()
    assert(os.execute(string.format("cp '%s' '%s/best.pt'", BEST, dir)))
    local cases = {
      { "format=torchscript", "format=torchscript is not supported" },
      { "format=onnx opset=9", "opset=9 is not supported: give 11..17" },
      { "format=onnx int8=true", "int8=True" },
      { "format=onnx batch=0", "batch=0" },
    }
    for _, c in ipairs(cases) do
      local ok, rc, out = sh(dir, "detect export model=best.pt " .. c[1])
      assert.is_false(ok, c[1])
      assert.are.equal(1, rc)
      assert.truthy(out:find(c[2], 1, true), out)
    end
    local ok, rc, out = sh(dir, "detect export format=onnx")
    assert.are.equal(1, rc)
    assert.truthy(out:find("'model' argument is missing", 1, true), out)
    assert.is_nil(yt.sys.stat(dir .. "/best.onnx"), "nothing written")
  end)

  it("names a custom layer that cannot be exported", function()
    local modules = require("yolotrain.nn.modules")
    local Exporter = require("yolotrain.engine.exporter")
    local tasks = require("yolotrain.nn.tasks")
    local Odd = modules.Module:extend("OddLayer")
    function Odd:forward(x) return yt.nn.upsample_nearest(x, 2) end
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 2 })
    m.model.items[11] = Odd()
    m.model.items[11].i, m.model.items[11].f = 10, -1
    local dir = helpers.tmpdir()
    local ok, err = pcall(
      function() Exporter { overrides = { format = "onnx", imgsz = 64 }, file = dir .. "/x.onnx" }(m) end
    )
    assert.is_false(ok)
    assert.truthy(tostring(err):find("OddLayer", 1, true), err)
  end)
end)
