-- YOLOv8n speed and memory: forward and forward+backward per image at batch 16, 320 and 640, as a fraction of
-- this machine's own sgemm rate measured in the same run.
-- Run: build/yolotrain bench/bench_model.lua [batch] [sizes...]     e.g. build/yolotrain bench/bench_model.lua 16 320
local yt = require("yolotrain")
local tasks = require("yolotrain.nn.tasks")

local batch = tonumber(arg and arg[1]) or 16
local sizes = {}
for i = 2, #(arg or {}) do
  sizes[#sizes + 1] = tonumber(arg[i])
end
if #sizes == 0 then sizes = { 320, 640 } end

local sgemm = yt.machine.sgemm_gflops(1024, 2.0)
print(string.format("machine sgemm (1024^3, %s threads): %.1f GFLOP/s", os.getenv("OMP_NUM_THREADS") or "all", sgemm))

local model = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
local _, _, _, gflops640 = model:info(false)

local function timeit(reps, fn)
  fn() -- warm-up
  local best = math.huge
  for _ = 1, reps do
    local t0 = yt.machine.now()
    fn()
    best = math.min(best, yt.machine.now() - t0)
  end
  return best
end

for _, s in ipairs(sizes) do
  local fwd_flops = gflops640 * (s / 640) ^ 2 -- per image, Ultralytics' counting
  local images = yt.rand({ batch, 3, s, s }):keep()
  model:train()
  local t_fwd = timeit(3, function()
    yt.scope_begin()
    yt.set_grad_enabled(false)
    model(images)
    yt.set_grad_enabled(true)
    yt.scope_end()
  end)
  local t_step = timeit(3, function()
    yt.scope_begin()
    local outs = model(images)
    local loss = outs[1]:sum() + outs[2]:sum() + outs[3]:sum()
    loss:backward()
    yt.scope_end()
  end)
  local fwd_rate = fwd_flops * batch / t_fwd
  local step_rate = 3 * fwd_flops * batch / t_step
  print(
    string.format(
      "imgsz %d batch %d: forward %.1f ms/img (%.1f GFLOP/s, %.0f%% of sgemm) | "
        .. "forward+backward %.1f ms/img (%.1f GFLOP/s, %.0f%% of sgemm) | peak RSS %.0f MB",
      s,
      batch,
      1000 * t_fwd / batch,
      fwd_rate,
      100 * fwd_rate / sgemm,
      1000 * t_step / batch,
      step_rate,
      100 * step_rate / sgemm,
      yt.machine.peak_rss() / 1e6
    )
  )
  images:free()
end
