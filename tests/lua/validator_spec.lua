-- Detection_Validator: the validation pipeline (standalone and inside training), Ultralytics' printed table,
-- overridable steps, callbacks, plots.
local helpers = require("helpers")
local yt = require("yolotrain.core")
local detect = require("yolotrain.models.yolo.detect")
local tasks = require("yolotrain.nn.tasks")
local results = require("yolotrain.engine.results")

local INIT = helpers.parity_dir .. "/yolov8n_init.safetensors"

-- Runs fn with io.stdout captured; returns fn's results and the text.
local function capture(fn)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  local old = io.stdout
  io.stdout = f
  local ok, a = pcall(fn)
  io.stdout = old
  f:close()
  local text = helpers.read_file(path)
  os.remove(path)
  if not ok then error(a, 0) end
  return a, text
end

local function init_model()
  local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
  m:load(INIT, false)
  return m
end

local data_dir = helpers.coco_subset(8)

describe("Detection_Validator", function()
  it("validates yolov8n_init end to end: keys, zero metrics, the printed table and the Speed line", function()
    local out = helpers.tmpdir()
    local v = detect.Detection_Validator {
      args = {
        data = data_dir,
        imgsz = 160,
        batch = 4,
        model = "yolov8n.yaml",
        pretrained = INIT,
        project = out,
        name = "val",
        plots = true,
      },
    }
    local m, text = capture(function() return v(nil) end)
    for _, k in ipairs({
      "metrics/precision(B)",
      "metrics/recall(B)",
      "metrics/mAP50(B)",
      "metrics/mAP50-95(B)",
      "fitness",
    }) do
      assert.is_number(m[k], k)
      assert.are.equal(0, m[k], k)
    end
    assert.are.same(
      v.metrics.keys,
      { "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)" }
    )
    assert.truthy(text:find("Class%s+Images%s+Instances%s+Box%(P%s+R%s+mAP50%s+mAP50%-95%)"))
    -- 8 images, 54 labelled boxes in the first 8 coco128 val images
    assert.truthy(text:find("\n%s+all%s+8%s+54%s+0%s+0%s+0%s+0\n"), text)
    assert.truthy(
      text:find("Speed: %d+%.%dms preprocess, %d+%.%dms inference, %d+%.%dms loss, %d+%.%dms postprocess per image")
    )
    assert.are.equal(8, v.seen)
    assert.is_true(v.speed.inference > 0)
    assert.are.equal(0, m.maps[0]) -- per-class maps through the result
    for _, f in ipairs({
      "confusion_matrix.png",
      "confusion_matrix_normalized.png",
      "val_batch0_labels.jpg",
      "val_batch0_pred.jpg",
    }) do
      assert.truthy(yt.sys.stat(out .. "/val/" .. f), f)
    end
  end)

  it("scores perfect predictions as mAP ~1 after scaling labels and predictions to original pixels", function()
    -- postprocess overridden: the labels themselves, in letterboxed pixels, become the predictions
    local Perfect, Base = detect.Detection_Validator:extend("Perfect")
    function Perfect:preprocess(batch)
      self._b = batch
      return Base.preprocess(self, batch)
    end
    function Perfect:postprocess(preds)
      local b = self._b
      local s = b.img:shape()
      local H, W = s[3], s[4]
      local bi, cls, bb = b.batch_idx:tolist(), b.cls:tolist(), b.bboxes:tolist()
      local per = {}
      for i = 1, s[1] do
        per[i] = {}
      end
      for j = 1, #bi do
        local k = (j - 1) * 4
        local xy = results.ops.xywh2xyxy({ bb[k + 1] * W, bb[k + 2] * H, bb[k + 3] * W, bb[k + 4] * H })
        table.insert(per[bi[j] + 1], { xy[1], xy[2], xy[3], xy[4], 0.9 - 0.001 * j, cls[j] })
      end
      local out = {}
      for i = 1, s[1] do
        out[i] = results.ops.rows_tensor(per[i], 6)
      end
      return out
    end
    local v = Perfect { args = { data = data_dir, imgsz = 160, batch = 4, plots = false, project = helpers.tmpdir() } }
    local m, text = capture(function() return v(nil, init_model()) end)
    -- per-class rows (standalone and verbose): name, images with the class, instances, P R mAP50 mAP50-95
    assert.truthy(text:find("\n%s+person%s+%d+%s+%d+%s+1%s+1%s+0%.995%s+0%.995\n"), text)
    assert.is_true(m["metrics/mAP50(B)"] > 0.99, tostring(m["metrics/mAP50(B)"]))
    assert.is_true(m["metrics/mAP50-95(B)"] > 0.99, tostring(m["metrics/mAP50-95(B)"]))
    assert.is_true(m["metrics/precision(B)"] > 0.99)
    assert.is_true(m["metrics/recall(B)"] > 0.99)
  end)

  it("reproduces Ultralytics' metrics.json through update_metrics and get_stats", function()
    local cjson = require("cjson")
    local fx = cjson.decode(helpers.read_file(helpers.parity_dir .. "/metrics.json"))
    local v = detect.Detection_Validator { save_dir = helpers.tmpdir(), args = { plots = false } }
    local names = {}
    for c = 0, 79 do
      names[c] = tostring(c)
    end
    v:init_metrics({ names = names, nc = 80 })
    local tp_rows = {}
    for _, im in ipairs(fx.images) do
      -- a canvas larger than the image and a shift of +100 px (pad -100) for labels and predictions alike: no box is
      -- clipped (the fixture scored unclipped boxes, some of which start at negative x)
      local h, w = 2000, 2000
      local cls, boxes, bidx = {}, {}, {}
      for j, b in ipairs(im.gt_xyxy) do
        cls[j] = { im.gt_cls[j] }
        boxes[j] = { (b[1] + b[3]) / 2 / w, (b[2] + b[4]) / 2 / h, (b[3] - b[1]) / w, (b[4] - b[2]) / h }
        bidx[j] = 0
      end
      local batch = {
        img = yt.zeros({ 1, 3, h, w }),
        cls = results.ops.rows_tensor(cls, 1),
        bboxes = results.ops.rows_tensor(boxes, 4),
        batch_idx = #bidx > 0 and yt.tensor(bidx) or yt.zeros({ 0 }),
        ori_shape = { { h, w } },
        ratio_pad = { { { 1, 1 }, { -100, -100 } } },
        im_file = { im.file },
      }
      local before = v.stats.n
      v:update_metrics({ results.ops.rows_tensor(im.pred_xyxy_conf_cls, 6) }, batch)
      for i = 1, #im.pred_xyxy_conf_cls do
        local row = {}
        for k = 1, 10 do
          row[k] = v.stats.tp[(before + i - 1) * 10 + k]
        end
        tp_rows[#tp_rows + 1] = { row, im.tp_10[i] }
      end
    end
    for _, pair in ipairs(tp_rows) do
      assert.are.same(pair[2], pair[1])
    end
    local r = v:get_stats()
    for k, want in pairs(fx.results.results_dict) do
      assert.is_true(math.abs(r[k] - want) <= 1e-6, string.format("%s: %.9f vs %.9f", k, r[k], want))
    end
    assert.are.equal(#fx.per_class, #v.metrics.ap_class_index)
  end)

  it("fires the validator callbacks in order", function()
    local v = detect.Detection_Validator {
      args = { data = data_dir, imgsz = 160, batch = 4, plots = false, project = helpers.tmpdir() },
    }
    local seen = {}
    for _, e in ipairs({ "on_val_start", "on_val_batch_start", "on_val_batch_end", "on_val_end" }) do
      v:add_callback(e, function(val)
        assert.are.equal(v, val)
        seen[#seen + 1] = e
      end)
    end
    capture(function() return v(nil, init_model()) end)
    assert.are.same({
      "on_val_start",
      "on_val_batch_start",
      "on_val_batch_end",
      "on_val_batch_start",
      "on_val_batch_end",
      "on_val_end",
    }, seen)
  end)

  it("runs inside training: EMA model, val losses averaged over batches, rounded flat results", function()
    local data = require("yolotrain.data")
    local info = data.check_det_dataset(data_dir)
    local model = init_model()
    model.args = require("yolotrain.cfg").get_cfg({})
    local ds = data.build_yolo_dataset({ imgsz = 160 }, info.val, 4, info, "val", true, 32)
    local loader = data.build_dataloader(ds, 4, 0, false, -1, 0)
    local trainer = setmetatable({
      ema = { ema = model },
      data = info,
      epoch = 0,
      epochs = 3,
      stopper = { possible_stop = false },
      loss_names = { "box_loss", "cls_loss", "dfl_loss" },
    }, detect.Detection_Trainer) -- an instance without running the trainer's init
    local v = detect.Detection_Validator {
      dataloader = loader,
      save_dir = helpers.tmpdir(),
      args = { imgsz = 160, batch = 4, plots = true },
    }
    local m = capture(function() return v(trainer) end)
    assert.is_false(v.args.plots) -- plots only in the final epoch
    for _, k in ipairs({ "val/box_loss", "val/cls_loss", "val/dfl_loss" }) do
      assert.is_number(m[k], k)
      assert.is_true(m[k] > 0 and m[k] < 1e3, k .. "=" .. tostring(m[k]))
      assert.are.equal(m[k], math.floor(m[k] * 1e5 + 0.5) / 1e5)
    end
    assert.are.equal(0, m.fitness)
    assert.is_true(yt.is_grad_enabled()) -- restored after validation
  end)

  it("refuses a plain state dict as model= with a message naming the fix", function()
    local v = detect.Detection_Validator { args = { data = data_dir, imgsz = 160, project = helpers.tmpdir() } }
    local ok, err = pcall(function() return v(nil, INIT) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("pretrained=", 1, true))
  end)
end)

describe("Detection_Validator:plot_predictions", function()
  it("labels each predicted box with its name and confidence (2 decimals); labels plots keep names only", function()
    assert.are.equal("person 0.87", yt.data.plot_box_label("person", 0, 0.8712))
    assert.are.equal("person", yt.data.plot_box_label("person", 0))
    assert.are.equal("3 0.50", yt.data.plot_box_label(nil, 3, 0.5))
    local data = require("yolotrain.data")
    local info = data.check_det_dataset(data_dir)
    local ds = data.build_yolo_dataset({ imgsz = 160 }, info.val, 4, info, "val", true, 32)
    local batch = data.build_dataloader(ds, 4, 0, false, -1, 0):next()
    local dir = helpers.tmpdir()
    local v = detect.Detection_Validator { save_dir = dir, args = { plots = true } }
    v.names = info.names
    -- one prediction per image, in letterboxed pixels: x1 y1 x2 y2 conf cls
    local preds, cls, boxes, bidx, conf = {}, {}, {}, {}, {}
    local H, W = batch.img:shape(3), batch.img:shape(4)
    for i = 1, batch.img:shape(1) do
      preds[i] = results.ops.rows_tensor({ { 20, 40, 100, 110, 0.87, 0 } }, 6)
      cls[i], boxes[i], bidx[i], conf[i] = { 0 }, { 60 / W, 75 / H, 80 / W, 70 / H }, i - 1, 0.87
    end
    v:plot_predictions(batch, preds, 0)
    local function plot(c)
      local path = dir .. (c and "/with_conf.jpg" or "/names_only.jpg")
      yt.data.plot_batch({
        img = batch.img,
        cls = results.ops.rows_tensor(cls, 1),
        bboxes = results.ops.rows_tensor(boxes, 4),
        batch_idx = yt.tensor(bidx),
        im_file = batch.im_file,
      }, info.names, path, c and yt.tensor(conf) or nil)
      return yt.data.load_image(path)
    end
    local pred = yt.data.load_image(dir .. "/val_batch0_pred.jpg")
    assert.are.equal(
      0,
      (pred:to("float32") - plot(true):to("float32")):abs():max():item(),
      "val_batch0_pred.jpg is the plot with confidences"
    )
    assert.is_true(
      (pred:to("float32") - plot(false):to("float32")):abs():max():item() > 50,
      "and differs from the names-only plot"
    )
  end)
end)

describe("plotting.plot_results", function()
  it("draws results.csv columns into results.png", function()
    local plotting = require("yolotrain.utils.plotting")
    local dir = helpers.tmpdir()
    local csv = dir .. "/results.csv"
    local rows = {
      "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
        .. "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2",
    }
    for e = 1, 6 do
      rows[#rows + 1] = string.format(
        "%d,%g,%g,%g,%g,%g,%g,%g,%g,%g,%g,0.01,0.01,0.01",
        e,
        3 - e * 0.1,
        5 - e * 0.3,
        4 - e * 0.2,
        0.1 * e,
        0.05 * e,
        0.02 * e,
        0.01 * e,
        2.9 - e * 0.1,
        4.8 - e * 0.2,
        3.9 - e * 0.1
      )
    end
    helpers.write_file(csv, table.concat(rows, "\n") .. "\n")
    local png = plotting.plot_results(csv)
    assert.are.equal(dir .. "/results.png", png)
    local bytes = helpers.read_file(png)
    assert.are.equal("\137PNG", bytes:sub(1, 4))
    assert.is_true(#bytes > 10000)
    -- gaussian smoothing keeps a constant series constant and the mean of a ramp
    local s = plotting.gaussian_filter1d({ 2, 2, 2, 2 }, 3)
    for _, v in ipairs(s) do
      assert.is_true(math.abs(v - 2) < 1e-12)
    end
  end)
end)
