-- Data-parallel training through the stock trainer: 2 ranks x batch 8 and 1 process x batch 16 from the same seed
-- end with the same weights (synchronised BatchNorm; the loss is normalised over the whole batch on every rank),
-- and only rank 0 writes TensorBoard's event file; a rank that dies or hangs ends the job in bounded time, and SIGTERM
-- to one rank stops every rank at the same step.
local yt = require("yolotrain.core")
local helpers = require("helpers")

local function mpi_ok() return yt.dist and yt.dist.available and helpers.run("command -v mpirun") end

-- it() for a case that needs MPI: pending where the build has none
local function it_with_mpi(name, fn)
  it(name, function()
    if not mpi_ok() then
      pending("built without MPI")
      return
    end
    fn()
  end)
end

describe("Detection_Trainer under 2 ranks", function()
  it_with_mpi("matches one process with the whole batch after 5 optimizer steps", function()
    local coco = helpers.datasets_dir .. "/coco128"
    local dir = helpers.tmpdir()
    -- amp=false: float32 sums in another order (the ranks' reductions) differ in the last bits, and bf16 rounding
    -- turns such differences into bf16-sized ones (measured with amp=true: 0.2 relative on model.0.bn.bias after
    -- 5 steps, against 4e-5 in float32), so the comparison is of float32 training
    local common = string.format(
      "detect train data='%s' model=yolov8n.yaml epochs=1 imgsz=64 nbs=16 amp=false "
        .. "fraction=0.625 workers=1 val=false plots=false sync_bn=true seed=3 optimizer=SGD save_period=1 project='%s'",
      coco,
      dir
    )
    local ok1, _, out1 = helpers.run(
      string.format("cd '%s' && OMP_NUM_THREADS=1 '%s' %s batch=16 name=one", dir, helpers.yolotrain, common)
    )
    assert(ok1, out1)
    local ok2, _, out2 = helpers.run(
      string.format(
        "cd '%s' && OMP_NUM_THREADS=1 timeout 600 '%s' %s batch=16 " .. "ranks=2 name=two",
        dir,
        helpers.yolotrain,
        common
      )
    )
    assert(ok2, out2)
    -- TensorBoard logs on rank 0 only: one event file, one start line
    for _, run in ipairs({ "one", "two" }) do
      local events = 0
      for _, f in ipairs(yt.sys.listdir(dir .. "/" .. run)) do
        if f:match("^events%.out%.tfevents%.") then events = events + 1 end
      end
      assert.are.equal(1, events, run)
    end
    -- (under mpirun a rank's stdout is a terminal: the prefix is coloured)
    local _, starts = out2:gsub("Start with 'tensorboard %-%-logdir", "")
    assert.are.equal(1, starts, out2)
    -- the epoch checkpoint keeps the raw fp32 training weights (the finished run's last is stripped to F16)
    local a = yt.io.load_safetensors(dir .. "/one/weights/epoch0.safetensors")
    local b = yt.io.load_safetensors(dir .. "/two/weights/epoch0.safetensors")
    local worst, worst_name, n = 0, "", 0
    for name, ta in pairs(a) do
      if name:match("^train_model%.") and ta:dtype() == "float32" then
        local tb = b[name]
        local scale = math.max(ta:abs():max():item(), 1e-6)
        local d = (ta - tb):abs():max():item() / scale
        if d > worst then
          worst, worst_name = d, name
        end
        n = n + 1
      end
    end
    assert.is_true(n > 200)
    print(
      string.format("\n  2 ranks vs 1 process after 5 steps: worst max|diff|/max|w| = %.3g (%s)", worst, worst_name)
    )
    assert(worst < 5e-4, string.format("%s differs by %.3g (relative)", worst_name, worst))
  end)

  it_with_mpi("applies a live change made on rank 0 on every rank at the same step", function()
    local coco = helpers.datasets_dir .. "/coco128"
    local dir = helpers.tmpdir()
    -- rank 0 alone asks for the change (as attach does); every rank logs the lr its optimizer steps with
    helpers.write_file(
      dir .. "/recipe.lua",
      [==[
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local t = detect.Detection_Trainer{ overrides = cfg.recipe_overrides({}, arg) }
local log
t:add_callback("on_train_batch_end", function(tr)
  log = log or assert(io.open(string.format("%s/lr_rank%d.txt", tr.args.project, math.max(tr.rank, 0)), "w"))
  log:write(string.format("%d %.17g\n", tr.ni, tr.optimizer:get_group(2).lr))
  log:flush()
  if tr.rank <= 0 and tr.ni == 1 then tr:set{ lr0 = 0.02 } end
end)
t:train()
]==]
    )
    local ok, _, out = helpers.run(
      string.format(
        "cd '%s' && OMP_NUM_THREADS=1 timeout 600 '%s' recipe.lua data='%s' model=yolov8n.yaml epochs=2 "
          .. "imgsz=64 batch=16 nbs=16 fraction=0.25 workers=1 val=false plots=false optimizer=SGD "
          .. "warmup_epochs=0 project='%s' name=live ranks=2",
        dir,
        helpers.yolotrain,
        coco,
        dir
      )
    )
    assert(ok, out)
    local function steps(rank)
      local list = {}
      for line in helpers.read_file(string.format("%s/lr_rank%d.txt", dir, rank)):gmatch("[^\n]+") do
        local ni, lr = line:match("^(%d+) (%S+)$")
        list[#list + 1] = { ni = tonumber(ni), lr = tonumber(lr) }
      end
      return list
    end
    local r0, r1 = steps(0), steps(1)
    assert.is_true(#r0 >= 4, "only " .. #r0 .. " steps")
    assert.are.same(r0, r1) -- the same lr at every step on both ranks
    -- before the change lr0 = 0.01, after it 0.02 (the same schedule point: twice the lr)
    local before, after
    for _, r in ipairs(r0) do
      if r.ni <= 1 then
        before = r.lr
      elseif not after then
        after = r.lr
      end
    end
    assert.is_true(before > 0 and before <= 0.01 + 1e-12, tostring(before))
    assert.is_true(after > 0.01, string.format("the step after the change ran with lr %.6g", after))
  end)

  -- Runs the stock trainer on 2 ranks (3 epochs of 2 batches) where rank 1 sends itself `signal` at epoch 2,
  -- batch 1 (a kill, a hang or a SIGTERM); returns the run's ok, exit code, output, seconds taken and run folder.
  local function signal_rank1(signal, name)
    local coco = helpers.datasets_dir .. "/coco128"
    local dir = helpers.tmpdir()
    helpers.write_file(
      dir .. "/recipe.lua",
      string.format(
        [==[
local yt = require("yolotrain")
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local t = detect.Detection_Trainer{ overrides = cfg.recipe_overrides({}, arg) }
t:add_callback("on_train_batch_end", function(tr)
  if tr.rank == 1 and tr.epoch == 1 and tr.ni == 2 then os.execute("kill -%s " .. yt.sys.getpid()) end
end)
t:train()
]==],
        signal
      )
    )
    local t0 = yt.machine.now()
    local ok, rc, out = helpers.run(
      string.format(
        "cd '%s' && OMP_NUM_THREADS=1 YT_DIST_TIMEOUT=20 timeout 300 '%s' recipe.lua data='%s' model=yolov8n.yaml "
          .. "epochs=3 imgsz=64 batch=16 nbs=16 fraction=0.25 workers=1 val=false plots=false project='%s' "
          .. "name=%s ranks=2",
        dir,
        helpers.yolotrain,
        coco,
        dir,
        name
      )
    )
    return ok, rc, out, yt.machine.now() - t0, dir .. "/" .. name
  end

  -- rank 1 is sent `signal` in epoch 2; the job must end in bounded time and resume=true finish it with 1 rank
  local function broken_rank_then_resume(signal, name)
    local ok, _, out, elapsed, run = signal_rank1(signal, name)
    assert.is_false(ok, out)
    assert(elapsed < 120, string.format("the job took %.0f s to end", elapsed))
    local last = run .. "/weights/last.safetensors"
    local _, meta = yt.io.load_safetensors(last)
    assert.are.equal("0", meta.epoch)
    local ok2, _, out2 =
      helpers.run(string.format("cd '%s/..' && '%s' detect train resume='%s' ranks=1", run, helpers.yolotrain, last))
    assert(ok2, out2)
    assert.matches("Resuming training", out2, 1, true)
    assert.matches("Optimizer stripped from", out2, 1, true)
    local _, meta2 = yt.io.load_safetensors(last)
    assert.are.equal("-1", meta2.epoch, "the finished run's last is stripped")
    return out
  end

  it_with_mpi(
    "ends in bounded time when a rank dies mid-epoch, and resume=true finishes it with 1 rank",
    function() broken_rank_then_resume("9", "killed") end
  )

  it_with_mpi(
    "ends in bounded time when a rank hangs (SIGSTOP), naming the operation waited on; resume works",
    function()
      local out = broken_rank_then_resume("STOP", "hung")
      assert.matches("YT_DIST_TIMEOUT", out, 1, true)
      assert.matches("rank 0", out, 1, true)
    end
  )

  it_with_mpi("stops every rank at the same step when SIGTERM reaches one of them: last saved, exit 143", function()
    local ok, rc, out, elapsed, run = signal_rank1("TERM", "term")
    assert.is_false(ok, out)
    assert.are.equal(143, rc, out)
    assert(elapsed < 60, string.format("the job took %.0f s to end: a rank waited for the other", elapsed))
    local last = run .. "/weights/last.safetensors"
    -- rank 0 was not signalled: it stopped because rank 1 was, at the same step (epoch 2, batch 1 of 2)
    assert.matches("Stopped by SIGTERM at epoch 2/3, batch 1/2; last saved to " .. last, out, 1, true)
    assert.is_nil(out:find("this rank failed", 1, true), out)
    local _, meta = yt.io.load_safetensors(last)
    assert.are.equal("1", meta.epoch)
  end)
end)
