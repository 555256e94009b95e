-- Chaos resume: a small training is killed with SIGKILL at chosen points (during a step, inside the last and the
-- best checkpoint writes, inside the label-cache write, during validation, inside the results.csv write, while
-- plotting, inside the final strip) and resumed until it finishes. Every file of the run directory must stay loadable and the final weights must be bitwise those of the
-- uninterrupted run. YT_CHAOS_LONG=1 adds 20 kills at random moments (outside CI: minutes).
local helpers = require("helpers")
local yt = require("yolotrain.core")

local COCO = helpers.datasets_dir .. "/coco128"
local N_IMAGES = 24

-- A writable copy of part of coco128 (images linked, labels copied), so a label cache can be written.
local function small_dataset(dir)
  for _, split in ipairs({ "train2017", "val2017" }) do
    os.execute(string.format("mkdir -p '%s/images/%s' '%s/labels/%s'", dir, split, dir, split))
    local names = {}
    for _, name in ipairs(yt.sys.listdir(COCO .. "/images/" .. split)) do
      names[#names + 1] = name
    end
    table.sort(names)
    for i = 1, N_IMAGES do
      local stem = names[i]:gsub("%.jpg$", "")
      os.execute(
        string.format(
          "ln -s '%s/images/%s/%s' '%s/images/%s/%s'",
          yt.sys.realpath(COCO),
          split,
          names[i],
          dir,
          split,
          names[i]
        )
      )
      local label = helpers.read_file(string.format("%s/labels/%s/%s.txt", COCO, split, stem))
      if label then helpers.write_file(string.format("%s/labels/%s/%s.txt", dir, split, stem), label) end
    end
  end
  local yaml = helpers.read_file(COCO .. "/data.yaml")
  helpers.write_file(dir .. "/data.yaml", yaml)
  return dir .. "/data.yaml"
end

-- The recipe kills itself at a step or a validation batch named by YT_CHAOS_AT ("train:E:I" / "val:E"); the
-- checkpoint, cache and results.csv points are the YT_CHAOS_KILL hook of src/io/durable.c.
local RECIPE = [==[
local yt = require("yolotrain")
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local t = detect.Detection_Trainer{ overrides = cfg.recipe_overrides({}, arg) }
local at = os.getenv("YT_CHAOS_AT") or ""
local kind, e, i = at:match("^(%a+):(%d+):?(%d*)$")
local function die() os.execute("kill -9 " .. yt.sys.getpid()) end
t:add_callback("on_train_batch_end", function(tr)
  if kind == "train" and tr.epoch == tonumber(e) and tr.ni == tonumber(i) then die() end
end)
t:add_callback("on_val_batch_end", function(v)
  local tr = v.trainer or t
  if kind == "val" and tr.epoch == tonumber(e) then die() end
end)
t:train()
]==]

local function train_args(data, project, name, extra)
  return string.format(
    "data='%s' model=yolov8n.yaml epochs=3 imgsz=64 batch=8 nbs=8 workers=1 plots=false "
      .. "project='%s' name=%s exist_ok=true %s",
    data,
    project,
    name,
    extra or ""
  )
end

local function run(dir, env, words)
  return helpers.run(
    string.format(
      "cd '%s' && OMP_NUM_THREADS=1 %s timeout 600 '%s' recipe.lua %s",
      dir,
      env or "",
      helpers.yolotrain,
      words
    )
  )
end

-- Every file of a run directory loads (weights, plots, args.yaml, results.csv); no temporary is left once the
-- run is finished, and the finished run's best and last are stripped.
local function assert_run_dir_loadable(save_dir)
  for _, name in ipairs(yt.sys.listdir(save_dir .. "/weights")) do
    assert.is_nil(name:find(".tmp.", 1, true), "temporary left: " .. name)
    local ok, tensors, meta = pcall(yt.io.load_safetensors, save_dir .. "/weights/" .. name)
    assert(ok, tensors)
    if name == "last.safetensors" or name == "best.safetensors" then
      assert.are.equal("-1", meta.epoch, name .. " of a finished run is not stripped")
    end
  end
  for _, name in ipairs(yt.sys.listdir(save_dir)) do
    assert.is_nil(name:find(".tmp.", 1, true), "temporary left: " .. name)
    if name:match("%.jpg$") or name:match("%.png$") then
      local ok, img = pcall(yt.data.load_image, save_dir .. "/" .. name)
      assert(ok, img)
      assert.is_true(img:size(1) > 0 and img:size(2) > 0, name)
    end
  end
  local args = yt.io.load_yaml(save_dir .. "/args.yaml")
  assert.are.equal(3, args.epochs)
  local csv = helpers.read_file(save_dir .. "/results.csv")
  local lines, width = 0, nil
  for line in csv:gmatch("[^\n]+") do
    local n = select(2, line:gsub(",", ",")) + 1
    width = width or n
    assert.are.equal(width, n, "results.csv row of another width: " .. line)
    lines = lines + 1
  end
  assert.are.equal(4, lines, "results.csv: a header and one row per epoch")
end

local function assert_same_weights(a_path, b_path)
  local a, b = yt.io.load_safetensors(a_path), yt.io.load_safetensors(b_path)
  local n = 0
  for name, ta in pairs(a) do
    if name:match("^model%.") or name:match("^train_model%.") then
      assert.is_not_nil(b[name], name)
      local d = (ta:float() - b[name]:float()):abs():max():item()
      assert.are.equal(0, d, name .. " differs by " .. d)
      n = n + 1
    end
  end
  assert.is_true(n > 300, "compared " .. n .. " tensors")
end

-- Kills a run at point p, then resumes it (as often as it takes) until it finishes; returns the run directory.
-- A kill inside the final strip leaves a finished run: resume then completes the strip and says there is nothing
-- left to train.
local function killed_and_resumed(dir, data, name, p)
  local ok, rc, out = run(dir, p[2], train_args(data, dir, name, p.extra))
  assert.is_false(ok, name .. ": the kill point was never reached\n" .. out)
  assert.are.equal(137, rc, out) -- SIGKILL, not an error
  local last = dir .. "/" .. name .. "/weights/last.safetensors"
  if p.before_checkpoint then
    -- killed before any checkpoint exists: the user starts the same training again
    assert.is_nil(io.open(last, "rb"), name .. ": a checkpoint exists")
    local rok, _, rout = run(dir, nil, train_args(data, dir, name, p.extra))
    assert(rok, rout)
    return dir .. "/" .. name
  end
  for attempt = 1, 3 do
    local rok, _, rout = run(dir, nil, "resume='" .. last .. "'")
    if rok then return dir .. "/" .. name end
    if p.finished then
      assert(rout:find("nothing to resume", 1, true), name .. ": resume of the finished run\n" .. rout)
      return dir .. "/" .. name
    end
    assert(attempt < 3, name .. ": resume failed\n" .. rout)
  end
end

describe("chaos resume", function()
  local dir = helpers.tmpdir()
  helpers.write_file(dir .. "/recipe.lua", RECIPE)
  local data = small_dataset(dir .. "/ds")
  local reference

  it("runs the uninterrupted reference", function()
    os.execute(string.format("rm -f '%s'/ds/labels/*.yt.cache", dir))
    local ok, _, out = run(dir, nil, train_args(data, dir, "reference"))
    assert(ok, out)
    reference = dir .. "/reference/weights/last.safetensors"
    assert_run_dir_loadable(dir .. "/reference")
  end)

  local points = {
    { "during a training step", "YT_CHAOS_AT=train:1:5" },
    { "inside the last checkpoint write", "YT_CHAOS_KILL=last.safetensors:2" },
    { "inside the best checkpoint write", "YT_CHAOS_KILL=best.safetensors:1" },
    { "inside the label-cache write", "YT_CHAOS_KILL=.yt.cache:1", fresh_cache = true },
    { "during validation", "YT_CHAOS_AT=val:1" },
    { "inside the results.csv write", "YT_CHAOS_KILL=results.csv:2" },
    {
      "while plotting training samples",
      "YT_CHAOS_KILL=train_batch1.jpg:1",
      extra = "plots=true",
      before_checkpoint = true,
    },
    -- last is written once per epoch, then a 4th time by the strip
    { "inside the final strip", "YT_CHAOS_KILL=last.safetensors:4", finished = true },
  }
  for k, p in ipairs(points) do
    it("resumes to bitwise the same weights after a kill " .. p[1], function()
      assert(reference, "the reference run failed")
      if p.fresh_cache then os.execute(string.format("rm -f '%s'/ds/labels/*.yt.cache", dir)) end
      local name = "point" .. k
      local save_dir
      if p.fresh_cache then
        -- killed before any checkpoint exists: the user starts again; the half-written cache must not be trusted
        local ok, rc, out = run(dir, p[2], train_args(data, dir, name))
        assert.is_false(ok, out)
        assert.are.equal(137, rc, out)
        local rok, _, rout = run(dir, nil, train_args(data, dir, name))
        assert(rok, rout)
        save_dir = dir .. "/" .. name
      else
        save_dir = killed_and_resumed(dir, data, name, p)
      end
      assert_run_dir_loadable(save_dir)
      assert_same_weights(reference, save_dir .. "/weights/last.safetensors")
    end)
  end

  if os.getenv("YT_CHAOS_LONG") == "1" then
    it("survives 20 kills at random moments", function()
      math.randomseed(os.time())
      for k = 1, 20 do
        local name = "random" .. k
        local delay = 2 + math.random() * 25
        local ok = helpers.run(
          string.format(
            "cd '%s' && OMP_NUM_THREADS=1 timeout -s KILL %.1f '%s' recipe.lua %s",
            dir,
            delay,
            helpers.yolotrain,
            train_args(data, dir, name)
          )
        )
        local last = dir .. "/" .. name .. "/weights/last.safetensors"
        if not ok then
          if io.open(last, "rb") then
            local rok, _, rout = run(dir, nil, "resume='" .. last .. "'")
            assert(rok or rout:find("nothing to resume", 1, true), rout)
          else
            local rok, _, rout = run(dir, nil, train_args(data, dir, name))
            assert(rok, rout)
          end
        end
        assert_run_dir_loadable(dir .. "/" .. name)
        assert_same_weights(reference, last)
      end
    end)
  end
end)
