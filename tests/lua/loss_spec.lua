local yt = require("yolotrain.core")
local helpers = require("helpers")

local function max_abs_diff(a, b)
  local ta, tb = a:contiguous():reshape({ -1 }):totable(), b:contiguous():reshape({ -1 }):totable()
  assert(#ta == #tb, "sizes differ")
  local m = 0
  for i = 1, #ta do
    local d = math.abs(ta[i] - tb[i])
    if d > m or d ~= d then m = d end
  end
  return m
end

local function max_abs(a)
  local m = 0
  for _, v in ipairs(a:contiguous():reshape({ -1 }):totable()) do
    if math.abs(v) > m then m = math.abs(v) end
  end
  return m
end

local function count_diff(a, b)
  local ta, tb = a:contiguous():reshape({ -1 }):totable(), b:contiguous():reshape({ -1 }):totable()
  local n = 0
  for i = 1, #ta do
    if ta[i] ~= tb[i] then n = n + 1 end
  end
  return n
end

-- a tiny batch: 2 images 32x32, 3 classes, reg_max 8, levels 4x4 / 2x2 / 1x1
local function tiny()
  yt.manual_seed(5)
  local preds = {}
  for l, hw in ipairs({ 4, 2, 1 }) do
    preds[l] = (yt.rand({ 2, 4 * 8 + 3, hw, hw }) * 4 - 2):requires_grad_(true)
  end
  local batch = {
    batch_idx = yt.tensor({ 0, 0, 1 }),
    cls = yt.tensor({ { 1 }, { 2 }, { 0 } }),
    bboxes = yt.tensor({ { 0.5, 0.5, 0.6, 0.7 }, { 0.3, 0.35, 0.4, 0.3 }, { 0.55, 0.45, 0.8, 0.6 } }),
  }
  return preds, batch
end

describe("bbox_iou", function()
  it("gives IoU and CIoU of boxes in xyxy or xywh", function()
    local a = yt.tensor({ { 0, 0, 2, 2 } })
    local b = yt.tensor({ { 1, 1, 3, 3 } })
    assert.is_near(1 / 7, yt.loss.bbox_iou(a, b):item(), 1e-6)
    assert.is_near(1, yt.loss.bbox_iou(a, a, { ciou = true }):item(), 1e-6)
    local axywh = yt.tensor({ { 1, 1, 2, 2 } })
    local bxywh = yt.tensor({ { 2, 2, 2, 2 } })
    assert.is_near(1 / 7, yt.loss.bbox_iou(axywh, bxywh, { xywh = true }):item(), 1e-6)
    assert.are.same({ 1, 1 }, yt.loss.bbox_iou(a, b):shape())
  end)

  it("is differentiable", function()
    local a = yt.tensor({ { 0, 0, 2, 2 } }):requires_grad_(true)
    local b = yt.tensor({ { 1, 1, 3, 3 } })
    local iou = yt.loss.bbox_iou(a, b, { ciou = true })
    iou:backward()
    local g = a.grad:totable()[1]
    -- moving box 1's right edge towards box 2 increases the overlap
    assert.is_true(g[3] > 0)
    assert.is_true(g[1] > 0)
  end)
end)

describe("make_anchors", function()
  it("builds anchor points and strides level by level", function()
    local pts, st = yt.loss.make_anchors({ { 2, 3 }, { 1, 1 } }, { 8, 16 }, 0.5)
    assert.are.same({ 7, 2 }, pts:shape())
    assert.are.same({ 0.5, 0.5 }, pts:totable()[1])
    assert.are.same({ 2.5, 1.5 }, pts:totable()[6])
    assert.are.same({ 16 }, st:totable()[7])
    local feats = { yt.zeros({ 1, 4, 2, 2 }) }
    local p2 = yt.loss.make_anchors(feats, { 32 })
    assert.are.same({ 4, 2 }, p2:shape())
  end)
end)

describe("dfl_loss and bce_with_logits", function()
  it("give log(reg_max) for uniform logits and the textbook BCE", function()
    local d = yt.loss.dfl_loss(yt.zeros({ 4, 16 }), yt.tensor({ { 1.5, 2, 3.25, 14.99 } }))
    assert.is_near(math.log(16), d:item(), 1e-5)
    local x = yt.tensor({ { 0.5, -1 } })
    local t = yt.tensor({ { 1, 0 } })
    local s1, s2 = 1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(1))
    local ref = -math.log(s1) - math.log(1 - s2)
    assert.is_near(ref, yt.loss.bce_with_logits(x, t):item(), 1e-5)
    local w = yt.tensor({ 2, 3 })
    assert.is_near(-2 * math.log(s1) - 3 * math.log(1 - s2), yt.loss.bce_with_logits(x, t, w):item(), 1e-5)
  end)

  it("backpropagate", function()
    local x = yt.tensor({ { 0.5, -1 } }):requires_grad_(true)
    yt.loss.bce_with_logits(x, yt.tensor({ { 1, 0 } })):backward()
    local g = x.grad:totable()[1]
    assert.is_near(1 / (1 + math.exp(-0.5)) - 1, g[1], 1e-6)
    assert.is_near(1 / (1 + math.exp(1)), g[2], 1e-6)
  end)
end)

describe("detect_loss", function()
  it("returns a differentiable loss and the three loss items", function()
    local preds, batch = tiny()
    local loss, items = yt.loss.detect_loss(preds, batch, { nc = 3, reg_max = 8 })
    assert.are.same({}, loss:shape())
    assert.are.same({ 3 }, items:shape())
    local it = items:totable()
    assert.is_near(2 * (it[1] + it[2] + it[3]), loss:item(), 1e-4 * loss:item())
    loss:backward()
    for l = 1, 3 do
      assert.is_not_nil(preds[l].grad)
      assert.are.same(preds[l]:shape(), preds[l].grad:shape())
    end
    assert.is_true(max_abs(preds[1].grad) > 0)
  end)

  it("matches a finite difference of the loss in one class logit of a non-GT class", function()
    local preds, batch = tiny()
    local loss = yt.loss.detect_loss(preds, batch, { reg_max = 8 }) -- nc from the channel count
    loss:backward()
    local g = preds[1].grad:get(1, 32 + 1, 2, 3) -- class 0 of image 1 (image 0 has classes 1 and 2 only)
    local eps = 1e-2
    local v0 = preds[1]:get(1, 33, 2, 3)
    local was = yt.set_grad_enabled(false)
    local ok, lp, lm = pcall(function()
      preds[1]:set(v0 + eps, 1, 33, 2, 3)
      local p = yt.loss.detect_loss(preds, batch, { reg_max = 8 }):item()
      preds[1]:set(v0 - eps, 1, 33, 2, 3)
      return p, yt.loss.detect_loss(preds, batch, { reg_max = 8 }):item()
    end)
    yt.set_grad_enabled(was)
    assert(ok, lp)
    assert.is_near((lp - lm) / (2 * eps), g, 1e-3 + 1e-2 * math.abs(g))
  end)

  it("is background BCE only without ground truth", function()
    local preds = tiny()
    local empty = { batch_idx = yt.zeros({ 0 }), cls = yt.zeros({ 0, 1 }), bboxes = yt.zeros({ 0, 4 }) }
    local _, items, ex = yt.loss.detect_loss(preds, empty, { nc = 3, reg_max = 8, extras = true })
    local it = items:totable()
    assert.are.equal(0, it[1])
    assert.are.equal(0, it[3])
    assert.is_true(it[2] > 0)
    assert.are.equal(0, ex.num_fg)
    assert.are.equal(1, ex.target_scores_sum)
  end)

  it("applies per-class BCE weights", function()
    local preds, batch = tiny()
    local _, i1 = yt.loss.detect_loss(preds, batch, { reg_max = 8 })
    local _, i2 = yt.loss.detect_loss(preds, batch, { reg_max = 8, cls_pw = { 2, 2, 2 } })
    assert.is_near(2 * i1:totable()[2], i2:totable()[2], 1e-5 * i2:totable()[2])
    assert.are.equal(i1:totable()[1], i2:totable()[1])
  end)

  it("names NaN predictions and bad targets", function()
    local preds, batch = tiny()
    preds[3]:set(0 / 0, 2, 1, 1, 1)
    local ok, err = pcall(yt.loss.detect_loss, preds, batch, { reg_max = 8 })
    assert.is_false(ok)
    assert.matches("preds%[2%] contains NaN", err)
    preds = tiny()
    batch.batch_idx = yt.tensor({ 0, 0, 5 })
    ok, err = pcall(yt.loss.detect_loss, preds, batch, { reg_max = 8 })
    assert.is_false(ok)
    assert.matches("batch_idx", err)
    ok, err = pcall(yt.loss.detect_loss, preds, { cls = batch.cls }, { reg_max = 8 })
    assert.is_false(ok)
    assert.matches("batch.batch_idx", err)
  end)
end)

describe("detect_loss parity with Ultralytics 8.2.100", function()
  -- the golden fixtures are part of the test setup: without them this parity check fails rather than skips
  local T = yt.io.load_safetensors(helpers.parity_dir .. "/loss.safetensors")

  it("reproduces loss, loss_items, the assignment and grad_preds", function()
    local preds = {}
    for l = 1, 3 do
      preds[l] = T["preds." .. (l - 1)]:clone():requires_grad_(true)
    end
    local loss, items, ex = yt.loss.detect_loss(
      preds,
      { batch_idx = T.batch_idx, cls = T.cls, bboxes = T.bboxes },
      { box = 7.5, cls = 0.5, dfl = 1.5, nc = 80, reg_max = 16, strides = { 8, 16, 32 }, extras = true }
    )
    local ref = T.loss_items:totable()
    for k = 1, 3 do
      assert.is_near(ref[k], items:totable()[k], 1e-5 * ref[k])
    end
    assert.is_near(T.loss:item(), loss:item(), 1e-5 * T.loss:item())
    assert.are.equal(0, count_diff(ex.fg_mask, T.fg_mask))
    assert.are.equal(0, count_diff(ex.target_gt_idx, T.target_gt_idx))
    assert.is_true(max_abs_diff(ex.target_scores, T.target_scores) <= 1e-4)
    assert.is_true(max_abs_diff(ex.target_bboxes, T.target_bboxes) <= 1e-4)
    loss:backward()
    for l = 1, 3 do
      local r = T["grad_preds." .. (l - 1)]
      assert.is_true(max_abs_diff(preds[l].grad, r) <= 1e-3 * max_abs(r))
    end
  end)

  it("runs the assigner alone on the stored inputs", function()
    local eo = ({
      yt.loss.detect_loss(
        { T["preds.0"], T["preds.1"], T["preds.2"] },
        { batch_idx = T.batch_idx, cls = T.cls, bboxes = T.bboxes },
        { extras = true }
      ),
    })[3]
    local r = yt.loss.task_aligned_assign(
      eo.pd_scores,
      T["assigner_in.pd_bboxes"],
      T["assigner_in.anc_points"],
      T["assigner_in.gt_labels"],
      T["assigner_in.gt_bboxes"],
      T["assigner_in.mask_gt"],
      { topk = 10, alpha = 0.5, beta = 6 }
    )
    assert.are.equal(0, count_diff(r.fg_mask, T.fg_mask))
    assert.are.equal(0, count_diff(r.target_gt_idx, T.target_gt_idx))
    assert.are.equal(0, count_diff(r.target_labels, T.target_labels))
    assert.is_true(max_abs_diff(r.target_scores, T.target_scores) <= 1e-4)
  end)
end)
