-- Training that is killed or interrupted: kill -9 mid-epoch then resume gives the uninterrupted result
-- bitwise; Ctrl-C pauses into the REPL with `trainer` in scope (cont() resumes), or stops and saves last.
local yt = require("yolotrain.core")
local helpers = require("helpers")
local fake = require("fake_training")

local REPO = helpers.repo_dir

local function recipe(dir, body)
  local path = dir .. "/recipe.lua"
  helpers.write_file(path, string.format([[
package.path = %q .. "tests/lua/?.lua;" .. package.path
local yt = require("yolotrain")
local fake = require("fake_training")
local T = fake.make_trainer_class({ nb = 3 })
local DIR = %q
]], REPO, dir) .. body)
  return path
end

local function common(dir, name)
  return { model = fake.tiny_yaml(dir), data = "fake", epochs = 3, imgsz = 32, batch = 4, project = dir, name = name,
    plots = false, verbose = false, nbs = 8, warmup_epochs = 1, close_mosaic = 1 }
end

local function same_weights(path_a, path_b)
  local a, b = yt.load_safetensors(path_a), yt.load_safetensors(path_b)
  local n = 0
  for name, ta in pairs(a) do
    if name:match("^model%.") or name:match("^train_model%.") then
      local d = (ta:float() - b[name]:float()):abs():max():item()
      assert.are.equal(0, d, name .. " differs by " .. d)
      n = n + 1
    end
  end
  assert.is_true(n > 100)
end

describe("interrupted training", function()
  it("resumes after kill -9 in the middle of an epoch to the uninterrupted weights", function()
    local dir = helpers.tmpdir()
    local T = fake.make_trainer_class({ nb = 3 })
    local full = T{ overrides = common(dir, "full") }
    full:train()
    local mark = dir .. "/in_epoch_2"
    local path = recipe(dir, string.format([[
local t = T{ overrides = %s }
t:add_callback("on_train_batch_end", function(tr)
  if tr.epoch == 1 and tr.ni == 4 then
    io.open(%q, "w"):close()
    while true do end
  end
end)
t:train()
]], "{ model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 3, imgsz = 32, batch = 4, project = DIR, " ..
      "name = 'part', plots = false, verbose = false, nbs = 8, warmup_epochs = 1, close_mosaic = 1 }", mark))
    local h = io.popen(string.format("'%s' '%s' >%s/log 2>&1 & echo $!", helpers.yolotrain, path, dir))
    local pid = h:read("l")
    h:close()
    local waited = 0
    while not io.open(mark, "r") and waited < 600 do
      os.execute("sleep 0.1")
      waited = waited + 1
    end
    assert.is_truthy(io.open(mark, "r"), "the recipe never reached epoch 2: " .. (helpers.read_file(dir .. "/log")))
    os.execute("kill -9 " .. pid)
    os.execute("sleep 0.2")
    local _, meta = yt.load_safetensors(dir .. "/part/weights/last.safetensors")
    assert.are.equal("0", meta.epoch)
    local resumed = T{ overrides = { resume = dir .. "/part/weights/last.safetensors" } }
    resumed:train()
    same_weights(full.last, resumed.last)
  end)

  it("stops at the next step boundary on Ctrl-C without a terminal, saving last", function()
    local dir = helpers.tmpdir()
    fake.tiny_yaml(dir)
    local path = recipe(dir, [[
local t = T{ overrides = { model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 50, imgsz = 32, batch = 4,
  project = DIR, name = 'ctrlc', plots = false, verbose = false } }
t:add_callback("on_train_batch_end", function(tr)
  if tr.epoch == 1 and tr.ni == 4 then
    local f = io.open(DIR .. "/pid", "w"); f:write(yt.sys.getpid()); f:close()
    local t0 = yt.now()
    while yt.now() - t0 < 3 do end -- Ctrl-C arrives now, mid-step; the loop acts on it at the step boundary
  end
end)
t:train()
print("finished at epoch " .. (t.epoch + 1))
]])
    local ok, rc, out = helpers.run(string.format(
      "(while [ ! -s '%s/pid' ]; do sleep 0.1; done; kill -INT $(cat '%s/pid')) & '%s' '%s' </dev/null; wait",
      dir, dir, helpers.yolotrain, path))
    assert.is_true(ok, out)
    assert.matches("Interrupted: saving last and stopping", out, 1, true)
    assert.matches("finished at epoch 2", out, 1, true)
    local _, meta = yt.load_safetensors(dir .. "/ctrlc/weights/last.safetensors")
    assert.are.equal("1", meta.epoch)
  end)

  it("pauses into the REPL on a terminal: trainer is in scope and cont() resumes", function()
    if not helpers.run("command -v script") then
      pending("util-linux 'script' is not available to provide a terminal")
      return
    end
    local dir = helpers.tmpdir()
    fake.tiny_yaml(dir)
    local path = recipe(dir, [[
local t = T{ overrides = { model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 2, imgsz = 32, batch = 4,
  project = DIR, name = 'pause', plots = false, verbose = false } }
t:add_callback("on_train_batch_end", function(tr)
  if tr.epoch == 0 and tr.ni == 1 then
    local f = io.open(DIR .. "/pid", "w"); f:write(yt.sys.getpid()); f:close()
    local t0 = yt.now()
    while yt.now() - t0 < 3 do end
  end
end)
t:train()
print("lr0 now " .. t.args.lr0 .. ", finished at epoch " .. (t.epoch + 1))
]])
    local input = dir .. "/input"
    helpers.write_file(input, "print('epoch in repl', trainer.epoch + 1)\ntrainer.args.lr0 = 0.02\ncont()\n")
    local ok, rc, out = helpers.run(string.format("(while [ ! -s '%s/pid' ]; do sleep 0.1; done; " ..
      "kill -INT $(cat '%s/pid'); sleep 4; cat '%s'; sleep 20) | timeout 120 script -qfec \"'%s' '%s'\" /dev/null",
      dir, dir, input, helpers.yolotrain, path))
    assert.matches("Training paused", out, 1, true)
    assert.matches("epoch in repl\t1", out, 1, true)
    assert.matches("lr0 now 0.02, finished at epoch 2", out, 1, true)
  end)
end)
