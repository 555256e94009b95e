-- Detection_Predictor and Results: sources, saved images and labels, Results views, callbacks, overriding steps.
local helpers = require("helpers")
local yt = require("yolotrain.core")
local cjson = require("cjson")
local detect = require("yolotrain.models.yolo.detect")
local results = require("yolotrain.engine.results")

local VAL = helpers.datasets_dir .. "/coco128/images/val2017"
local INIT = helpers.parity_dir .. "/yolov8n_init.safetensors"

-- the untrained model scores ~1e-4 at stride 32: a tiny conf yields boxes to check formats with
local function predictor(extra)
  local o = {
    model = "yolov8n.yaml",
    pretrained = INIT,
    imgsz = 160,
    conf = 1e-4,
    verbose = false,
    save = false,
    project = helpers.tmpdir(),
  }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return detect.Detection_Predictor { overrides = o }
end

local function two_images()
  local dir = helpers.tmpdir()
  local abs = yt.sys.realpath(VAL)
  for _, f in ipairs({ "000000000139.jpg", "000000000724.jpg" }) do
    os.execute(string.format("ln -s '%s/%s' '%s/%s'", abs, f, dir, f))
  end
  return dir
end

describe("results.ops.scale_box", function()
  it("maps a letterboxed box back to the original image (Ultralytics' gain and round(pad - 0.1))", function()
    -- 426x640 image letterboxed to 224x320: gain 0.5, pads (0, round(5.5 - 0.1) = 5)
    local g, pw, ph = results.ops.letterbox_params({ 224, 320 }, { 426, 640 })
    assert.are.equal(0.5, g)
    assert.are.equal(0, pw)
    assert.are.equal(5, ph)
    local b = results.ops.scale_box({ 10, 15, 330, 300 }, { 224, 320 }, { 426, 640 })
    assert.are.same({ 20, 20, 640, 426 }, b) -- clipped to the image
  end)
end)

describe("Detection_Predictor", function()
  it("writes annotated images and Ultralytics label files for a folder", function()
    local src = two_images()
    local p = predictor { save = true, save_txt = true, save_conf = true, name = "predict" }
    local res = p(src)
    assert.are.equal(2, #res)
    local dir = p.save_dir
    for _, f in ipairs({ "000000000139", "000000000724" }) do
      local img = helpers.read_file(dir .. "/" .. f .. ".jpg")
      assert.are.equal("\255\216", img:sub(1, 2)) -- a JPEG
      local txt = helpers.read_file(dir .. "/labels/" .. f .. ".txt")
      local n = 0
      for line in txt:gmatch("[^\n]+") do
        n = n + 1
        local c, x, y, w, h, conf = line:match("^(%d+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
        assert.truthy(c, line)
        for _, v in ipairs({ x, y, w, h, conf }) do
          local num = tonumber(v)
          assert.is_true(num >= 0 and num <= 1, line)
        end
      end
      assert.is_true(n > 0)
    end
    assert.are.equal(2, p.seen)
  end)

  it("warns about a corrupt image of a folder, skips it and predicts the rest", function()
    local src = two_images()
    helpers.write_file(src .. "/000000000500.jpg", "\255\216\255\224 not really a jpeg")
    local p = predictor { save = false, verbose = true }
    local res = p(src)
    assert.are.equal(2, #res)
    assert.are.equal(2, p.seen)
    for _, r in ipairs(res) do
      assert.is_nil(r.path:find("000000000500", 1, true))
    end
  end)

  it("gives Results with boxes in original pixels and every view", function()
    local res = predictor()(VAL .. "/000000000139.jpg")
    local r = res[1]
    assert.are.same({ 426, 640 }, r.orig_shape)
    local n = #r.boxes
    assert.is_true(n > 0 and n <= 300)
    assert.are.same({ n, 4 }, r.boxes.xyxy:shape())
    assert.are.same({ n, 4 }, r.boxes.xywhn:shape())
    assert.are.same({ n }, r.boxes.conf:shape())
    local xyxy, xyxyn = r.boxes.xyxy:tolist(), r.boxes.xyxyn:tolist()
    for i = 1, #xyxy, 4 do
      assert.is_true(xyxy[i] >= 0 and xyxy[i + 2] <= 640 and xyxy[i + 1] >= 0 and xyxy[i + 3] <= 426)
      assert.is_true(math.abs(xyxyn[i + 2] - xyxy[i + 2] / 640) < 1e-6)
    end
    for _, c in ipairs(r.boxes.conf:tolist()) do
      assert.is_true(c > 1e-4)
    end
    local js = cjson.decode(r:tojson())
    assert.are.equal(n, #js)
    assert.are.equal(r:summary()[1].name, js[1].name)
    assert.is_number(r.speed.inference)
    local img = r:plot()
    assert.are.same({ 426, 640, 3 }, img:shape())
    local out = helpers.tmpdir() .. "/x.png"
    r:save(out)
    assert.are.equal("\137PNG", helpers.read_file(out):sub(1, 4))
  end)

  it("fires every predictor callback in order, per batch", function()
    local p = predictor()
    local seen = {}
    for _, e in ipairs({
      "on_predict_start",
      "on_predict_batch_start",
      "on_predict_postprocess_end",
      "on_predict_batch_end",
      "on_predict_end",
    }) do
      p:add_callback(e, function(pred)
        assert.are.equal(p, pred)
        seen[#seen + 1] = e
      end)
    end
    p(two_images())
    assert.are.same({
      "on_predict_start",
      "on_predict_batch_start",
      "on_predict_postprocess_end",
      "on_predict_batch_end",
      "on_predict_batch_start",
      "on_predict_postprocess_end",
      "on_predict_batch_end",
      "on_predict_end",
    }, seen)
  end)

  it("uses an overridden postprocess", function()
    local Mine, Base = detect.Detection_Predictor:extend("Mine")
    function Mine:postprocess(preds, img, orig_imgs)
      local out = Base.postprocess(self, preds, img, orig_imgs)
      for _, r in ipairs(out) do
        r.boxes = results.Boxes({ { 1, 2, 3, 4, 0.5, 7 } }, r.orig_shape)
      end
      return out
    end
    local p =
      Mine { overrides = { model = "yolov8n.yaml", pretrained = INIT, imgsz = 160, verbose = false, save = false } }
    local r = p(VAL .. "/000000000139.jpg")[1]
    assert.are.equal(1, #r.boxes)
    assert.are.same({ 7 }, r.boxes.cls:tolist())
  end)

  it("streams a glob one result at a time and accepts in-memory tensors", function()
    local p = predictor()
    local it = p(VAL .. "/00000000013*.jpg", nil, true)
    assert.are.equal("function", type(it))
    local n = 0
    for r in it do
      n = n + 1
      assert.truthy(r.path:match("/00000000013%d%.jpg$"), r.path)
    end
    assert.are.equal(1, n)
    local img = require("yolotrain.data").load_image(VAL .. "/000000000724.jpg")
    local r = p(img)[1]
    assert.are.same({ 500, 375 }, r.orig_shape)
  end)

  it("reports a missing source clearly", function()
    local ok, err = pcall(function() return predictor()("/nonexistent/dir/x.jpg") end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("does not exist", 1, true))
  end)
end)
