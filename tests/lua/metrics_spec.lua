-- Metrics through the Lua API: parity with metrics.json / metrics_curves.safetensors / nms.safetensors
-- (Ultralytics 8.2.100), and edge cases.
local yt = require("yolotrain.core")
local cjson = require("cjson")
local helpers = require("helpers")
local metrics = require("yolotrain.utils.metrics")

local function load_fixture()
  local f = assert(io.open(helpers.parity_dir .. "/metrics.json", "rb"))
  local m = cjson.decode(f:read("a"))
  f:close()
  return m
end

-- Runs the validator's per-image steps through the Lua API: IoU (GT x predictions) + matching.
local function score_images(m)
  local all = { tp = {}, conf = {}, pred_cls = {}, target_cls = {} }
  local per_image_tp = {}
  for i, im in ipairs(m.images) do
    local np, ng = #im.pred_xyxy_conf_cls, #im.gt_xyxy
    local tp
    if np > 0 then
      local boxes, pcls = {}, {}
      for k, p in ipairs(im.pred_xyxy_conf_cls) do
        boxes[k] = { p[1], p[2], p[3], p[4] }
        pcls[k] = p[6]
      end
      local gt = ng > 0 and yt.tensor(im.gt_xyxy) or yt.zeros({ 0, 4 })
      local iou = yt.metrics.box_iou(gt, yt.tensor(boxes))
      tp = yt.metrics.match_predictions(yt.tensor(pcls), yt.tensor(im.gt_cls), iou):totable()
      for k, p in ipairs(im.pred_xyxy_conf_cls) do
        all.tp[#all.tp + 1] = tp[k]
        all.conf[#all.conf + 1] = p[5]
        all.pred_cls[#all.pred_cls + 1] = p[6]
      end
    else
      tp = {}
    end
    for _, c in ipairs(im.gt_cls) do
      all.target_cls[#all.target_cls + 1] = c
    end
    per_image_tp[i] = tp
  end
  return all, per_image_tp
end

describe("metrics parity (metrics.json)", function()
  local m = load_fixture()
  local all, per_image_tp = score_images(m)

  it("gives the IoU thresholds as float32", function()
    local v = yt.metrics.iou_thresholds():tolist()
    for k = 1, 10 do
      assert.are.equal(m.iou_thresholds_float32[k], v[k])
    end
  end)

  it("matches predictions to GT exactly (tp_10 of every image)", function()
    for i, im in ipairs(m.images) do
      assert.are.same(im.tp_10, per_image_tp[i], "image " .. im.file)
    end
    assert.are.equal(m.num_predictions, #all.tp)
  end)

  it("reproduces results, results_dict and per-class values within 1e-6", function()
    local names = {}
    for c = 0, 79 do
      names[c] = "c" .. c
    end
    local dm = metrics.DetMetrics({ names = names })
    dm:process(yt.tensor(all.tp, "uint8"), yt.tensor(all.conf), yt.tensor(all.pred_cls), yt.tensor(all.target_cls))
    local r = m.results
    local mr = dm:mean_results()
    local box = dm.box
    local maxd = 0
    local function close(a, b, what)
      local d = math.abs(a - b)
      if d > maxd then maxd = d end
      assert(d <= 1e-6, string.format("%s: %.12g vs %.12g", what, a, b))
    end
    close(mr[1], r.precision, "precision")
    close(mr[2], r.recall, "recall")
    close(mr[3], r.mAP50, "mAP50")
    close(box:map75(), r.mAP75, "mAP75")
    close(mr[4], r["mAP50-95"], "mAP50-95")
    close(dm.fitness, r.fitness, "fitness")
    local rd = dm.results_dict
    for k, v in pairs(r.results_dict) do
      close(rd[k], v, k)
    end
    assert.are.same({ "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)" }, dm.keys)
    assert.are.equal(#m.per_class, #dm.ap_class_index)
    for i, pc in ipairs(m.per_class) do
      assert.are.equal(pc.class, dm.ap_class_index[i])
      local cr = dm:class_result(i)
      close(cr[1], pc.precision, "p " .. i)
      close(cr[2], pc.recall, "r " .. i)
      close(cr[3], pc.ap50, "ap50 " .. i)
      close(cr[4], pc.ap50_95, "ap " .. i)
      close(box.f1[i], pc.f1, "f1 " .. i)
      for k = 1, 10 do
        close(box.all_ap[i][k], pc.ap_10[k], "ap_10 " .. i)
      end
      close(dm.maps[pc.class], pc.ap50_95, "maps " .. pc.class)
    end
    -- classes without GT get the mean mAP in maps
    close(dm.maps[1], r["mAP50-95"], "maps of a class without GT")
    assert.are.equal(m.max_f1_index, dm.raw.max_f1_index)
    print(string.format("\nmetrics parity through Lua: max diff %.3g", maxd))
  end)

  it("reproduces the curves of metrics_curves.safetensors within 1e-6", function()
    local res = yt.metrics.ap_per_class(
      yt.tensor(all.tp, "uint8"),
      yt.tensor(all.conf),
      yt.tensor(all.pred_cls),
      yt.tensor(all.target_cls)
    )
    local ref = yt.io.load_safetensors(helpers.parity_dir .. "/metrics_curves.safetensors")
    local maxd = 0
    for _, name in ipairs({ "x", "p_curve", "r_curve", "f1_curve", "ap" }) do
      local a, b = res[name]:tolist(), ref[name]:tolist()
      assert.are.equal(#b, #a, name)
      for k = 1, #a do
        local d = math.abs(a[k] - b[k])
        if d > maxd then maxd = d end
        assert(d <= 1e-6, string.format("%s[%d]: %.9g vs %.9g", name, k, a[k], b[k]))
      end
    end
    assert.are.same(ref.ap_class_index:tolist(), res.ap_class_index:tolist())
    print(string.format("\ncurves parity through Lua: max diff %.3g", maxd))
  end)

  it("writes PR/F1/P/R curve plots and a confusion matrix", function()
    local dir = helpers.tmpdir()
    local names = {}
    for c = 0, 79 do
      names[c] = "class" .. c
    end
    local dm = metrics.DetMetrics({ names = names, save_dir = dir, plot = true })
    dm:process(yt.tensor(all.tp, "uint8"), yt.tensor(all.conf), yt.tensor(all.pred_cls), yt.tensor(all.target_cls))
    for _, f in ipairs({ "PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png" }) do
      local s = helpers.read_file(dir .. "/" .. f)
      assert.are.equal("\137PNG", s:sub(1, 4), f)
    end
    local cm = metrics.ConfusionMatrix({ nc = 80, conf = 0.001 })
    assert.are.equal(0.25, cm.conf)
    for _, im in ipairs(m.images) do
      local dets = #im.pred_xyxy_conf_cls > 0 and yt.tensor(im.pred_xyxy_conf_cls) or nil
      cm:process_batch(dets, yt.tensor(im.gt_xyxy), yt.tensor(im.gt_cls))
    end
    -- every GT lands in exactly one column entry
    local mt, total = cm.matrix:totable(), 0
    for i = 1, 81 do
      for j = 1, 80 do
        total = total + mt[i][j]
      end
    end
    assert.are.equal(m.num_targets, total)
    local path = cm:plot(dir, names)
    assert.are.equal(dir .. "/confusion_matrix_normalized.png", path)
    assert.are.equal("\137PNG", helpers.read_file(path):sub(1, 4))
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("metrics edge cases", function()
  it("handles no predictions (every GT class has AP 0)", function()
    local dm = metrics.DetMetrics({ names = { [0] = "a", "b", "c" } })
    dm:process(yt.zeros({ 0, 10 }, "uint8"), yt.zeros({ 0 }), yt.zeros({ 0 }), yt.tensor({ 0, 2, 2 }))
    assert.are.same({ 0, 2 }, dm.ap_class_index)
    assert.are.same({ 0, 0, 0, 0 }, dm:mean_results())
    assert.are.equal(0, dm.fitness)
    assert.are.same({ [0] = 0, 0, 0 }, dm.maps)
  end)

  it("handles no GT (no classes, results 0)", function()
    local dm = metrics.DetMetrics()
    local tp = yt.zeros({ 2, 10 }, "uint8")
    dm:process(tp, yt.tensor({ 0.9, 0.5 }), yt.tensor({ 1, 3 }), yt.zeros({ 0 }))
    assert.are.same({}, dm.ap_class_index)
    assert.are.same({ 0, 0, 0, 0 }, dm:mean_results())
    assert.are.equal(0, dm.results_dict["metrics/mAP50(B)"])
  end)

  it("gives AP 0 to a class with GT and no predictions, 0.995 to a perfectly found one", function()
    local tp = yt.ones({ 1, 10 }, "uint8")
    local dm = metrics.DetMetrics()
    dm:process(tp, yt.tensor({ 0.9 }), yt.tensor({ 1 }), yt.tensor({ 1, 4 }))
    assert.are.same({ 1, 4 }, dm.ap_class_index)
    assert.is_true(math.abs(dm:class_result(1)[3] - 0.995) < 1e-12)
    assert.are.same({ 0, 0, 0, 0 }, dm:class_result(2))
    assert.is_true(math.abs(dm.box:map50() - 0.4975) < 1e-12)
  end)

  it("matches with the lowest prediction index and without fallback", function()
    local gt = yt.tensor({ { 0, 0, 10, 10 }, { 0, 0, 10, 9.6 } })
    local pr = yt.tensor({ { 0, 0, 10, 10 }, { 0, 0, 10, 9.9 } })
    local tp =
      yt.metrics.match_predictions(yt.tensor({ 0, 0 }), yt.tensor({ 0, 0 }), yt.metrics.box_iou(gt, pr)):totable()
    assert.are.same({ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, tp[1])
    assert.are.same({ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, tp[2])
    assert.has_error(
      function() yt.metrics.match_predictions(yt.tensor({ 0 }), yt.tensor({ 0, 0 }), yt.zeros({ 1, 1 })) end
    )
  end)

  it("fills the confusion matrix like Ultralytics", function()
    local cm = metrics.ConfusionMatrix(2)
    local gt = yt.tensor({ { 0, 0, 10, 10 }, { 20, 20, 30, 30 } })
    local dets = yt.tensor({
      { 0, 0, 10, 10, 0.9, 0 },
      { 20, 20, 30, 30, 0.8, 0 },
      { 50, 50, 60, 60, 0.7, 1 },
      { 0, 0, 10, 10, 0.1, 1 },
    })
    cm:process_batch(dets, gt, yt.tensor({ 0, 1 }))
    assert.are.same({ { 1, 1, 0 }, { 0, 0, 1 }, { 0, 0, 0 } }, cm.matrix:totable())
    cm:process_batch(nil, gt, yt.tensor({ 0, 1 }))
    assert.are.same({ { 1, 1, 0 }, { 0, 0, 1 }, { 1, 1, 0 } }, cm.matrix:totable())
    local tp, fp = cm:tp_fp()
    assert.are.same({ 1, 0 }, tp)
    assert.are.same({ 1, 1 }, fp)
    assert.has_error(function() cm:process_batch(nil, gt, yt.tensor({ 0, 5 })) end)
  end)
end)

describe("nms through Lua (nms.safetensors)", function()
  local f = yt.io.load_safetensors(helpers.parity_dir .. "/nms.safetensors")
  local variants = {
    val = { conf = 0.001, iou = 0.7, max_det = 300, multi_label = true },
    val_single = { conf = 0.001, iou = 0.7, max_det = 300 },
    pred = { conf = 0.25, iou = 0.45, max_det = 300 },
  }
  for name, opts in pairs(variants) do
    it("reproduces " .. name .. " exactly (counts, order, coords <= 1e-4)", function()
      local out = yt.metrics.nms(f.prediction, opts)
      local counts = f[name .. ".count"]:tolist()
      local dets = f[name .. ".dets"]:totable()
      assert.are.equal(#counts, #out)
      for b = 1, #out do
        assert.are.equal(counts[b], out[b]:shape(1))
        local o = out[b]:totable()
        for k = 1, counts[b] do
          for j = 1, 4 do
            assert(math.abs(o[k][j] - dets[b][k][j]) <= 1e-4)
          end
          assert.are.equal(dets[b][k][5], o[k][5])
          assert.are.equal(dets[b][k][6], o[k][6])
        end
      end
    end)
  end

  it("honours classes, agnostic and max_det", function()
    local out = yt.metrics.nms(f.prediction, { conf = 0.25, iou = 0.45, classes = { 0 } })
    for _, row in ipairs(out[1]:totable()) do
      assert.are.equal(0, row[6])
    end
    local few = yt.metrics.nms(f.prediction, { conf = 0.25, max_det = 5 })
    assert.are.equal(5, few[1]:shape(1))
    local ag = yt.metrics.nms(f.prediction, { conf = 0.25, iou = 0.45, agnostic = true })
    assert.is_true(ag[1]:shape(1) <= yt.metrics.nms(f.prediction, { conf = 0.25, iou = 0.45 })[1]:shape(1))
    assert.has_error(function() yt.metrics.nms(yt.zeros({ 84, 10 })) end)
  end)
end)
