-- End to end on real data: `yolotrain detect train` for 2 epochs on a coco128 subset at imgsz 160, then the run
-- directory as Ultralytics users know it.
local yt = require("yolotrain.core")
local helpers = require("helpers")

describe("yolotrain detect train on coco128", function()
  it("trains 2 epochs and writes the run directory and results.csv", function()
    local coco = helpers.datasets_dir .. "/coco128"
    local dir = helpers.tmpdir()
    local ok, rc, out = helpers.run(
      string.format(
        "cd '%s' && '%s' detect train data='%s' model=yolov8n.yaml "
          .. "epochs=2 imgsz=160 batch=8 fraction=0.125 workers=2 project='%s/runs' name=e2e",
        dir,
        helpers.yolotrain,
        coco,
        dir
      )
    )
    assert(ok, out)
    local run = dir .. "/runs/e2e"
    for _, f in ipairs({
      "args.yaml",
      "results.csv",
      "results.png",
      "weights/last.safetensors",
      "weights/best.safetensors",
      "train_batch0.jpg",
      "confusion_matrix.png",
      "labels.jpg",
      "labels_correlogram.jpg",
      "val_batch0_labels.jpg",
      "val_batch0_pred.jpg",
    }) do
      assert.is_not_nil(yt.sys.stat(run .. "/" .. f), f .. " missing\n" .. out)
    end
    local csv = helpers.read_file(run .. "/results.csv")
    local lines = {}
    for l in csv:gmatch("[^\n]+") do
      lines[#lines + 1] = l
    end
    assert.are.equal(3, #lines)
    assert.are.equal(
      "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),"
        .. "metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,"
        .. "lr/pg1,lr/pg2",
      lines[1]
    )
    local cols = {}
    for v in (lines[3] .. ","):gmatch("([^,]*),") do
      cols[#cols + 1] = v
    end
    assert.are.equal("2", cols[1])
    for i = 2, #cols do
      assert.is_not_nil(tonumber(cols[i]), "column " .. i .. ": " .. lines[3])
    end
    assert.is_true(tonumber(cols[2]) > 0)
    assert.matches("2 epochs completed in", out, 1, true)
    assert.matches("Results saved to", out, 1, true)
    assert.matches("Plotting labels to " .. run .. "/labels.jpg... ", out, 1, true)
    assert.matches("all%s+128%s+%d+", out)
    local args = yt.io.load_yaml(run .. "/args.yaml")
    assert.are.equal(160, args.imgsz)
    assert.are.equal("e2e", args.name)
  end)

  it("trains with a validation set smaller than the validation batch", function()
    local dir = helpers.tmpdir()
    local yaml = yt.synth.generate(dir .. "/tiny", { n_train = 8, n_val = 3, imgsz = 64 })
    local ok, _, out = helpers.run(
      string.format(
        "cd '%s' && '%s' detect train data='%s' model=yolov8n.yaml epochs=1 "
          .. "imgsz=64 batch=2 workers=1 plots=false project='%s/runs' name=small",
        dir,
        helpers.yolotrain,
        yaml,
        dir
      )
    )
    assert(ok, out)
    assert.matches("all%s+3%s+%d+", out)
  end)

  it("trains with single_cls=true: every object is one class", function()
    local dir = helpers.tmpdir()
    local yaml = yt.synth.generate(dir .. "/tiny", { n_train = 8, n_val = 4, imgsz = 64 })
    local ok, _, out = helpers.run(
      string.format(
        "cd '%s' && '%s' detect train data='%s' model=yolov8n.yaml epochs=1 "
          .. "imgsz=64 batch=4 workers=1 plots=false single_cls=true project='%s/runs' name=one",
        dir,
        helpers.yolotrain,
        yaml,
        dir
      )
    )
    assert(ok, out)
    assert.matches("8 images, 0 backgrounds, 0 corrupt", out, 1, true)
    assert.matches("all%s+4%s+%d+", out)
    local _, meta = yt.io.load_safetensors(dir .. "/runs/one/weights/last.safetensors")
    assert.are.equal("1", meta.nc)
  end)
end)
