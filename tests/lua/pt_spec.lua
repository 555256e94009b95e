-- Ultralytics .pt checkpoints (../shared/parity/pt, made by Ultralytics 8.2.100): read as data, every tensor
-- bitwise, the checkpoint's own architecture and names, and model= / pretrained= / val / predict / export / train.
local yt = require("yolotrain.core")
local pt = require("yolotrain.utils.pt")
local tasks = require("yolotrain.nn.tasks")
local helpers = require("helpers")
local cjson = require("cjson")

local PT_DIR = yt.sys.realpath(helpers.parity_dir .. "/pt")
local BEST = PT_DIR .. "/yolov8n_coco128.pt"
local EPOCH1 = PT_DIR .. "/epoch1.pt"
local COCO = yt.sys.realpath(helpers.datasets_dir .. "/coco128")
local expected, expected_meta = yt.io.load_safetensors(PT_DIR .. "/expected.safetensors")

local function sh(dir, args) return helpers.run(string.format("cd '%s' && '%s' %s", dir, helpers.yolotrain, args)) end

-- every entry of sd equals expected[prefix .. name] exactly, and the two hold the same names
local function assert_bitwise(sd, prefix)
  local n = 0
  for name, t in pairs(sd) do
    local e = expected[prefix .. name]
    assert(e, "not in expected.safetensors: " .. prefix .. name)
    assert.are.same(e:shape(), t:shape(), name)
    assert.are.equal(e:dtype(), t:dtype(), name)
    if t:dtype() == "float32" then
      assert.are.equal(0, (t - e):abs():max():item(), name)
    else
      assert.are.same(e:tolist(), t:tolist(), name)
    end
    n = n + 1
  end
  local m = 0
  for name in pairs(expected) do
    if name:sub(1, #prefix) == prefix then m = m + 1 end
  end
  assert.are.equal(m, n)
  return n
end

-- boxes within 5e-2 px, class probabilities within 1e-4 (../shared/parity/README.md, decoded outputs)
local function assert_eval_out(y, ref)
  assert.are.same(ref:shape(), y:shape())
  local db = (y:narrow(2, 1, 4) - ref:narrow(2, 1, 4)):abs():max():item()
  local dp = (y:narrow(2, 5, y:shape(2) - 4) - ref:narrow(2, 5, ref:shape(2) - 4)):abs():max():item()
  assert(db <= 5e-2, string.format("boxes differ by %.3g px", db))
  assert(dp <= 1e-4, string.format("class probabilities differ by %.3g", dp))
  return db, dp
end

describe("an Ultralytics .pt", function()
  it("gives every tensor of a stripped best.pt bitwise (fp16 -> fp32)", function()
    local sd = pt.state_dict(BEST)
    assert.are.equal(355, assert_bitwise(sd, "weights."))
    assert.are.equal("int64", sd["model.0.bn.num_batches_tracked"]:dtype())
  end)

  it("gives the EMA, counters and optimizer state of a mid-training checkpoint", function()
    local ckpt, rec = pt.load(EPOCH1)
    assert.are.equal(355, assert_bitwise(rec.state_dict, "ema."))
    assert.are.equal(1, ckpt.epoch)
    assert.are.equal(4, ckpt.updates)
    local groups = ckpt.optimizer.param_groups
    assert.are.equal(tonumber(expected_meta.epoch1_optimizer_param_groups), #groups)
    for _, g in ipairs(groups) do
      assert.are.equal("number", type(g.lr))
      assert.are.equal("number", type(g.initial_lr))
    end
    assert.truthy(next(ckpt.optimizer.state), "per-parameter AdamW state")
  end)

  it("builds its own architecture with its nc and names and reproduces Ultralytics' eval output", function()
    local m, ckpt = pt.load_model(BEST)
    assert.are.equal(80, m.nc)
    for k, n in pairs(cjson.decode(expected_meta.names)) do
      assert.are.equal(n, m.names[tonumber(k)])
    end
    assert.are.equal("yolov8n.yaml", m.yaml_file)
    assert.are.equal(cjson.decode(expected_meta.train_args).epochs, ckpt.train_args.epochs)
    m:eval()
    local prev = yt.set_grad_enabled(false)
    local db, dp = assert_eval_out(m(expected.input), expected.eval_out)
    m:fuse()
    local fdb, fdp = assert_eval_out(m(expected.input), expected.eval_out)
    yt.set_grad_enabled(prev)
    print(string.format("\n  eval_out: boxes %.2g px, probs %.2g; fused: %.2g px, %.2g", db, dp, fdb, fdp))
  end)

  it("loads as pretrained= into a model YAML, saying what it transferred", function()
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
    local loaded, total = m:load(BEST, false)
    assert.are.equal(355, loaded)
    assert.are.equal(355, total)
    assert_bitwise(m:state_dict(), "weights.")
  end)

  it("converts once with `detect export format=safetensors` into a checkpoint model= reads", function()
    local dir = helpers.tmpdir()
    assert(os.execute(string.format("cp '%s' '%s/best.pt'", BEST, dir)))
    local ok, rc, out = sh(dir, "detect export model=best.pt format=safetensors")
    assert.is_true(ok, out)
    assert.are.equal(0, rc)
    assert.truthy(out:find("saved as 'best.safetensors'", 1, true), out)
    local m, meta = tasks.load_checkpoint_model(dir .. "/best.safetensors")
    assert_bitwise(m:state_dict(), "weights.")
    assert.are.equal("person", m.names[0])
    assert.are.equal("-1", meta.epoch)
    assert.are.equal(2, cjson.decode(meta.train_args).epochs)
  end)

  it("validates and predicts from the command line with model=x.pt, at the size it was trained at", function()
    local dir = helpers.tmpdir()
    local ok, rc, out = sh(dir, string.format("detect val model='%s' data='%s' batch=32 plots=false", BEST, COCO))
    assert.is_true(ok, out)
    assert.truthy(out:find("val: imgsz=128, single_cls=false from the training arguments of", 1, true), out)
    assert.truthy(out:find("\n%s+all%s+128%s+898%s"), out)
    ok, rc, out = sh(
      dir,
      string.format(
        "detect predict model='%s' source='%s/images/val2017/000000000139.jpg' " .. "conf=0.01 save=false",
        BEST,
        COCO
      )
    )
    assert.is_true(ok, out)
    assert.truthy(out:find("predict: imgsz=128 from the training arguments of", 1, true), out)
    assert.truthy(out:find("128x%d+ ") or out:find("%d+x128 "), out)
  end)

  it("exits 1 with one message naming the file for a damaged or missing .pt", function()
    local dir = helpers.tmpdir()
    local data = helpers.read_file(BEST)
    helpers.write_file(dir .. "/cut.pt", data:sub(1, #data // 2))
    local ok, rc, out = sh(dir, "detect val model=cut.pt data=" .. COCO)
    assert.is_false(ok)
    assert.are.equal(1, rc)
    assert.truthy(out:find("cut.pt", 1, true), out)
    assert.is_nil(out:find("traceback", 1, true), out)
    ok, rc, out = sh(dir, "detect val model=gone.pt data=" .. COCO)
    assert.are.equal(1, rc)
    assert.truthy(out:find("gone.pt' not found", 1, true), out)
  end)
end)

describe("training from a .pt", function()
  -- A small writable copy of coco128 (8 images each split) so that the label cache can be written.
  local function small_dataset(dir)
    for _, split in ipairs({ "train2017", "val2017" }) do
      os.execute(string.format("mkdir -p '%s/images/%s' '%s/labels/%s'", dir, split, dir, split))
      local names = yt.sys.listdir(COCO .. "/images/" .. split)
      table.sort(names)
      for i = 1, 8 do
        local stem = names[i]:gsub("%.jpg$", "")
        os.execute(string.format("ln -s '%s/images/%s/%s' '%s/images/%s/'", COCO, split, names[i], dir, split))
        os.execute(string.format("cp '%s/labels/%s/%s.txt' '%s/labels/%s/' 2>/dev/null", COCO, split, stem, dir, split))
      end
    end
    helpers.write_file(dir .. "/data.yaml", helpers.read_file(COCO .. "/data.yaml"))
    return dir .. "/data.yaml"
  end

  local function first_step(overrides)
    local detect = require("yolotrain.models.yolo.detect")
    local t = detect.Detection_Trainer { overrides = overrides }
    local items
    t:add_callback("on_train_batch_end", function(tr)
      if not items then
        items = {}
        for i, v in ipairs(tr.loss_items) do
          items[i] = v
        end
      end
      tr.stop = true
    end)
    t:train()
    return items, t
  end

  it("starts from exactly the checkpoint's weights: the first loss equals starting from them", function()
    local dir = helpers.tmpdir()
    local data = small_dataset(dir)
    local sd = {}
    for name, t in pairs(expected) do
      if name:sub(1, 8) == "weights." then sd[name:sub(9)] = t end
    end
    yt.io.save_safetensors(dir .. "/weights.safetensors", sd)
    local common = {
      data = data,
      epochs = 1,
      imgsz = 64,
      batch = 4,
      workers = 0,
      val = false,
      plots = false,
      project = dir,
      exist_ok = true,
      seed = 0,
      deterministic = true,
      verbose = false,
    }
    local function with(extra) return helpers.merged(common, extra) end
    local from_pt = first_step(with { model = BEST, name = "pt" })
    local from_st = first_step(with { model = "yolov8n.yaml", pretrained = dir .. "/weights.safetensors", name = "st" })
    assert.are.same(from_st, from_pt)
    print(string.format("\n  first loss items from the .pt: %.6f %.6f %.6f", from_pt[1], from_pt[2], from_pt[3]))
  end)

  it("prints Ultralytics' transfer line and takes nc and names from data", function()
    local dir = helpers.tmpdir()
    local data = small_dataset(dir)
    local ok, rc, out = helpers.run(
      string.format(
        "cd '%s' && '%s' detect train model='%s' data='%s' epochs=1 "
          .. "imgsz=64 batch=4 workers=0 val=false plots=false fraction=0.5",
        dir,
        helpers.yolotrain,
        BEST,
        data
      )
    )
    assert.is_true(ok, out)
    assert.truthy(out:find("Transferred 355/355 items from pretrained weights", 1, true), out)
  end)
end)
