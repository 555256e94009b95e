-- Data-parallel training speed on this machine: 2 ranks x 1 thread (MPI, batch 8 each) vs 1 process x 2 threads
-- (batch 16), YOLOv8n training steps (forward, loss, backward, gradient averaging, SGD) in images/s, and the time
-- of one allreduce of YOLOv8n's gradients (3.16M floats, bucketed as in training), both measured in this run.
-- Run: build/yolotrain bench/bench_dist.lua [imgsz=320] [batch=16] [steps=3]
-- The loss is a sum of squares over the raw head outputs (the detection loss costs the same in both set-ups).
local yt = require("yolotrain.core")
local tasks = require("yolotrain.nn.tasks")
local distributed = require("yolotrain.engine.distributed")

local opts = { imgsz = 320, batch = 16, steps = 3 }
local role
for i = 1, #(arg or {}) do
  local k, v = tostring(arg[i]):match("^(%w+)=(.*)$")
  if k == "role" then
    role = v
  elseif k then
    opts[k] = tonumber(v)
  end
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

-- One worker: trains `steps` timed steps (after a warm-up) and prints a RESULT line (rank 0).
local function worker(dist_mode)
  local d, rank, world = nil, 0, 1
  if dist_mode then
    d = distributed.init(nil)
    rank, world = d.rank, d.world_size
  end
  yt.manual_seed(0)
  local model = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
  if d then d:broadcast_model(model) end
  model:train()
  local params = {}
  for _, p in model:named_parameters() do
    if p.requires_grad then params[#params + 1] = p end
  end
  local opt = yt.optim.new("SGD", { { params = params, lr = 0.001, momentum = 0.9, nesterov = true } })
  local b = opts.batch // world
  yt.manual_seed(1 + rank)
  local images = yt.rand({ b, 3, opts.imgsz, opts.imgsz }):keep()
  local comm = 0
  local function step()
    yt.scope_begin()
    local loss
    for _, o in ipairs(model(images)) do
      local l = (o ^ 2):sum() * (1e-4 / o:shape(1))
      loss = loss and (loss + l) or l
    end
    loss:backward()
    if d then
      local t0 = yt.machine.now()
      d:allreduce_grads({ trainable_params = params })
      comm = comm + (yt.machine.now() - t0)
    end
    yt.optim.clip_grad_norm(params, 10.0)
    opt:step()
    opt:zero_grad()
    yt.scope_end()
  end
  step()
  comm = 0
  if d then yt.dist.barrier() end
  local t0 = yt.machine.now()
  for _ = 1, opts.steps do
    step()
  end
  if d then yt.dist.barrier() end
  local elapsed = yt.machine.now() - t0
  local ips = opts.steps * opts.batch / elapsed
  -- the allreduce alone: gradients of every parameter present, ranks in step
  local ar = {}
  local nfloats = 0
  if d then
    for _, p in ipairs(params) do
      if not p.grad then p.grad = yt.zeros(p:shape()) end
      nfloats = nfloats + p:numel()
    end
    for _ = 1, 10 do
      yt.dist.barrier()
      local t1 = yt.machine.now()
      yt.dist.allreduce_grads(params, d.bucket_mb)
      ar[#ar + 1] = yt.machine.now() - t1
    end
  end
  if rank == 0 then
    print(
      string.format(
        "RESULT ips=%.4f comm=%.4f allreduce=%.6f floats=%d threads=%d",
        ips,
        comm / opts.steps,
        d and median(ar) or 0,
        nfloats,
        yt.sys.get_num_threads()
      )
    )
  end
  if d then d:finish(true) end
end

if role == "single" then return worker(false) end
if role == "rank" then return worker(true) end

-- the driver
local me = debug.getinfo(1, "S").source:sub(2)
local exe = yt.sys.realpath("/proc/self/exe")
local q = distributed.shell_quote
local common = string.format("imgsz=%d batch=%d steps=%d", opts.imgsz, opts.batch, opts.steps)
local function run(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  f:close()
  local r = {}
  for k, v in (out:match("RESULT ([^\n]*)") or ""):gmatch("(%w+)=([%d%.]+)") do
    r[k] = tonumber(v)
  end
  if not r.ips then error("benchmark worker failed:\n" .. out, 0) end
  return r
end

print(
  string.format(
    "YOLOv8n training steps at imgsz %d, global batch %d, %d timed steps (after 1 warm-up)",
    opts.imgsz,
    opts.batch,
    opts.steps
  )
)
local single = run(string.format("OMP_NUM_THREADS=2 %s %s role=single %s", q(exe), q(me), common))
print(string.format("1 process x 2 threads, batch %d:     %7.2f images/s", opts.batch, single.ips))
if not yt.dist.available then
  print("2 ranks: skipped (" .. (yt.dist.unavailable_reason or "no MPI") .. ")")
  return
end
local multi = run(
  string.format(
    "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
      .. "mpirun -np 2 --oversubscribe --bind-to none %s %s role=rank %s",
    q(exe),
    q(me),
    common
  )
)
print(
  string.format(
    "2 ranks x 1 thread, batch %d each:   %7.2f images/s (gradient averaging %.1f ms per step)",
    opts.batch // 2,
    multi.ips,
    multi.comm * 1000
  )
)
print(string.format("ratio 2 ranks / 1 process:           %7.3f", multi.ips / single.ips))
print(
  string.format(
    "one allreduce of YOLOv8n's gradients (%d floats, %.1f MB, 2 ranks, buckets of %s MB): %.2f ms "
      .. "(%.2f GB/s of gradient)",
    multi.floats,
    multi.floats * 4 / 1e6,
    tostring(distributed.DEFAULT_BUCKET_MB),
    multi.allreduce * 1000,
    multi.floats * 4 / multi.allreduce / 1e9
  )
)
