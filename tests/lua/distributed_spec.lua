-- Distributed data-parallel training over MPI (docs/distributed.md): 2 ranks on loopback with --oversubscribe.
local yt = require("yolotrain.core")
local helpers = require("helpers")
local distributed = require("yolotrain.engine.distributed")

local exe = helpers.yolotrain
local function q(s) return distributed.shell_quote(s) end
local MPIRUN = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
  .. "mpirun -np 2 --oversubscribe --bind-to none "
local have_mpirun = os.execute("command -v mpirun >/dev/null 2>&1")
local can_run = yt.dist.available and have_mpirun and io.open(exe, "rb") ~= nil

-- The worker: model + loss + optimizer without the trainer, as a rank or as one process.
-- usage: equiv.lua dist|single frozen|sync|local out.safetensors
local EQUIV = [==[
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local modules = require("yolotrain.nn.modules")
local distributed = require("yolotrain.engine.distributed")
local mode, bnmode, out = ...
local rank, world, d = 0, 1, nil
if mode == "dist" then
  d = distributed.init(nil)
  rank, world = d.rank, d.world_size
end
local cfg = { nc = 2,
  backbone = { { -1, 1, "Conv", { 8, 3, 2 } }, { -1, 1, "Conv", { 16, 3, 2 } }, { -1, 1, "C2f", { 16, true } },
    { -1, 1, "Conv", { 16, 3, 2 } }, { -1, 1, "Conv", { 16, 3, 2 } }, { -1, 1, "Conv", { 16, 3, 2 } } },
  head = { { { 3, 4, 5 }, 1, "Detect", { "nc" } } } }
yt.manual_seed(100 + rank) -- each rank initialises differently: rank 0's weights must be broadcast
local model = tasks.Detection_Model(cfg, { nc = 2 })
if d then
  if bnmode == "sync" then assert(d:convert_sync_bn(model) > 0) end
  d:broadcast_model(model)
end
model:train()
for m in model:modules() do
  if bnmode == "frozen" and m:is_instance(modules.BatchNorm2d) then m:train(false) end
end
local params = {}
for _, p in model:named_parameters() do params[#params + 1] = p end
local opt = yt.optim.new("SGD", { { params = params, lr = 0.02, momentum = 0.9, nesterov = true,
  weight_decay = 5e-4 } })
local B = 16
yt.manual_seed(7)
local x_all = yt.randn({ B, 3, 64, 64 }):keep()
local targets
for step = 1, 5 do
  yt.scope_begin()
  local outs = model(x_all:chunk(world, 1)[rank + 1])
  if not targets then
    targets = {}
    yt.manual_seed(9)
    for i, o in ipairs(outs) do
      local shape = o:shape()
      shape[1] = B
      targets[i] = yt.randn(shape):keep()
    end
  end
  local per_sample = 0
  for _, o in ipairs(outs) do per_sample = per_sample + o:numel() // o:shape(1) end
  local loss
  for i, o in ipairs(outs) do
    local l = ((o - targets[i]:chunk(world, 1)[rank + 1]) ^ 2):sum() * (0.5 / per_sample)
    loss = loss and (loss + l) or l
  end
  loss = loss * world -- the trainer's convention: local sum x world size, then gradients averaged
  loss:backward()
  if d then d:allreduce_grads({ trainable_params = params }) end
  yt.optim.clip_grad_norm(params, 10.0)
  opt:step()
  opt:zero_grad()
  yt.scope_end()
end
if d then print(string.format("rank %d PARAMS_IN_SYNC %s", rank, tostring(d:in_sync(params)))) end
if rank == 0 then yt.io.save_safetensors(out, model:state_dict_list()) end
if d then d:finish(true) end
]==]

-- A rank that raises, hangs or dies at a collective while the other waits in it.
local FAULT = [==[
local yt = require("yolotrain.core")
local distributed = require("yolotrain.engine.distributed")
local how = ...
local d = distributed.init(nil)
local ok, err = pcall(function()
  local t = yt.ones({ 1000 })
  for i = 1, 3 do
    if d.rank == 1 and i == 2 then
      if how == "raise" then error("injected failure on rank 1") end
      if how == "hang" then os.execute("sleep 60") end
      if how == "exit" then os.exit(3, false) end
    end
    yt.dist.allreduce(t, "sum")
  end
end)
d:finish(ok, err)
print("rank " .. d.rank .. " finished")
]==]

local function max_diff(a_path, b_path)
  local a, b = yt.io.load_safetensors(a_path), yt.io.load_safetensors(b_path)
  local worst, n = 0, 0
  for name, t in pairs(a) do
    if t:dtype() == "float32" then
      local u = assert(b[name], name)
      local d = (t - u):abs():max():item()
      if d > worst then worst = d end
      n = n + 1
    end
  end
  return worst, n
end

describe("yt.dist", function()
  it("exists in every build and says whether MPI is there", function()
    assert.is_table(yt.dist)
    assert.is_boolean(yt.dist.available)
    if not yt.dist.available then
      local ok, err = pcall(yt.dist.init)
      assert.is_false(ok)
      assert.matches("built without MPI", err)
      assert.is_false(yt.dist.initialized())
    end
  end)

  it("asks for mpirun only when ranks > 1 is possible", function()
    if yt.dist.available then return end
    local fake = { args = { resume = false }, save_dir = nil }
    local ok, err = pcall(distributed.relaunch, fake, 2)
    assert.is_false(ok)
    assert.matches("built without MPI", err)
  end)
end)

describe("distributed.relaunch", function()
  it("rebuilds the command line from `arg` and runs it under mpirun as root-safe", function()
    local words = distributed.command_line({ [-2] = "/x/yolotrain", [-1] = "-e", [0] = "r.lua", "a=1", "b c" })
    assert.equals(5, #words)
    assert.equals("-e", words[2])
    assert.equals("r.lua", words[3])
    assert.equals("b c", words[5])
    local env = { YT_MPI_HOSTFILE = "hosts.txt", YT_DIST_TIMEOUT = "60", YT_MPIRUN_ARGS = "--mca btl self,tcp" }
    local cmd = distributed.mpirun_command(
      3,
      { "/x/yolotrain", "detect", "train", "ranks=3" },
      function(k) return env[k] end
    )
    assert.matches("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", cmd, 1, true)
    assert.matches("mpirun -np 3 --oversubscribe", cmd, 1, true)
    assert.matches("--hostfile hosts.txt", cmd, 1, true)
    assert.matches("-x YT_DIST_TIMEOUT", cmd, 1, true)
    assert.matches("--mca btl self,tcp /x/yolotrain detect train ranks=3$", cmd)
  end)

  it("refuses what cannot be re-launched (the REPL, a recipe from stdin)", function()
    assert.has_error(function() distributed.command_line({ [0] = "/x/yolotrain" }) end)
    assert.has_error(function() distributed.command_line({ [-1] = "/x/yolotrain", [0] = "-" }) end)
  end)
end)

describe("DDP over MPI (2 ranks, loopback)", function()
  local dir
  setup(function()
    dir = helpers.tmpdir()
    helpers.write_file(dir .. "/equiv.lua", EQUIV)
    helpers.write_file(dir .. "/fault.lua", FAULT)
  end)

  local function skip_without_mpi()
    if not can_run then
      pending("needs a build with OpenMPI and mpirun (yt.dist.available=" .. tostring(yt.dist.available) .. ")")
      return true
    end
  end

  local function equiv(bn)
    local single, multi = dir .. "/single_" .. bn .. ".st", dir .. "/dist_" .. bn .. ".st"
    local ok, _, out = helpers.run(q(exe) .. " " .. q(dir .. "/equiv.lua") .. " single " .. bn .. " " .. q(single))
    assert(ok, out)
    ok, _, out = helpers.run(
      "timeout 120 " .. MPIRUN .. q(exe) .. " " .. q(dir .. "/equiv.lua") .. " dist " .. bn .. " " .. q(multi)
    )
    assert(ok, out)
    return single, multi, out
  end

  it("2 ranks x batch 8 with synchronised BN = 1 process x batch 16 after 5 SGD steps", function()
    if skip_without_mpi() then return end
    local single, multi, out = equiv("sync")
    assert.matches("rank 0 PARAMS_IN_SYNC true", out, 1, true)
    assert.matches("rank 1 PARAMS_IN_SYNC true", out, 1, true)
    local d, n = max_diff(single, multi) -- parameters and BN running statistics
    assert.is_true(n > 100)
    assert.is_true(d < 2e-6, "max |difference| " .. d)
  end)

  it("2 ranks x batch 8 with frozen BN = 1 process x batch 16 after 5 SGD steps", function()
    if skip_without_mpi() then return end
    local single, multi, out = equiv("frozen")
    assert.matches("rank 1 PARAMS_IN_SYNC true", out, 1, true)
    local d = max_diff(single, multi)
    assert.is_true(d < 2e-6, "max |difference| " .. d)
  end)

  it("per-rank BN statistics (the default) differ from the single process: the comparison can fail", function()
    if skip_without_mpi() then return end
    local single = dir .. "/single_sync.st"
    if not io.open(single, "rb") then equiv("sync") end
    local multi = dir .. "/dist_local.st"
    local ok, _, out =
      helpers.run("timeout 120 " .. MPIRUN .. q(exe) .. " " .. q(dir .. "/equiv.lua") .. " dist local " .. q(multi))
    assert(ok, out)
    assert.matches("rank 1 PARAMS_IN_SYNC true", out, 1, true)
    assert.is_true(max_diff(single, multi) > 1e-4)
  end)

  local function fault(how, env, limit)
    local t0 = yt.machine.now()
    local ok, rc, out = helpers.run(
      "timeout 120 env " .. (env or "") .. " " .. MPIRUN .. q(exe) .. " " .. q(dir .. "/fault.lua") .. " " .. how
    )
    local elapsed = yt.machine.now() - t0
    assert.is_false(ok, out)
    assert.is_true(rc ~= 124, "the job hung until timeout(1) killed it:\n" .. out)
    assert.is_true(elapsed < limit, string.format("took %.1f s:\n%s", elapsed, out))
    assert.is_nil(out:find("rank 0 finished", 1, true), out)
    return out
  end

  it("a rank raising an error ends the whole job with its message, in bounded time", function()
    if skip_without_mpi() then return end
    local out = fault("raise", nil, 30)
    assert.matches("rank 1/2 on [^\n]*injected failure on rank 1", out)
  end)

  it("a rank that hangs makes the others stop at the collective deadline (YT_DIST_TIMEOUT)", function()
    if skip_without_mpi() then return end
    local out = fault("hang", "YT_DIST_TIMEOUT=2", 40)
    assert.matches("got no answer from the other ranks within 2 s", out, 1, true)
  end)

  it("a rank that exits mid-training ends the job in bounded time", function()
    if skip_without_mpi() then return end
    fault("exit", nil, 30)
  end)
end)

describe("a custom trainer under ranks=2", function()
  it("trains with 2 ranks re-launched by ranks=2; only rank 0 writes the run directory", function()
    local coco = yt.sys.realpath(helpers.datasets_dir .. "/coco128") or (helpers.datasets_dir .. "/coco128")
    if not can_run or not io.open(coco .. "/data.yaml", "rb") then
      pending("needs OpenMPI, mpirun and " .. coco)
      return
    end
    local dir = helpers.tmpdir()
    helpers.write_file(
      dir .. "/recipe.lua",
      [==[
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local My, Base = detect.Detection_Trainer:extend("My_Trainer")
function My:set_model_attributes()
  Base.set_model_attributes(self)
  if self.dist then self.dist:setup_model(self) end -- idempotent; the engine calls it as well once wired in
end
local overrides = cfg.recipe_overrides({ model = "yolov8n.yaml", epochs = 1, imgsz = 32, batch = 16, workers = 1,
  plots = false, val = false }, arg)
local t = My{ overrides = overrides }
t:add_callback("on_train_epoch_end", function(tr)
  print(string.format("CALLBACK rank=%d world=%d", tr.rank, tr.world_size))
end)
t:train()
print("SAVE_DIR rank=" .. t.rank .. " " .. t.save_dir)
]==]
    )
    local ok, _, out = helpers.run(
      "cd "
        .. q(dir)
        .. " && OMP_NUM_THREADS=1 timeout 300 "
        .. q(exe)
        .. " recipe.lua data="
        .. q(coco)
        .. " project="
        .. q(dir .. "/runs")
        .. " name=ddp ranks=2"
    )
    assert(ok, out)
    assert.matches("CALLBACK rank=0 world=2", out, 1, true)
    assert.matches("CALLBACK rank=1 world=2", out, 1, true)
    local runs = yt.sys.listdir(dir .. "/runs")
    assert.same({ "ddp" }, runs)
    assert.is_truthy(io.open(dir .. "/runs/ddp/weights/last.safetensors", "rb"))
    assert.matches("SAVE_DIR rank=%-1 " .. dir:gsub("%p", "%%%0") .. "/runs/ddp", out)
  end)
end)
