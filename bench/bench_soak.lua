-- Soak: thousands of training steps at a small size, printing resident memory, open file descriptors and
-- threads every 100 steps, then judging them after warm-up: RSS may grow less than 2 %, descriptors and threads
-- must stay flat. A second run uses workers=4 and cache=ram. This is a benchmark, not a timed test.
-- Run: build/yolotrain bench/bench_soak.lua [steps=2000] [imgsz=64] [batch=4]
local yt = require("yolotrain")
local utils = require("yolotrain.utils")
local detect = require("yolotrain.models.yolo.detect")

local opts = { steps = 2000, imgsz = 64, batch = 4 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^(%w+)=(%d+)$")
  if not k or opts[k] == nil then error("usage: bench_soak.lua [steps=N] [imgsz=N] [batch=N]", 0) end
  opts[k] = tonumber(v)
end
local EVERY, WARMUP_FRACTION, RSS_GROWTH_LIMIT = 100, 0.25, 0.02

local function count_entries(dir)
  local n = 0
  for _ in pairs(yt.sys.listdir(dir)) do
    n = n + 1
  end
  return n
end

local function threads()
  for line in io.lines("/proc/self/status") do
    local n = line:match("^Threads:%s+(%d+)")
    if n then return tonumber(n) end
  end
end

local function sample(step)
  return { step = step, rss = yt.sys.rss(), fds = count_entries("/proc/self/fd"), threads = threads() }
end

-- Trains until `steps` batches have run and returns one sample per EVERY steps.
local function soak(name, extra)
  local train_images = 400 -- the shapes dataset's train split
  local per_epoch = math.ceil(train_images / opts.batch)
  local overrides = {
    model = "yolov8n.yaml",
    data = "shapes",
    imgsz = opts.imgsz,
    batch = opts.batch,
    epochs = math.ceil(opts.steps / per_epoch),
    val = false,
    plots = false,
    verbose = false,
    project = yt.sys.getenv("TMPDIR") or "/tmp",
    name = "yt_soak_" .. name,
    exist_ok = true,
    close_mosaic = 0,
  }
  for k, v in pairs(extra) do
    overrides[k] = v
  end
  local trainer = detect.Detection_Trainer { overrides = overrides }
  local samples, step = {}, 0
  trainer:add_callback("on_train_batch_end", function(t)
    step = step + 1
    if step % EVERY == 0 then
      local s = sample(step)
      samples[#samples + 1] = s
      print(
        string.format(
          "%-22s step %5d  rss %7.1f MB  fds %4d  threads %3d",
          name,
          s.step,
          s.rss / 2 ^ 20,
          s.fds,
          s.threads
        )
      )
      io.stdout:flush()
    end
    if step >= opts.steps then t.stop = true end
  end)
  trainer:train()
  return samples
end

-- Judges one run after warm-up; returns true when it is flat.
local function judge(name, samples)
  if #samples < 4 then
    print(string.format("%s: only %d samples, run more steps", name, #samples))
    return false
  end
  local first = math.max(1, math.floor(#samples * WARMUP_FRACTION))
  local base, last = samples[first], samples[#samples]
  local max_rss = base.rss
  for i = first, #samples do
    max_rss = math.max(max_rss, samples[i].rss)
  end
  local growth = (max_rss - base.rss) / base.rss
  local flat = growth < RSS_GROWTH_LIMIT and last.fds == base.fds and last.threads == base.threads
  print(
    string.format(
      "%s: after step %d, RSS grew %.2f %% (limit %.0f %%), fds %d -> %d, threads %d -> %d: %s",
      name,
      base.step,
      growth * 100,
      RSS_GROWTH_LIMIT * 100,
      base.fds,
      last.fds,
      base.threads,
      last.threads,
      flat and "FLAT" or "GROWING"
    )
  )
  return flat
end

utils.log("soak: %d steps at imgsz %d, batch %d", opts.steps, opts.imgsz, opts.batch)
local ok1 = judge("default", soak("default", {}))
local ok2 = judge("workers=4 cache=ram", soak("workers4_ram", { workers = 4, cache = "ram" }))
os.exit((ok1 and ok2) and 0 or 1)
