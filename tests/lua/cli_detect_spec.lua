-- `yolotrain detect val|predict ...`: the command line front end end to end (the executable in YT_BUILD_DIR).
local helpers = require("helpers")
local yt = require("yolotrain.core")

local EXE = helpers.yolotrain
local INIT = yt.sys.realpath(helpers.parity_dir .. "/yolov8n_init.safetensors")
local COCO = yt.sys.realpath(helpers.datasets_dir .. "/coco128")

local function sh(dir, args) return helpers.run(string.format("cd '%s' && '%s' %s", dir, EXE, args)) end

describe("yolotrain detect val", function()
  it("validates yolov8n_init on all of coco128 val from the command line", function()
    local dir = helpers.tmpdir()
    local ok, rc, out =
      sh(dir, string.format("detect val model=yolov8n.yaml pretrained=%s data=%s imgsz=160 batch=32", INIT, COCO))
    assert.is_true(ok, out)
    assert.are.equal(0, rc)
    assert.truthy(out:find("\n%s+all%s+128%s+898%s+0%s+0%s+0%s+0\n"), out)
    assert.truthy(
      out:find("Speed: [%d.]+ms preprocess, [%d.]+ms inference, [%d.]+ms loss, [%d.]+ms postprocess per image")
    )
    assert.truthy(yt.sys.stat(dir .. "/runs/detect/val/confusion_matrix.png"))
  end)

  it("exits 1 with one clear message for a bad argument or a missing model", function()
    local dir = helpers.tmpdir()
    local ok, rc, out = sh(dir, "detect val modl=x")
    assert.is_false(ok)
    assert.are.equal(1, rc)
    assert.truthy(out:find("'modl' is not a valid yolotrain argument", 1, true), out)
    ok, rc, out = sh(dir, "detect val data=" .. COCO)
    assert.are.equal(1, rc)
    assert.truthy(out:find("'model' argument is missing", 1, true), out)
    ok, rc, out = sh(dir, "detect val model=" .. INIT .. " data=" .. COCO)
    assert.are.equal(1, rc)
    assert.truthy(out:find("pretrained=", 1, true), out)
    ok, rc, out = sh(dir, "segment train")
    assert.are.equal(1, rc)
    assert.truthy(out:find("detect task only", 1, true), out)
  end)
end)

describe("yolotrain detect predict", function()
  it("prints one line per image and saves annotated images and labels", function()
    local dir = helpers.tmpdir()
    local ok, rc, out = sh(
      dir,
      string.format(
        "detect predict model=yolov8n.yaml pretrained=%s "
          .. "source=%s/images/val2017/00000000013*.jpg imgsz=160 conf=0.0001 save_txt=true",
        INIT,
        COCO
      )
    )
    assert.is_true(ok, out)
    assert.truthy(out:find("image 1/1 [^\n]*000000000139%.jpg: 128x160 [^\n]*[%d.]+ms\n"), out)
    assert.truthy(
      out:find(
        "Speed: [%d.]+ms preprocess, [%d.]+ms inference, [%d.]+ms postprocess per image at "
          .. "shape %(1, 3, 128, 160%)"
      ),
      out
    )
    assert.truthy(yt.sys.stat(dir .. "/runs/detect/predict/000000000139.jpg"))
    assert.truthy(yt.sys.stat(dir .. "/runs/detect/predict/labels/000000000139.txt"))
    -- a second run goes to predict2
    sh(
      dir,
      string.format(
        "detect predict model=yolov8n.yaml pretrained=%s source=%s/images/val2017/000000000139.jpg " .. "imgsz=160",
        INIT,
        COCO
      )
    )
    assert.truthy(yt.sys.stat(dir .. "/runs/detect/predict2/000000000139.jpg"))
  end)
end)
