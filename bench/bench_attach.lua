-- The cost of serving `yolotrain attach`: one poll of the idle control socket (what every step pays) and the step
-- time of a small training with and without the socket, measured in the same run (medians of alternating runs).
--   build/yolotrain bench/bench_attach.lua [repeats]
package.path = "tests/lua/?.lua;" .. package.path
local yt = require("yolotrain")
local fake = require("fake_training")

local repeats = tonumber(arg and arg[1]) or 5
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- one poll of an idle socket
local s = yt.control.serve(dir .. "/bench.sock")
local polls = {}
for _ = 1, repeats do
  local n, t0 = 100000, yt.machine.now()
  for _ = 1, n do
    s:poll()
  end
  polls[#polls + 1] = (yt.machine.now() - t0) / n
end
s:close()

-- a small training's step, with the socket served and without it
local T = fake.make_trainer_class({ nb = 20 })
local function step_time(serve, k)
  local t = T {
    overrides = {
      model = fake.tiny_yaml(dir),
      data = "fake",
      epochs = 1,
      imgsz = 32,
      batch = 4,
      project = dir,
      name = "r" .. k,
      plots = false,
      verbose = false,
      val = false,
    },
  }
  if not serve then t._start_attach = function() end end
  local times, t0 = {}, nil
  t:add_callback("on_train_batch_start", function() t0 = yt.machine.now() end)
  t:add_callback("on_train_batch_end", function() times[#times + 1] = yt.machine.now() - t0 end)
  local started
  t:add_callback("on_train_start", function() started = yt.machine.now() end)
  local total
  t:add_callback("on_train_epoch_end", function() total = yt.machine.now() - started end)
  t:train()
  return total / 20
end
local with, without = {}, {}
for k = 1, repeats do
  without[#without + 1] = step_time(false, 2 * k)
  with[#with + 1] = step_time(true, 2 * k + 1)
end
local p, a, b = median(polls), median(with), median(without)
print(
  string.format(
    "idle poll: %.2f us; step (epoch time / batches): %.2f ms with the socket, %.2f ms without "
      .. "(ratio %.3f); one poll is %.5f%% of a step",
    p * 1e6,
    a * 1e3,
    b * 1e3,
    a / b,
    100 * p / b
  )
)
os.execute("rm -rf '" .. dir .. "'")
