-- Distributed data-parallel training over MPI (docs/distributed.md).
--
--   mpirun -np 2 yolotrain recipe.lua            every rank runs the recipe; the trainer finds its rank in
--                                                 OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE and calls init()
--   yolotrain detect train ... ranks=2            relaunch(): the same command line under mpirun
--
--   local dist = require("yolotrain.engine.distributed")
--   dist.available()                -> true when yolotrain was built with OpenMPI
--   dist.relaunch(trainer, ranks)   runs this process's command line under `mpirun -np ranks`, waits, returns
--                                   the last row of results.csv (raises when the job fails)
--   local d = dist.init(trainer)    MPI up, ranks checked; the trainer keeps d as trainer.dist
--   d:setup_model(trainer)          after the model is built/loaded: synchronised BN when args.sync_bn, then rank
--                                   0's parameters and buffers broadcast to every rank
--   d:allreduce_grads(trainer)      after each backward: average the gradients of trainer.trainable_params
--   d:broadcast_stop(flag)          at each epoch end: true on every rank when any rank wants to stop
--   d:broadcast_string(s)           rank 0's string (e.g. the run directory)
--   d:allreduce_max(list)           elementwise max of numbers over the ranks (stop flags, queued live changes)
--   d:in_sync(tensors)              true when the tensors are bitwise equal on every rank
--   d:finish(ok, err)               ok: wait for every rank, allow a clean MPI exit; not ok: print err with the
--                                   rank and abort the whole job (MPI_Abort) so no rank is left waiting
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local errors = require("yolotrain.utils.errors")

local M = {}

M.DEFAULT_BUCKET_MB = 32

function M.available() return yt.dist.available == true end

local function unavailable_error(level)
  error(yt.dist.unavailable_reason or "distributed training is not available", level or 0)
end

local function shell_quote(s)
  s = tostring(s)
  if s:match("^[%w%./_:=,+%-@%%]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

local function split_words(s)
  local out = {}
  for w in (s or ""):gmatch("%S+") do
    out[#out + 1] = w
  end
  return out
end

-- The command line of this process: { executable, args... } from the global `arg` (as the yolotrain executable
-- and the lua interpreter set it: arg[0] the recipe or the program, negative indices the program and options).
function M.command_line(argt)
  argt = argt or rawget(_G, "arg")
  if type(argt) ~= "table" or argt[0] == nil then
    error("ranks=N: cannot find this process's command line (global `arg`): launch with mpirun instead", 0)
  end
  local lo, hi = 0, 0
  while argt[lo - 1] ~= nil do
    lo = lo - 1
  end
  while argt[hi + 1] ~= nil do
    hi = hi + 1
  end
  local words = {}
  for i = lo, hi do
    words[#words + 1] = tostring(argt[i])
  end
  -- the program: its real path, so mpirun finds it whatever the PATH of the ranks
  local exe = yt.sys and yt.sys.realpath and yt.sys.realpath("/proc/self/exe")
  if exe then words[1] = exe end
  local n_script = 0
  for i = 2, #words do
    local w = words[i]
    if w == "-" then
      error("ranks=N: a recipe read from standard input cannot be re-launched under mpirun; save it to a file", 0)
    elseif w == "-i" then
      error("ranks=N: interactive sessions (-i) cannot be re-launched under mpirun: run the recipe without -i", 0)
    end
    n_script = n_script + 1
  end
  if n_script == 0 then
    error(
      "ranks=N from the REPL: the REPL cannot be re-launched under mpirun; put the training in a recipe "
        .. "(yolotrain recipe.lua) or use `yolotrain detect train ... ranks=N`",
      0
    )
  end
  return words
end

-- The mpirun command for ranks processes running words. Environment knobs (docs/distributed.md):
--   YT_MPIRUN        the launcher (default mpirun)          YT_MPI_HOSTFILE  --hostfile for several machines
--   YT_MPIRUN_ARGS   extra launcher options (split on spaces)
function M.mpirun_command(ranks, words, env)
  env = env or os.getenv
  local parts = {}
  local function add(...)
    for _, w in ipairs({ ... }) do
      parts[#parts + 1] = shell_quote(w)
    end
  end
  -- OpenMPI refuses to run as root without these (containers, CI)
  parts[#parts + 1] = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  -- threads per rank: M.init divides the cores of a machine among its ranks unless OMP_NUM_THREADS is set
  add(env("YT_MPIRUN") or "mpirun", "-np", tostring(ranks), "--oversubscribe")
  -- OpenMPI binds each rank to one core by default for np <= 2, which would serialise a rank's threads
  add("--bind-to", "none")
  local hostfile = env("YT_MPI_HOSTFILE")
  if hostfile and hostfile ~= "" then add("--hostfile", hostfile) end
  -- remote ranks get only what -x forwards
  for _, v in ipairs({
    "OMP_NUM_THREADS",
    "YOLOTRAIN_LUA_PATH",
    "YT_DIST_TIMEOUT",
    "YT_DIST_BUCKET_MB",
    "LUA_PATH",
    "LUA_CPATH",
  }) do
    if env(v) then add("-x", v) end
  end
  for _, w in ipairs(split_words(env("YT_MPIRUN_ARGS"))) do
    add(w)
  end
  for _, w in ipairs(words) do
    add(w)
  end
  return table.concat(parts, " ")
end

-- The parent's run directory exists (the trainer made it before train() was called); when it holds only what
-- the constructor wrote, remove it so rank 0 of the job creates the same name instead of "<name>2".
local function release_run_dir(trainer)
  local dir = trainer.save_dir
  if not dir or not (yt.sys and yt.sys.listdir) or trainer.args.resume then return end
  local entries = yt.sys.listdir(dir)
  if not entries then return end
  for _, e in ipairs(entries) do
    if e ~= "args.yaml" and e ~= "weights" then return end
  end
  local wdir = dir .. "/weights"
  local w = yt.sys.listdir(wdir)
  if w and #w > 0 then return end
  os.remove(dir .. "/args.yaml")
  if w then os.remove(wdir) end
  os.remove(dir)
end

local function last_results_row(csv)
  local f = csv and io.open(csv, "r")
  if not f then return nil end
  local header, last
  for line in f:lines() do
    if not header then
      header = line
    else
      last = line
    end
  end
  f:close()
  if not header or not last then return nil end
  local keys, row, i = {}, {}, 0
  for k in (header .. ","):gmatch("([^,]*),") do
    keys[#keys + 1] = k
  end
  for v in (last .. ","):gmatch("([^,]*),") do
    i = i + 1
    if keys[i] and keys[i] ~= "epoch" then row[keys[i]] = tonumber(v) end
  end
  return row
end

-- Re-runs this process's command line under mpirun with `ranks` processes and waits for it.
function M.relaunch(trainer, ranks)
  ranks = math.tointeger(ranks) or error(string.format("ranks=%s must be an integer", tostring(ranks)), 0)
  if ranks < 1 then error(string.format("ranks=%d must be >= 1", ranks), 0) end
  if not M.available() then unavailable_error() end
  local words = M.command_line()
  local launcher = os.getenv("YT_MPIRUN") or "mpirun"
  if not os.execute("command -v " .. shell_quote(launcher) .. " >/dev/null 2>&1") then
    error(
      string.format(
        "ranks=%d: '%s' not found: install OpenMPI (Debian: apt-get install openmpi-bin) or set " .. "YT_MPIRUN",
        ranks,
        launcher
      ),
      0
    )
  end
  local cmd = M.mpirun_command(ranks, words)
  release_run_dir(trainer)
  io.stdout:write(string.format("DDP: launching %d ranks: %s\n", ranks, cmd))
  io.stdout:flush()
  local ok, how, code = os.execute(cmd)
  if not ok and how == "exit" then
    -- the ranks stopped at a signal or stop() and saved last: exit as they did (errors.STOPS), not as a failure
    for _, stop in pairs(errors.STOPS) do
      if code == stop.exit_status then
        error(
          errors.report(
            string.format(
              "DDP: the %d ranks stopped (exit status %d) where rank 0's line above " .. "says; last is %s",
              ranks,
              code,
              tostring(trainer.last)
            ),
            code
          ),
          0
        )
      end
    end
  end
  if not ok then
    error(
      string.format(
        "distributed training with %d ranks failed (mpirun %s %s); the messages above name the "
          .. "rank and the cause; the last checkpoint (%s) is intact",
        ranks,
        tostring(how),
        tostring(code),
        tostring(trainer.last)
      ),
      0
    )
  end
  trainer.metrics = last_results_row(trainer.csv) or trainer.metrics
  return trainer.metrics
end

-- ---- in a rank ----

local Dist = class.Object:extend("Dist")
M.Dist = Dist

function M.init(trainer)
  if not M.available() then unavailable_error() end
  local rank, size = yt.dist.init()
  if trainer and trainer.world_size and trainer.world_size > 1 then
    if size ~= trainer.world_size or rank ~= trainer.rank then
      yt.dist.abort(
        string.format(
          "the environment says rank %s of %s but MPI says rank %d of %d: launch with "
            .. "OpenMPI's mpirun (or ranks=N)",
          tostring(trainer.rank),
          tostring(trainer.world_size),
          rank,
          size
        )
      )
    end
  end
  -- one machine shared by its ranks: do not let each rank start a thread per core
  local local_size = tonumber(os.getenv("OMPI_COMM_WORLD_LOCAL_SIZE") or "")
  if local_size and local_size > 1 and not os.getenv("OMP_NUM_THREADS") and yt.sys and yt.sys.set_num_threads then
    yt.sys.set_num_threads(math.max(1, yt.sys.nproc() // local_size))
  end
  return Dist(rank, size)
end

function Dist:init(rank, size)
  self.rank, self.world_size = rank, size
  self.bucket_mb = tonumber(os.getenv("YT_DIST_BUCKET_MB") or "") or M.DEFAULT_BUCKET_MB
  self.weights_synced = false
  self.comm_time, self.comm_calls = 0, 0
end

-- Replaces the forward of every BatchNorm2d in training mode by the synchronised one (eval mode unchanged).
function Dist:convert_sync_bn(model)
  local modules = require("yolotrain.nn.modules")
  local n = 0
  for m in model:modules() do
    if class.is_instance(m, modules.BatchNorm2d) and not m._sync_bn then
      local plain = m.forward
      m._sync_bn = true
      m.forward = function(bn, x)
        if not bn.training then return plain(bn, x) end
        local t = bn.num_batches_tracked
        t:set(t:item() + 1)
        return yt.dist.sync_batch_norm(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps)
      end
      n = n + 1
    end
  end
  return n
end

-- Every parameter and buffer, in state-dict order.
local function model_tensors(model)
  local ts = {}
  for _, e in ipairs(model:state_dict_list()) do
    ts[#ts + 1] = e[2]
  end
  return ts
end

function Dist:broadcast_model(model, root)
  yt.dist.broadcast(model_tensors(model), root or 0)
  self.weights_synced = true
end

-- The hook after the model is built or loaded (before the optimizer and the EMA are made from it).
function Dist:setup_model(trainer)
  local model = trainer.model
  if trainer.args and trainer.args.sync_bn then
    local n = self:convert_sync_bn(model)
    if self.rank == 0 then io.stdout:write(string.format("DDP: synchronised BatchNorm in %d layers\n", n)) end
  end
  self:broadcast_model(model)
end

function Dist:in_sync(tensors) return yt.dist.identical(tensors) end

function Dist:allreduce_grads(trainer)
  local params = trainer.trainable_params
  if not params then error("allreduce_grads: trainer.trainable_params is not set", 2) end
  if not self.weights_synced then
    -- the initial weights differ per rank (each rank has its own seed) unless rank 0's were broadcast
    if not yt.dist.identical(params) then
      error(
        "DDP: the model weights differ between ranks at the first gradient step: the trainer must call "
          .. "trainer.dist:setup_model(trainer) right after building the model (docs/distributed.md)",
        0
      )
    end
    self.weights_synced = true
  end
  local t0 = yt.machine.now()
  yt.dist.allreduce_grads(params, self.bucket_mb)
  self.comm_time = self.comm_time + (yt.machine.now() - t0)
  self.comm_calls = self.comm_calls + 1
end

function Dist:broadcast_stop(flag) return yt.dist.allreduce_numbers({ flag and 1 or 0 }, "max")[1] > 0 end

-- Stop reasons (Engine_Trainer:request_stop) as numbers ranks can reduce: the maximum is the strongest any rank
-- has (terminate > interrupt > user), so all ranks leave the loop at the same step with the same reason.
local STOP_ORDER = { "user", "interrupt", "terminate" }
function Dist:stop_code(reason)
  for k, r in ipairs(STOP_ORDER) do
    if r == reason then return k end
  end
  return 0
end
function Dist:stop_reason(code) return STOP_ORDER[math.tointeger(code)] end

-- Elementwise maximum of a list of numbers over the ranks (the step-boundary flags: stop code, live changes).
function Dist:allreduce_max(list) return yt.dist.allreduce_numbers(list, "max") end

function Dist:broadcast_string(s, root) return yt.dist.broadcast_string(s, root or 0) end

-- Means of numbers over the ranks (e.g. loss items for logging).
function Dist:mean_numbers(list)
  local s = yt.dist.allreduce_numbers(list, "sum")
  for i = 1, #s do
    s[i] = s[i] / self.world_size
  end
  return s
end

local function error_text(err)
  if err == nil then return "an error (no message)" end
  if type(err) == "table" then return tostring(err.message or err.msg or err[1] or "an error (table)") end
  return tostring(err)
end

-- End of training on this rank. ok: every rank reached the end (a barrier with the deadline), and the process
-- may finalize MPI at exit. Not ok: prints the error with the rank and ends the whole job now.
function Dist:finish(ok, err)
  if ok then
    local fine, e = pcall(yt.dist.barrier)
    if not fine then yt.dist.abort(error_text(e)) end
    yt.dist.set_exit_ok(true)
    return
  end
  yt.dist.abort(error_text(err) .. "\nDDP: this rank failed, stopping every rank of the job")
end

return M
