-- The whole training step of YOLOv8n as the trainer runs it, per phase, on real augmented coco128 batches
-- (pre-loaded; the loader is timed on its own): uint8 -> float, forward, the v8 detection loss, backward, then
-- clipping + optimizer + EMA. Prints ms per image per phase, the effective rate (Ultralytics' count: 3x the forward
-- GFLOPs per image) as a fraction of this machine's sgemm rate measured in the same run, and the peak RSS of the
-- step. With peer=true it also runs Ultralytics' own train_tput (../shared/peer) at the same size, batch and
-- thread count, and prints the ratio.
--
-- With conv=gemm,dnnl (any two of gemm, dnnl, dnnl_all) the timed steps alternate between two convolution
-- backends, step by step in the same process (so a change in the machine's load hits both alike), and each backend
-- gets its own table and the ratio. amp=true,false does the same with the two precisions: bf16 mixed precision
-- (ops/autocast.h; float32 where the CPU lacks BF16, which the header line says) and float32. Without amp= the
-- steps run as training would with the default amp=true.
--
--   OMP_NUM_THREADS=1 build/yolotrain bench/bench_train.lua [imgsz=320,640] [batch=16] [steps=3] [peer=true]
--       [data=<data.yaml>] [workers=N] [conv=gemm,dnnl] [amp=true,false] [memory=true] [loading=true]
--
-- loading=true then times as many steps again that take their batch from the loader as training does (the wait
-- for the batch counted in the step) and prints their median against the pre-loaded step: the loader never
-- waits when the ratio is ~1.
--
-- memory=true also prints, for the last step, where the tensor memory is at the end of the loss (the peak of what
-- the tape holds): per producing op, the bytes of the distinct storages the tape keeps for backward, and the
-- tensor bytes in use, the peak of a step's tensor bytes, and the freed blocks the cache keeps.
local yt = require("yolotrain")
local cjson = require("cjson")
local detect = require("yolotrain.models.yolo.detect")
local utils = require("yolotrain.utils")

local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local SHARED = HERE .. "../../shared"

-- ---- arguments ----
local opts = {
  imgsz = "320,640",
  batch = "16",
  steps = "3",
  peer = "false",
  workers = "2",
  conv = "",
  amp = "",
  memory = "false",
  loading = "false",
  data = SHARED .. "/datasets/coco128/data.yaml",
}
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opts[k] == nil then error("bench_train: unknown argument '" .. a .. "'", 0) end
  opts[k] = v
end
local sizes = {}
for s in opts.imgsz:gmatch("%d+") do
  sizes[#sizes + 1] = tonumber(s)
end
local batch, steps = tonumber(opts.batch), tonumber(opts.steps)
local backends = {}
for b in opts.conv:gmatch("[^,]+") do
  if b ~= "gemm" and b ~= "dnnl" and b ~= "dnnl_all" then
    error("bench_train: conv=" .. opts.conv .. ": expected two or one of gemm, dnnl, dnnl_all", 0)
  end
  backends[#backends + 1] = b
end
if #backends == 0 then backends[1] = yt.sys.conv_backend() end
local amps = {}
for a in opts.amp:gmatch("[^,]+") do
  if a ~= "true" and a ~= "false" then error("bench_train: amp=" .. opts.amp .. ": expected true, false or both", 0) end
  amps[#amps + 1] = a == "true"
end
if #amps == 0 then amps[1] = true end
-- what the timed steps alternate between: every backend with every precision
local variants = {}
for _, be in ipairs(backends) do
  for _, amp in ipairs(amps) do
    local name = be
    if #amps > 1 then name = (#backends > 1 and be .. ", " or "") .. "amp=" .. tostring(amp) end
    variants[#variants + 1] = { name = name, backend = be, amp = amp }
  end
end
local threads = yt.sys.get_num_threads()

-- ---- helpers ----
local function median(xs)
  local t = {}
  for i, v in ipairs(xs) do
    t[i] = v
  end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

-- VmHWM restarts from the current RSS (Linux: /proc/self/clear_refs "5"), so each size reports its own peak.
local function reset_peak_rss()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then
    f:write("5")
    f:close()
  end
end

local function keep_batch(b)
  for _, k in ipairs({ "img", "cls", "bboxes", "batch_idx" }) do
    b[k]:keep()
  end
  return b
end

local function free_batch(b)
  for _, k in ipairs({ "img", "cls", "bboxes", "batch_idx" }) do
    b[k]:free()
  end
end

-- A trainer set up exactly as for training (model, loss, optimizer, EMA, loader), in a scratch run directory.
local function make_trainer(imgsz, dir)
  local t = detect.Detection_Trainer {
    overrides = {
      model = "yolov8n.yaml",
      data = opts.data,
      imgsz = imgsz,
      batch = batch,
      epochs = 1,
      workers = tonumber(opts.workers),
      plots = false,
      val = false,
      verbose = false,
      tensorboard = false,
      project = dir,
      name = "bench",
      exist_ok = true,
      seed = 0,
    },
  }
  t:_setup_train()
  return t
end

-- Ultralytics' train_tput at the same settings: the median seconds per phase and its peak RSS, or nil + reason.
local function run_peer(imgsz)
  local script = SHARED .. "/peer/peer_bench.py"
  if not utils.exists(script) or not utils.exists("/tmp/peer/ultralytics-8.2.100") then
    return nil, "the peer is not set up (see ../shared/peer/README.md)"
  end
  local cmd = string.format(
    "PEER_THREADS=%d /usr/bin/python3 '%s' train_tput --imgsz %d --batch %d --warmup 1 " .. "--steps %d 2>&1",
    threads,
    script,
    imgsz,
    batch,
    steps
  )
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  local line = out:match("@@JSON@@([^\n]+)")
  if not line then return nil, "no result from the peer:\n" .. out:sub(-2000) end
  return cjson.decode(line)
end

-- ---- the run ----
local sgemm = yt.machine.sgemm_gflops(1024, 2.0)
print(
  string.format(
    "yolotrain %s, %d thread(s); machine sgemm (1024^3, same run): %.1f GFLOP/s",
    yt.version,
    threads,
    sgemm
  )
)
do
  local isa, bf16 = yt.sys.cpu_isa()
  local p = {}
  for _, amp in ipairs(amps) do
    p[#p + 1] = amp
        and (bf16 and "amp=true: bf16 convolutions, float32 accumulation" or "amp=true: float32 (this CPU has no BF16)")
      or "amp=false: float32"
  end
  print(string.format("precision: %s (oneDNN ISA %s)", table.concat(p, "; "), isa))
end
print(
  "convolutions: "
    .. table.concat(backends, " and ")
    .. (#variants > 1 and ", " .. #variants .. " variants alternating step by step" or "")
)

local dir = os.tmpname()
os.remove(dir)
utils.mkdir_p(dir)
for _, imgsz in ipairs(sizes) do
  reset_peak_rss()
  local trainer = make_trainer(imgsz, dir)
  local model = trainer.model
  local _, _, _, gflops640 = model:info(false)
  local fwd_gflops = gflops640 * (imgsz / 640) ^ 2 -- per image, Ultralytics' counting

  -- the loader, on its own: batches of the first epoch as they arrive
  local batches, t_data = {}, {}
  local iter = trainer:_iterate(trainer.train_loader)
  for i = 1, steps + 1 do
    local t0 = yt.machine.now()
    local b = iter()
    if not b then error("bench_train: the dataset has fewer than " .. (steps + 1) .. " batches", 0) end
    t_data[i] = yt.machine.now() - t0
    batches[i] = keep_batch(b)
  end

  model:train()
  local phases = { "preprocess", "forward", "loss", "backward", "optimizer" }
  local times, t_step = {}, {}
  for _, v in ipairs(variants) do
    times[v.name], t_step[v.name] = {}, {}
    for _, p in ipairs(phases) do
      times[v.name][p] = {}
    end
  end
  local mem -- the breakdown of the last step (memory=true)
  for i = 1, steps + 1 do -- the first step of each variant warms up (allocations, caches) and is not counted
    for _, var in ipairs(variants) do
      local be = var.name
      yt.sys.set_conv_backend(var.backend)
      yt.sys.set_autocast(var.amp)
      yt.scope_begin()
      local t = { yt.machine.now() }
      local b = {}
      for k, v in pairs(batches[i]) do
        b[k] = v
      end
      b = trainer:preprocess_batch(b)
      t[2] = yt.machine.now()
      local preds = model:predict(b.img)
      t[3] = yt.machine.now()
      local loss = model:loss(b, preds)
      for _, p in ipairs(preds) do
        p:free() -- as model:loss(b) does with the predictions it makes, the trainer's path
      end
      t[4] = yt.machine.now()
      if opts.memory == "true" then
        local in_use, _, cached = yt.memory()
        mem = { tape = yt.tape_memory(), in_use = in_use, cached = cached, rss = yt.machine.rss() }
        yt.reset_peak_memory()
        t[4] = yt.machine.now()
      end
      loss:backward()
      t[5] = yt.machine.now()
      if mem then
        local _, peak, cached = yt.memory()
        mem.backward_peak, mem.backward_cached = peak, cached
      end
      trainer:optimizer_step()
      t[6] = yt.machine.now()
      yt.scope_end()
      if i > 1 then
        for j, p in ipairs(phases) do
          times[be][p][#times[be][p] + 1] = t[j + 1] - t[j]
        end
        t_step[be][#t_step[be] + 1] = t[6] - t[1]
      end
    end
  end
  -- steps fed by the loader as in training (loading=true), alternating with pre-loaded steps so that a change in
  -- the machine's load hits both alike; the iterator goes on from the pre-loaded batches
  local t_loaded, t_preloaded = {}, {}
  if opts.loading == "true" then
    yt.sys.set_conv_backend(variants[1].backend)
    yt.sys.set_autocast(variants[1].amp)
    local function step_on(next_batch)
      yt.scope_begin()
      local t0 = yt.machine.now()
      local b = trainer:preprocess_batch(next_batch())
      local loss = model:loss(b, model:predict(b.img))
      loss:backward()
      trainer:optimizer_step()
      yt.scope_end()
      return yt.machine.now() - t0
    end
    for i = 1, steps + 1 do
      local from_loader = step_on(function()
        local b = iter()
        if b then return b end
        trainer.train_loader:set_epoch(1)
        iter = trainer:_iterate(trainer.train_loader)
        return iter()
      end)
      local preloaded = step_on(function()
        local b = {}
        for k, v in pairs(batches[i]) do
          b[k] = v
        end
        return b
      end)
      if i > 1 then
        t_loaded[#t_loaded + 1], t_preloaded[#t_preloaded + 1] = from_loader, preloaded
      end
    end
  end
  yt.sys.set_conv_backend(nil)
  local step
  for _, v in ipairs(variants) do
    local be = v.name
    step = median(t_step[be])
    local rate = 3 * fwd_gflops * batch / step
    print(
      string.format(
        "\nimgsz %d, batch %d, %d timed steps (medians), %s, ms per image:",
        imgsz,
        batch,
        steps,
        #amps > 1 and v.name or ("convolutions " .. v.name)
      )
    )
    print(
      string.format(
        "  data (loader, %d workers, not in the step) %7.1f",
        trainer.train_loader.num_workers or 0,
        1000 * median({ table.unpack(t_data, 2) }) / batch
      )
    )
    for _, p in ipairs(phases) do
      print(string.format("  %-40s %7.1f", p, 1000 * median(times[be][p]) / batch))
    end
    print(
      string.format(
        "  %-40s %7.1f   = %.1f GFLOP/s effective, %.0f%% of the sgemm rate",
        "step",
        1000 * step / batch,
        rate,
        100 * rate / sgemm
      )
    )
  end
  if #variants == 2 then
    local a, b = variants[1].name, variants[2].name
    print(
      string.format(
        "  %s / %s step time: x%.2f (forward x%.2f, backward x%.2f); per-step ratios: %s",
        a,
        b,
        median(t_step[a]) / median(t_step[b]),
        median(times[a].forward) / median(times[b].forward),
        median(times[a].backward) / median(times[b].backward),
        (function()
          local r = {}
          for k = 1, #t_step[a] do
            r[k] = string.format("%.2f", t_step[a][k] / t_step[b][k])
          end
          return table.concat(r, " ")
        end)()
      )
    )
  end
  if #t_loaded > 0 then
    local loaded, pre = median(t_loaded), median(t_preloaded)
    print(
      string.format(
        "  step fed by the loader (%d workers): %.1f ms/img = x%.3f the pre-loaded step alternating with it",
        trainer.train_loader.num_workers or 0,
        1000 * loaded / batch,
        loaded / pre
      )
    )
  end
  print(string.format("  peak RSS %.0f MB%s", yt.machine.peak_rss() / 1e6, #variants > 1 and " (all variants)" or ""))
  if mem then
    local total = 0
    for _, e in ipairs(mem.tape) do
      total = total + e.bytes
    end
    print(
      string.format(
        "  memory at the end of the loss: tensors %.0f MB in use (the tape holds %.0f MB), "
          .. "cache %.0f MB, RSS %.0f MB; held by the tape, per producing op:",
        mem.in_use / 1e6,
        total / 1e6,
        mem.cached / 1e6,
        mem.rss / 1e6
      )
    )
    for _, e in ipairs(mem.tape) do
      if e.bytes >= 1e6 then
        print(string.format("    %-24s %7.1f MB in %d tensors", e.name, e.bytes / 1e6, e.count))
      end
    end
    print(
      string.format(
        "  during backward: tensors peak at %.0f MB in use; cache %.0f MB at its end",
        mem.backward_peak / 1e6,
        mem.backward_cached / 1e6
      )
    )
  end
  step = median(t_step[variants[1].name]) -- the peer compares with the first variant
  local rate = 3 * fwd_gflops * batch / step

  if opts.peer == "true" then
    local r, why = run_peer(imgsz)
    if not r then
      print("  peer: " .. why)
    else
      local m = r.step_s_median
      local theirs = m.total or (m.fwd + m.loss + m.bwd + m.opt)
      print(
        string.format(
          "  Ultralytics train_tput, same run: step %.1f ms/img (fwd %.1f, loss %.1f, bwd %.1f, "
            .. "opt+EMA %.1f), peak RSS %.0f MB",
          1000 * theirs / batch,
          1000 * m.fwd / batch,
          1000 * m.loss / batch,
          1000 * m.bwd / batch,
          1000 * m.opt / batch,
          r.peak_rss_main_MB or 0
        )
      )
      print(
        string.format(
          "  yolotrain / Ultralytics speed: x%.2f (%.0f%% vs %.0f%% of the sgemm rate)",
          theirs / step,
          100 * rate / sgemm,
          100 * 3 * fwd_gflops * batch / theirs / sgemm
        )
      )
    end
  end
  for _, b in ipairs(batches) do
    free_batch(b)
  end
  trainer.train_loader:close()
  if trainer.test_loader and trainer.test_loader.close then trainer.test_loader:close() end
end
os.execute("rm -rf '" .. dir .. "'")
