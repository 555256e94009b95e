-- The training engine: schedule parity with Ultralytics 8.2.100, callback order, override hooks, checkpoints and
-- exact resume. Data and validation are replaced by small deterministic stand-ins (a recipe can do the same
-- through get_dataloader / get_validator), so these specs run in seconds.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local detect = require("yolotrain.models.yolo.detect")
local helpers = require("helpers")
local cjson = require("cjson")

local fake = require("fake_training")
local make_trainer_class, tiny_yaml = fake.make_trainer_class, fake.tiny_yaml

describe("Engine_Trainer", function()
  it("reproduces Ultralytics' warmup/accumulate/lr schedule (trainer_schedule.json)", function()
    local ref = cjson.decode(helpers.read_file(helpers.parity_dir .. "/trainer_schedule.json"))
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 8, size = 128 })
    local t = T {
      overrides = fake.overrides(dir, { epochs = 3, batch = 16, name = "sched", val = false }),
    }
    local rows, steps = {}, {}
    t:add_callback("on_train_batch_end", function(tr)
      local g = {}
      for j = 1, 3 do
        g[j] = tr.optimizer:get_group(j)
      end
      rows[#rows + 1] = {
        ni = tr.ni,
        accumulate = tr.accumulate,
        lr = { g[1].lr, g[2].lr, g[3].lr },
        momentum = { g[1].momentum, g[2].momentum, g[3].momentum },
      }
    end)
    t:add_callback("optimizer_step", function(tr) steps[#steps + 1] = tr.ni end)
    t:train()
    assert.are.equal("AdamW", t.optimizer.name)
    assert.are.equal(#ref.iterations, #rows)
    for k, r in ipairs(ref.iterations) do
      local got = rows[k]
      assert.are.equal(r.ni, got.ni)
      assert.are.equal(r.accumulate, got.accumulate, "accumulate at ni " .. r.ni)
      for j = 1, 3 do
        assert(
          math.abs(got.lr[j] - r.lr[j]) <= 1e-12 + 1e-9 * math.abs(r.lr[j]),
          string.format("lr of group %d at ni %d: %.10g vs %.10g", j - 1, r.ni, got.lr[j], r.lr[j])
        )
        assert(
          math.abs(got.momentum[j] - r.momentum_or_beta1[j]) <= 1e-12,
          string.format("beta1 of group %d at ni %d", j - 1, r.ni)
        )
      end
    end
    assert.are.same(ref.optimizer_step_at_ni, steps)
  end)

  it("fires every callback at its point and in Ultralytics' order", function()
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 2 })
    local t = T {
      overrides = fake.overrides(dir, { epochs = 2, name = "cb", warmup_epochs = 0, nbs = 2 }),
    }
    local seq = {}
    local cbs = require("yolotrain.utils.callbacks")
    for _, e in ipairs(cbs.events) do
      t:add_callback(e, function(tr)
        if e ~= "on_train_batch_start" or #seq == 0 or seq[#seq] ~= e then seq[#seq + 1] = e end
        if e == "on_model_save" then
          assert.is_true(helpers.run("test -s '" .. tr.last .. "'"), "last exists when on_model_save fires")
        end
      end)
    end
    t:train()
    local batch = {
      "on_train_batch_start",
      "optimizer_step",
      "on_before_zero_grad",
      "on_params_update",
      "on_batch_end",
      "on_train_batch_end",
    }
    local expected = { "on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start" }
    for _ = 1, 2 do
      expected[#expected + 1] = "on_train_epoch_start"
      for _ = 1, 2 do
        for _, e in ipairs(batch) do
          expected[#expected + 1] = e
        end
      end
      for _, e in ipairs({ "on_train_epoch_end", "on_model_save", "on_fit_epoch_end" }) do
        expected[#expected + 1] = e
      end
    end
    -- final_eval validates best and fires on_fit_epoch_end once more
    for _, e in ipairs({ "on_fit_epoch_end", "on_train_end", "teardown" }) do
      expected[#expected + 1] = e
    end
    assert.are.same(expected, seq)
  end)

  it("calls every override hook", function()
    local dir = helpers.tmpdir()
    local T, Base = make_trainer_class({ nb = 2 })
    local called = {}
    -- (build_dataset is not among them: the fake get_dataloader builds no dataset; data_spec covers it)
    local hooks = {
      "setup_model",
      "build_model",
      "preprocess_batch",
      "set_model_attributes",
      "get_validator",
      "build_optimizer",
      "label_loss_items",
      "progress_string",
      "save_model",
      "validate",
      "final_eval",
      "get_dataloader",
    }
    for _, name in ipairs(hooks) do
      local parent = T[name]
      T[name] = function(self, ...)
        called[name] = true
        return parent(self, ...)
      end
    end
    local t = T {
      overrides = fake.overrides(dir, { epochs = 1, name = "hooks" }),
    }
    t:train()
    for _, name in ipairs(hooks) do
      assert.is_true(called[name] == true, name .. " was not called")
    end
  end)

  it("writes the run directory: args.yaml, results.csv, last and best", function()
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 2 })
    local t = T {
      overrides = fake.overrides(dir, { epochs = 3, name = "run" }),
    }
    local saved_epoch = {}
    t:add_callback("on_model_save", function(tr)
      for _, f in ipairs({ tr.best, tr.last }) do
        local _, m = yt.io.load_safetensors(f)
        saved_epoch[f] = m.epoch
      end
    end)
    t:train()
    assert.are.equal(dir .. "/run", t.save_dir)
    assert.are.equal(dir .. "/run/weights/last.safetensors", t.last)
    assert.are.equal(dir .. "/run/weights/best.safetensors", t.best)
    local csv = helpers.read_file(dir .. "/run/results.csv")
    local lines = {}
    for l in csv:gmatch("[^\n]+") do
      lines[#lines + 1] = l
    end
    assert.are.equal(
      "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
        .. "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2",
      lines[1]
    )
    assert.are.equal(4, #lines)
    local args = yt.io.load_yaml(dir .. "/run/args.yaml")
    assert.are.equal(3, args.epochs)
    assert.are.equal("run", args.name)
    -- while training, best is the epoch with the best fitness (0.3 at epoch 2), last the final epoch
    assert.are.equal("1", saved_epoch[t.best])
    assert.are.equal("2", saved_epoch[t.last])
    -- once finished, both are stripped to the F16 EMA model (Ultralytics' strip_optimizer)
    for _, f in ipairs({ t.best, t.last }) do
      local tensors, meta = yt.io.load_safetensors(f)
      assert.are.equal("-1", meta.epoch, f)
      assert.is_not_nil(meta.yaml, f)
      local n_model, numel = 0, 0
      for name, tensor in pairs(tensors) do
        assert.truthy(name:match("^model%."), f .. " keeps " .. name)
        n_model, numel = n_model + 1, numel + tensor:numel()
      end
      assert.is_true(n_model > 0, f)
      -- two bytes per value (F16) plus the JSON header, not four
      local size = yt.sys.stat(f).size
      assert.is_true(
        size >= 2 * numel and size < 3 * numel + 8192,
        string.format("%s: %d bytes for %d values", f, size, numel)
      )
    end
    -- a second run with the same name goes to run2
    local t2 = T {
      overrides = fake.overrides(dir, { epochs = 1, name = "run" }),
    }
    assert.are.equal(dir .. "/run2", t2.save_dir)
  end)

  it("resumes an interrupted run to bitwise the same final weights", function()
    local dir = helpers.tmpdir()
    local yaml = tiny_yaml(dir)
    local T = make_trainer_class({ nb = 3 })
    local common = {
      model = yaml,
      data = "fake",
      epochs = 3,
      imgsz = 32,
      batch = 4,
      project = dir,
      plots = false,
      verbose = false,
      nbs = 8,
      warmup_epochs = 1,
      close_mosaic = 1,
    }
    local function with(extra) return helpers.merged(common, extra) end
    local full = T { overrides = with({ name = "full" }) }
    full:train()
    local part = T { overrides = with({ name = "part" }) }
    part:add_callback("on_fit_epoch_end", function(tr)
      if tr.epoch == 1 then
        tr.stop = true
        tr.interrupted = true
      end
    end)
    part:train()
    local interrupted = dir .. "/interrupted.safetensors"
    helpers.write_file(interrupted, helpers.read_file(dir .. "/part/weights/last.safetensors"))
    local resumed = T { overrides = { resume = dir .. "/part/weights/last.safetensors" } }
    resumed:train()
    local a = yt.io.load_safetensors(full.last)
    local b = yt.io.load_safetensors(resumed.last)
    local n = 0
    for name, ta in pairs(a) do
      if name:match("^model%.") or name:match("^train_model%.") then
        local tb = b[name]
        assert.is_not_nil(tb, name)
        local d = (ta:float() - tb:float()):abs():max():item()
        assert.are.equal(0, d, name .. " differs by " .. d)
        n = n + 1
      end
    end
    assert.is_true(n > 100)
    -- and a finished run has nothing to resume
    local ok, err = pcall(function() T { overrides = { resume = full.last } }:train() end)
    assert.is_false(ok)
    assert.matches("nothing to resume", tostring(err), 1, true)

    -- damaged or foreign checkpoints: refused with the file and key, nothing written
    local tensors, meta = yt.io.load_safetensors(interrupted)
    local function variant(name, key, value)
      local m = {}
      for k, v in pairs(meta) do
        m[k] = v
      end
      m[key] = value
      local p = dir .. "/" .. name .. ".safetensors"
      yt.io.save_safetensors(p, tensors, m)
      return p
    end
    local before = helpers.read_file(full.last)
    for _, case in ipairs({ { "nan", "epoch", "nan" }, { "neg", "epoch", "-5" }, { "frac", "epochs", "2.5" } }) do
      local p = variant(case[1], case[2], case[3])
      ok, err = pcall(function() T { overrides = { resume = p } }:train() end)
      assert.is_false(ok, case[1])
      assert.matches(
        "resume=" .. p .. ": checkpoint metadata '" .. case[2] .. "' is \"" .. case[3] .. '"',
        tostring(err),
        1,
        true
      )
    end
    assert.are.equal(before, helpers.read_file(full.last), "the run's last was touched")
    -- an unfinished checkpoint lying outside the run directory it names
    local moved = variant("moved", "epoch", "0")
    ok, err = pcall(function() T { overrides = { resume = moved } }:train() end)
    assert.is_false(ok)
    assert.matches("give project= and/or name=", tostring(err):lower(), 1, true)
    local elsewhere = T { overrides = { resume = moved, project = dir, name = "continued" } }
    assert.are.equal(dir .. "/continued", elsewhere.save_dir)
    elsewhere:train()
    assert.are.equal(before, helpers.read_file(full.last), "the original run's last was overwritten")
    assert.truthy(io.open(dir .. "/continued/weights/last.safetensors", "rb"))
  end)

  -- A 3-epoch run where `at_epoch2` runs at the start of the second epoch and must stop training: returns the
  -- error, after asserting that last still holds what the first epoch saved.
  local function fails_in_epoch2(name, at_epoch2)
    local T = make_trainer_class({ nb = 2 })
    local t = T { overrides = fake.overrides(helpers.tmpdir(), { epochs = 3, name = name }) }
    local saved
    t:add_callback("on_model_save", function(tr) saved = helpers.read_file(tr.last) end)
    t:add_callback("on_train_epoch_start", function(tr)
      if tr.epoch == 1 then at_epoch2(tr) end
    end)
    local ok, err = pcall(t.train, t)
    assert.is_false(ok)
    assert.are.equal(saved, helpers.read_file(t.last))
    return tostring(err)
  end

  it("stops with a clear error naming the step when the loss turns NaN, leaving last intact", function()
    local err = fails_in_epoch2(
      "nan",
      function(tr) tr.model:state_dict()["model.0.conv.weight"]:set(0 / 0, 1, 1, 1, 1) end
    )
    assert.matches("epoch 2, batch 1", err, 1, true)
    assert.matches("NaN", err, 1, true)
  end)

  it("stops cleanly when a callback raises, leaving last intact", function()
    local err = fails_in_epoch2("cberr", function() error("upload failed") end)
    assert.matches("upload failed", err, 1, true)
    assert.matches("on_train_epoch_start", err, 1, true)
    assert.matches("last checkpoint", err, 1, true)
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 2 })
    -- with callback_errors=warn the run carries on
    local t2 = T {
      overrides = fake.overrides(dir, { epochs = 2, name = "cbwarn", callback_errors = "warn" }),
    }
    t2:add_callback("on_train_epoch_start", function() error("flaky") end)
    t2:train()
    assert.are.equal(1, t2.epoch)
  end)
end)

describe("a recipe's own loader", function()
  it("needs only #loader and calling it for the next batch", function()
    local dir = helpers.tmpdir()
    local fake_mod = require("fake_training")
    local T, Base = fake_mod.make_trainer_class({ nb = 2 })
    local stock_get = T.get_dataloader
    function T:get_dataloader(path, batch_size, rank, mode)
      local inner = stock_get(self, path, batch_size, rank, mode)
      if mode ~= "train" then return inner end
      local it
      -- a minimal loader: a callable table with a length (no iter, set_epoch or dataset_size)
      return setmetatable({}, {
        __len = function() return #inner end,
        __call = function()
          it = it or inner:iter()
          local b = it()
          if b == nil then it = nil end
          return b
        end,
      })
    end
    local t = T {
      overrides = fake.overrides(dir, { epochs = 2, name = "minimal" }),
    }
    t:train()
    assert.are.equal(1, t.epoch)
  end)
end)

describe("build_optimizer", function()
  it("builds Ultralytics' three parameter groups (optimizer_groups.json)", function()
    local ref = cjson.decode(helpers.read_file(helpers.parity_dir .. "/optimizer_groups.json"))
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 1 })
    local t = T {
      overrides = {
        model = "yolov8n.yaml",
        data = "fake",
        epochs = 1,
        imgsz = 32,
        batch = 4,
        project = dir,
        name = "groups",
        plots = false,
        verbose = false,
      },
    }
    t:setup_model()
    local captured
    local real_new = yt.optim.new
    yt.optim.new = function(kind, groups)
      captured = groups
      return real_new(kind, groups)
    end
    local ok, err = pcall(t.build_optimizer, t, t.model, "SGD", 0.01, 0.937, 0.0005, 1e5)
    yt.optim.new = real_new
    assert(ok, err)
    local names = {}
    for name, p in t.model:named_parameters() do
      names[p] = name
    end
    local groups = ref.sgd.param_groups
    assert.are.equal(3, #captured)
    for j = 1, 3 do
      local got = {}
      for _, p in ipairs(captured[j].params) do
        got[#got + 1] = names[p]
      end
      assert.are.same(groups[j].param_names, got, "group " .. (j - 1))
      assert.are.equal(groups[j].weight_decay, captured[j].weight_decay, "decay of group " .. (j - 1))
    end
  end)
end)

describe("training arguments at work", function()
  local function run(overrides, setup)
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 2 })
    local o = fake.overrides(dir, { epochs = 3, name = "args" })
    for k, v in pairs(overrides) do
      o[k] = v
    end
    local t = T { overrides = o }
    if setup then setup(t) end
    t:train()
    return t, dir
  end

  it("patience stops after that many epochs without improvement", function()
    -- the fake fitness is 0.1, 0.3, 0.2, 0.25, 0.15: best at epoch 2, then no improvement
    local t = run({ epochs = 5, patience = 2 })
    assert.are.equal(3, t.epoch) -- epochs 3 and 4 (0-based 2, 3) without improvement
  end)

  it("save_period writes epochN checkpoints like Ultralytics (0-based)", function()
    local t = run({ epochs = 3, save_period = 2 })
    assert.is_not_nil(yt.sys.stat(t.wdir .. "/epoch0.safetensors"))
    assert.is_not_nil(yt.sys.stat(t.wdir .. "/epoch2.safetensors"))
    assert.is_nil(yt.sys.stat(t.wdir .. "/epoch1.safetensors"))
  end)

  it("freeze keeps the first layers' weights unchanged", function()
    local before
    local t = run({ epochs = 1, freeze = 2 }, function(tr)
      tr:add_callback(
        "on_train_start",
        function(x) before = x.model:state_dict()["model.1.conv.weight"]:clone():keep() end
      )
    end)
    local after = t.model:state_dict()["model.1.conv.weight"]
    assert.are.equal(0, (after - before):abs():max():item())
    assert.is_false(after.requires_grad)
    assert.is_true(t.model:state_dict()["model.2.cv1.conv.weight"].requires_grad)
  end)

  it("set_callback replaces and clear_callback removes", function()
    local calls = {}
    run({ epochs = 1 }, function(tr)
      tr:add_callback("on_train_end", function() calls[#calls + 1] = "a" end)
      tr:set_callback("on_train_end", function() calls[#calls + 1] = "b" end)
      tr:add_callback("on_train_start", function() calls[#calls + 1] = "x" end)
      tr:clear_callback("on_train_start")
    end)
    assert.are.same({ "b" }, calls)
  end)

  it("accepts Ultralytics' spellings: DetectionTrainer, train(), Detection_Trainer(cfg, overrides)", function()
    assert.are.equal(detect.Detection_Trainer, detect.DetectionTrainer)
    local dir = helpers.tmpdir()
    local T = make_trainer_class({ nb = 1 })
    local t = T(nil, {
      model = tiny_yaml(dir),
      data = "fake",
      epochs = 1,
      imgsz = 32,
      batch = 2,
      project = dir,
      name = "alias",
      plots = false,
      verbose = false,
    })
    t:train()
    assert.are.equal(0, t.epoch)
    local tasks = require("yolotrain.nn.tasks")
    local m = tasks.DetectionModel(tiny_yaml(dir), { nc = 80 })
    assert.is_not_nil(m:init_criterion())
  end)
end)

describe("Detection_Trainer on a dataset", function()
  local data_dir = helpers.coco_subset(8)

  local function train(dir, plots)
    local t = detect.Detection_Trainer {
      overrides = {
        model = tiny_yaml(dir),
        data = data_dir,
        epochs = 1,
        imgsz = 32,
        batch = 4,
        workers = 0,
        val = false,
        project = dir,
        name = "run",
        plots = plots,
        verbose = false,
      },
    }
    t:train()
    return t
  end

  it("plots=true writes labels.jpg and labels_correlogram.jpg from the training labels", function()
    local dir = helpers.tmpdir()
    local seen
    local plotting = require("yolotrain.utils.plotting")
    local plot_labels = plotting.plot_labels
    plotting.plot_labels = function(boxes, cls, ...) -- what the trainer hands over
      seen = { boxes = boxes:shape(), cls = cls:shape() }
      return plot_labels(boxes, cls, ...)
    end
    local ok, t = pcall(train, dir, true)
    plotting.plot_labels = plot_labels
    assert(ok, t)
    -- the 8 images hold 54 boxes (the validator spec's table says so too)
    assert.are.same({ 54, 4 }, seen.boxes)
    assert.are.same({ 54, 1 }, seen.cls)
    local labels = yt.data.load_image(t.save_dir .. "/labels.jpg")
    assert.are.same({ 1600, 1600, 3 }, labels:shape())
    local correlogram = yt.data.load_image(t.save_dir .. "/labels_correlogram.jpg")
    assert.are.same({ 2000, 2000, 3 }, correlogram:shape())
    assert.is_not_nil(t.plots[t.save_dir .. "/labels.jpg"], "labels.jpg registered through on_plot")
  end)

  it("plots=false writes neither", function()
    local dir = helpers.tmpdir()
    local t = train(dir, false)
    assert.is_not_nil(yt.sys.stat(t.save_dir .. "/results.csv"), "the run ran")
    assert.is_nil(yt.sys.stat(t.save_dir .. "/labels.jpg"))
    assert.is_nil(yt.sys.stat(t.save_dir .. "/labels_correlogram.jpg"))
  end)
end)
