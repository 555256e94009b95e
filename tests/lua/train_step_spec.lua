-- One training step of ours equals one of Ultralytics 8.2.100 (loss.safetensors), and real steps learn.
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local helpers = require("helpers")

local P = helpers.parity_dir
local ls = yt.io.load_safetensors(P .. "/loss.safetensors")
local init_sd = yt.io.load_safetensors(P .. "/yolov8n_init.safetensors")

local function batch_of(t) return { img = t.images, batch_idx = t.batch_idx, cls = t.cls, bboxes = t.bboxes } end

local function new_model()
  local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
  m:load_state_dict(init_sd)
  m:train()
  return m
end

describe("a training step", function()
  it("gives Ultralytics' loss and every parameter gradient through the whole network", function()
    local m = new_model()
    local loss, items = m:loss(batch_of(ls))
    local ref_items = ls.loss_items:tolist()
    local got = items:tolist()
    for i = 1, 3 do
      local rel = math.abs(got[i] - ref_items[i]) / math.abs(ref_items[i])
      assert(rel <= 1e-5, string.format("loss item %d: %.7g vs %.7g (rel %.3g)", i, got[i], ref_items[i], rel))
    end
    local rel = math.abs(loss:item() - ls.loss:item()) / ls.loss:item()
    assert(rel <= 1e-5, string.format("loss %.7g vs %.7g", loss:item(), ls.loss:item()))
    loss:backward()
    local worst_rel, worst_name, n = 0, "", 0
    for name, p in m:named_parameters() do
      if p.requires_grad then
        local ref = ls["grad." .. name]
        local scale = ref:abs():max():item()
        local diff = (p.grad - ref):abs():max():item()
        local rel_l2 = math.sqrt((p.grad - ref):pow(2):sum():item() / math.max(ref:pow(2):sum():item(), 1e-30))
        assert(diff <= 1e-3 * scale, string.format("%s: max diff %.3g > 1e-3 * %.3g", name, diff, scale))
        assert(rel_l2 <= 1e-3, string.format("%s: rel-L2 %.3g", name, rel_l2))
        if diff / scale > worst_rel then
          worst_rel, worst_name = diff / scale, name
        end
        n = n + 1
      end
    end
    assert.are.equal(183, n)
    print(
      string.format(
        "\n  loss %.7g (ref %.7g); worst gradient max diff / max|ref| = %.3g (%s)",
        loss:item(),
        ls.loss:item(),
        worst_rel,
        worst_name
      )
    )
  end)

  it("handles a batch without any box (background-only loss)", function()
    local m = new_model()
    local b = batch_of(ls)
    b.batch_idx, b.cls, b.bboxes = yt.zeros({ 0 }), yt.zeros({ 0, 1 }), yt.zeros({ 0, 4 })
    local loss, items = m:loss(b)
    local it = items:tolist()
    assert.are.equal(0, it[1])
    assert.are.equal(0, it[3])
    assert.is_true(it[2] > 0)
    loss:backward()
    assert.is_not_nil(m.model.items[1].conv.weight.grad)
  end)

  it("overfits one fixed coco128 batch in 30 steps without NaN", function()
    yt.manual_seed(0)
    local m = new_model()
    local params = {}
    for _, p in m:named_parameters() do
      if p.requires_grad then params[#params + 1] = p end
    end
    local opt = yt.optim.new("AdamW", { { params = params, lr = 0.002, betas = { 0.9, 0.999 }, weight_decay = 0 } })
    local b = batch_of(ls)
    local first, last
    for step = 1, 30 do
      yt.scope_begin()
      local loss = m:loss(b)
      local v = loss:item()
      assert(v == v, "NaN loss at step " .. step)
      if step == 1 then first = v end
      last = v
      loss:backward()
      yt.optim.clip_grad_norm(params, 10.0)
      opt:step()
      opt:zero_grad()
      yt.scope_end()
    end
    print(string.format("\n  overfit: loss %.3f -> %.3f after 30 steps", first, last))
    assert(last < 0.7 * first, string.format("loss went from %.3f to %.3f", first, last))
  end)
end)
