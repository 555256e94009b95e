-- Batch-1 inference of YOLOv8n as Ultralytics' peer measures it (../shared/peer/peer_bench.py infer): the init
-- weights (../shared/parity/yolov8n_init.safetensors: the same as Ultralytics' init_seeds(0) model), fused, eval,
-- grad mode off, on the first coco128 val image letterboxed square to imgsz. After warm-up forwards, `runs` timed
-- forwards; prints the median, min and 90th percentile in ms per image of
--   forward            the model alone (decode included), the fused path (nn/modules.lua: conv2d plans)
--   ops                the same fused model running its ops (modules.fused_inference = false), for comparison
--   letterbox+NMS      letterbox of the decoded image + uint8 -> float + forward + NMS (conf 0.25, iou 0.7)
-- and the threads used (OMP_NUM_THREADS, else every core). With peer=true it also runs the peer's `infer` at the
-- same thread count and prints its medians and the ratio (skipped, saying why, when ../shared/peer is not set up).
--
--   OMP_NUM_THREADS=2 build/yolotrain bench/bench_predict.lua [imgsz=320,640] [runs=50] [warmup=5] [ops=true]
--       [peer=true]
local yt = require("yolotrain")
local cjson = require("cjson")
local tasks = require("yolotrain.nn.tasks")
local modules = require("yolotrain.nn.modules")
local data = require("yolotrain.data")
local utils = require("yolotrain.utils")

local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local SHARED = HERE .. "../../shared"

local opts = { imgsz = "320,640", runs = "50", warmup = "5", ops = "true", peer = "false" }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opts[k] == nil then error("bench_predict: unknown argument '" .. a .. "'", 0) end
  opts[k] = v
end
local sizes = {}
for s in opts.imgsz:gmatch("%d+") do
  sizes[#sizes + 1] = tonumber(s)
end
local runs, warmup = tonumber(opts.runs), tonumber(opts.warmup)
local threads = yt.sys.get_num_threads()

-- the model: Ultralytics' init weights when the fixtures are there, fused
local model = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
local init = SHARED .. "/parity/yolov8n_init.safetensors"
local weights = "yolotrain's own init (../shared/parity is missing)"
if utils.exists(init) then
  model:load_state_dict(yt.io.load_safetensors(init))
  weights = "Ultralytics' init_seeds(0) weights"
end
model:eval():fuse()

local val = SHARED .. "/datasets/coco128/images/val2017"
local files = yt.sys.listdir(val) or {}
table.sort(files)
local first
for _, f in ipairs(files) do
  if f:match("%.jpg$") then
    first = f
    break
  end
end
if not first then error("bench_predict: no coco128 val images under " .. val, 0) end
local im0 = data.load_image(utils.join(val, first)):keep()

local function stats(ts)
  table.sort(ts)
  local n = #ts
  return { median = ts[(n + 1) // 2] * 1e3, min = ts[1] * 1e3, p90 = ts[math.max(1, math.ceil(0.9 * n))] * 1e3 }
end

-- letterbox im0 square to imgsz (no scale-up limit, grey 114) -> (1, 3, s, s) float 0..1
local function preprocess(s)
  local lb = data.letterbox(im0, s, s, true)
  return lb:permute({ 3, 1, 2 }):contiguous():reshape({ 1, 3, s, s }):float(1 / 255)
end

-- seconds of fn() per run after warm-up; everything fn makes is freed at the end of each run
local function time_runs(fn)
  local ts = {}
  for i = 1, warmup + runs do
    yt.scope_begin()
    local t0 = yt.machine.now()
    fn()
    local t = yt.machine.now() - t0
    yt.scope_end()
    if i > warmup then ts[#ts + 1] = t end
  end
  return stats(ts)
end

local function run_peer()
  local script = SHARED .. "/peer/peer_bench.py"
  if not utils.exists(script) or not utils.exists("/tmp/peer/ultralytics-8.2.100") then
    return nil, "the peer is not set up (see ../shared/peer/README.md)"
  end
  local p = io.popen(string.format("PEER_THREADS=%d /usr/bin/python3 '%s' infer 2>&1", threads, script))
  local out = p:read("a")
  p:close()
  local line = out:match("@@JSON@@([^\n]+)")
  if not line then return nil, "no result from the peer:\n" .. out:sub(-2000) end
  return cjson.decode(line)
end

print(string.format("yolotrain %s, YOLOv8n fused (%s), batch 1, %d thread(s)", yt.version, weights, threads))
print(string.format("image %s, %d warm-up + %d timed runs; ms per image: median / min / p90", first, warmup, runs))
local prev = yt.set_grad_enabled(false)
local results = {}
for _, s in ipairs(sizes) do
  local x = preprocess(s):keep()
  local row = { imgsz = s }
  row.forward = time_runs(function() model(x) end)
  if opts.ops == "true" then
    modules.fused_inference = false
    row.ops = time_runs(function() model(x) end)
    modules.fused_inference = true
  end
  row.pipeline = time_runs(function()
    local y = model(preprocess(s))
    yt.metrics.nms(y, { conf = 0.25, iou = 0.7, max_det = 300 })
  end)
  results[#results + 1] = row
  local function fmt(r) return string.format("%6.1f / %6.1f / %6.1f", r.median, r.min, r.p90) end
  print(string.format("  %d  forward        %s", s, fmt(row.forward)))
  if row.ops then
    print(
      string.format(
        "  %d  ops            %s   (x%.2f the forward)",
        s,
        fmt(row.ops),
        row.ops.median / row.forward.median
      )
    )
  end
  print(string.format("  %d  letterbox+NMS  %s", s, fmt(row.pipeline)))
  x:free()
end
yt.set_grad_enabled(prev)
model:release_plans()

if opts.peer == "true" then
  local r, why = run_peer()
  if not r then
    print("peer: " .. why)
  else
    print(string.format("peer (Ultralytics 8.2.100 + PyTorch, fused, %d thread(s), same machine, run after):", threads))
    for _, row in ipairs(results) do
      local e = r["fused_b1_" .. row.imgsz]
      if e then
        print(
          string.format(
            "  %d  forward %6.1f / %6.1f / %6.1f   yolotrain x%.2f faster (medians)",
            row.imgsz,
            e.ms_per_image_median,
            e.ms_per_image_min,
            e.ms_per_image_p90,
            e.ms_per_image_median / row.forward.median
          )
        )
      end
    end
  end
end
