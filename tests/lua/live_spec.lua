-- trainer:set{...}: live changes that are checked as on the command line, hold against the schedule, are written
-- to args.yaml's history and the checkpoints, and are replayed exactly by resume.
local yt = require("yolotrain.core")
local helpers = require("helpers")
local fake = require("fake_training")
local live = require("yolotrain.engine.live")

local function common(dir, name, extra)
  local o = fake.overrides(
    dir,
    { epochs = 2, batch = 4, name = name, nbs = 8, warmup_epochs = 1, close_mosaic = 1, optimizer = "SGD" }
  )
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end

local function err_of(fn)
  local ok, e = pcall(fn)
  assert.is_false(ok)
  return tostring(e)
end

-- The changes made after epoch 0, batch 2 (in warmup: nw = max(1 * 3, 100) steps) and epoch 1, batch 1.
local function add_changes(t)
  t:add_callback("on_train_batch_end", function(tr)
    if tr.epoch == 0 and tr.ni == 1 then
      tr:set { lr0 = 0.1 / 3, epochs = 3, momentum = 0.85, weight_decay = 0.001 }
    elseif tr.epoch == 1 and tr.ni == 3 then
      tr:set { lrf = 0.05, patience = 7, save_period = 1, close_mosaic = 2 }
    end
  end)
end

local function same_weights(path_a, path_b)
  local a, b = yt.io.load_safetensors(path_a), yt.io.load_safetensors(path_b)
  local n = 0
  for name, ta in pairs(a) do
    if name:match("^model%.") or name:match("^train_model%.") or name:match("^optimizer%.") then
      local d = (ta:float() - b[name]:float()):abs():max():item()
      assert.are.equal(0, d, name .. " differs by " .. d)
      n = n + 1
    end
  end
  assert.is_true(n > 100)
end

describe("trainer:set", function()
  local T = fake.make_trainer_class({ nb = 3 })

  it("checks each key as the command line does and refuses what cannot change live, changing nothing", function()
    local dir = helpers.tmpdir()
    local t = T { overrides = common(dir, "check") }
    assert.matches(
      "'lr' is not a valid yolotrain argument. Similar arguments are i.e. lr0=0.01",
      err_of(function() t:set { lr = 0.1 } end),
      1,
      true
    )
    assert.matches("'lr0=fast' is of invalid type string", err_of(function() t:set { lr0 = "fast" } end), 1, true)
    assert.matches(
      "'mosaic=2' is an invalid value. Valid 'mosaic' values are between 0.0 and 1.0",
      err_of(function() t:set { mosaic = 2 } end),
      1,
      true
    )
    assert.matches("'epochs=1.5' is of invalid type", err_of(function() t:set { epochs = 1.5 } end), 1, true)
    for key, reason in pairs({
      imgsz = "the data loaders, the model's strides",
      batch = "the data loaders, gradient accumulation",
      model = "the model is built",
      optimizer = "the optimizer and its state",
    }) do
      local e = err_of(function() t:set { [key] = 1 } end)
      assert.matches("'" .. key .. "' cannot change during a training: " .. reason, e, 1, true)
      assert.matches("Keys that can change live: epochs, lr0, lrf", e, 1, true)
    end
    -- one bad key: none of the others applies
    err_of(function() t:set { lr0 = 0.5, imgsz = 64 } end)
    assert.are.equal(0.01, t.args.lr0)
    t.epoch = 2
    assert.matches(
      "'epochs=2' is an invalid value: epoch 3 is running",
      err_of(function() t:set { epochs = 2 } end),
      1,
      true
    )
  end)

  it("a new lr0 rescales the schedule from the current step, and warmup does not overwrite it", function()
    local function run(name, warmup_epochs)
      local dir = helpers.tmpdir()
      local t = T { overrides = common(dir, name, { epochs = 3, warmup_epochs = warmup_epochs }) }
      local seen = {}
      t:add_callback("on_train_batch_end", function(tr)
        -- the lr the step just used; then the change, at this step boundary
        seen[#seen + 1] = { epoch = tr.epoch, ni = tr.ni, lr = tr.optimizer:get_group(2).lr }
        if tr.epoch == 0 and tr.ni == 1 then tr:set { lr0 = 0.05 } end
      end)
      t:train()
      assert.are.equal(9, #seen)
      return t, seen
    end
    -- no warmup: lr = lr0 * lf(epoch), the new lr0 from step 2 on
    local t, seen = run("sched", 0)
    for _, r in ipairs(seen) do
      local target = (r.ni > 1 and 0.05 or 0.01) * t.lf(r.epoch)
      assert.is_true(math.abs(r.lr - target) < 1e-15, string.format("step %d: %.17g vs %.17g", r.ni, r.lr, target))
    end
    assert.are.equal(0.05, t.optimizer.initial_lr[2])
    -- in warmup (nw = 100 steps): lr = ni / nw * lr0 * lf(epoch), ramping towards the new lr0
    t, seen = run("warm", 1)
    assert.are.equal(100, t.nw)
    for _, r in ipairs(seen) do
      local target = r.ni / t.nw * (r.ni > 1 and 0.05 or 0.01) * t.lf(r.epoch)
      assert.is_true(math.abs(r.lr - target) < 1e-15, string.format("step %d: %.17g vs %.17g", r.ni, r.lr, target))
    end
  end)

  it("logs each change in args.yaml's history; cfg= reads the arguments and leaves the history out", function()
    local dir = helpers.tmpdir()
    local t = T { overrides = common(dir, "hist") }
    add_changes(t)
    t:train()
    assert.are.equal(3, t.epochs)
    local args = yt.io.load_yaml(dir .. "/hist/args.yaml")
    assert.are.equal(3, args.epochs)
    assert.are.equal(0.05, args.lrf)
    local keys = {}
    for _, e in ipairs(args.history) do
      keys[#keys + 1] = e.key .. "@" .. e.epoch .. "." .. e.batch
    end
    assert.are.same({
      "epochs@1.2",
      "lr0@1.2",
      "momentum@1.2",
      "weight_decay@1.2",
      "lrf@2.1",
      "close_mosaic@2.1",
      "patience@2.1",
      "save_period@2.1",
    }, keys)
    assert.are.equal(0.937, args.history[3].old)
    assert.is_truthy(io.open(dir .. "/hist/weights/epoch1.safetensors")) -- save_period=1 from epoch 2 on
    -- cfg= leaves the history out (the arguments hold the changed values)
    local text = helpers.read_file(dir .. "/hist/args.yaml"):gsub("\nsave_dir:[^\n]*", "")
    helpers.write_file(dir .. "/again.yaml", text)
    local cfg = require("yolotrain.cfg").load_args_yaml(dir .. "/again.yaml")
    assert.are.equal(3, cfg.epochs)
    assert.is_nil(cfg.history)
  end)

  it("resume after live changes continues the same run: the same weights and results as without a stop", function()
    local dir = helpers.tmpdir()
    local full = T { overrides = common(dir, "full") }
    add_changes(full)
    full:train()

    local part = T { overrides = common(dir, "part") }
    add_changes(part)
    part:add_callback("on_fit_epoch_end", function(tr)
      if tr.epoch == 1 then tr:request_stop("user") end
    end)
    local ok, err = pcall(part.train, part) -- a stopped train() raises the stop, as Ctrl-C does
    assert.is_false(ok)
    assert.are.equal(130, err.exit_status)
    assert.are.equal("user", part.stop_reason)
    local _, meta = yt.io.load_safetensors(dir .. "/part/weights/last.safetensors")
    assert.are.equal("1", meta.epoch)
    assert.are.equal(8, #live.decode_history(meta.live_changes))

    local resumed = T { overrides = { resume = dir .. "/part/weights/last.safetensors" } }
    -- set up with the values it started with, then the history replayed
    assert.are.equal(2, resumed.epochs)
    assert.are.equal(0.01, resumed.args.lr0)
    resumed:train()
    assert.are.equal(3, resumed.epochs)
    assert.are.equal(0.1 / 3, resumed.args.lr0)
    assert.are.equal(0.1 / 3, resumed.optimizer.initial_lr[1])
    same_weights(full.last, resumed.last)
    local function rows(path)
      local out = {}
      for line in helpers.read_file(path):gmatch("[^\n]+") do
        out[#out + 1] = line
      end
      return out
    end
    assert.are.same(rows(dir .. "/full/results.csv"), rows(dir .. "/part/results.csv"))
    assert.are.equal(8, #yt.io.load_yaml(dir .. "/part/args.yaml").history)
  end)

  it("keeps values exact through the history text", function()
    for _, v in ipairs({ 0.1 / 3, 1e-300, 3, -7, 0.0, 2 ^ 60 + 0.0 }) do
      local back = live.decode(live.encode(v))
      assert.are.equal(v, back)
      assert.are.equal(math.type(v), math.type(back))
    end
    local h = { { epoch = 1, batch = 2, ni = 5, key = "lr0", value = 0.1 / 3, old = 0.01 } }
    assert.are.same(h, live.decode_history(live.encode_history(h)))
    assert.has_error(
      function() live.decode_history("1\t2\t3\timgsz\ti1\ti2", "x.safetensors") end,
      "x.safetensors: the live-change history is damaged (line '1\t2\t3\timgsz\ti1\ti2')"
    )
  end)
end)
