-- Training that is killed or interrupted: kill -9 mid-epoch then resume gives the uninterrupted result
-- bitwise; Ctrl-C pauses into the REPL with `trainer` in scope (cont() resumes, stop() stops), or without a
-- terminal stops; SIGINT, SIGTERM and stop() save last, say where they stopped and exit 130, 143, 130.
local yt = require("yolotrain.core")
local helpers = require("helpers")
local fake = require("fake_training")

local REPO = helpers.repo_dir

local function recipe(dir, body)
  local path = dir .. "/recipe.lua"
  helpers.write_file(path, string.format(
    [[
package.path = %q .. "tests/lua/?.lua;" .. package.path
local yt = require("yolotrain")
local fake = require("fake_training")
local T = fake.make_trainer_class({ nb = 3 })
local DIR = %q
]],
    REPO,
    dir
  ) .. body)
  return path
end

-- Recipe lines: at step (epoch, ni) the run writes its pid to DIR/pid and stays busy for 3 s, so a signal sent
-- once the pid is there arrives mid-step (the loop acts on it at the step boundary).
local function signal_window(epoch, ni)
  return string.format(
    [[
t:add_callback("on_train_batch_end", function(tr)
  if tr.epoch == %d and tr.ni == %d then
    local f = io.open(DIR .. "/pid", "w"); f:write(yt.sys.getpid()); f:close()
    local t0 = yt.machine.now()
    while yt.machine.now() - t0 < 3 do end
  end
end)
]],
    epoch,
    ni
  )
end

-- Runs the recipe on a terminal (util-linux script): Ctrl-C once it wrote its pid, then `input` typed into the
-- paused REPL; the terminal stays open `linger` seconds more. Returns helpers.run's ok, rc, output.
local function run_on_terminal(dir, path, input, linger)
  helpers.write_file(dir .. "/input", input)
  return helpers.run(
    string.format(
      "(while [ ! -s '%s/pid' ]; do sleep 0.1; done; "
        .. "kill -INT $(cat '%s/pid'); sleep 4; cat '%s/input'; sleep %d) | timeout 120 script -qfec \"'%s' '%s'\" /dev/null",
      dir,
      dir,
      dir,
      linger,
      helpers.yolotrain,
      path
    )
  )
end

local function common(dir, name)
  return fake.overrides(dir, { epochs = 3, batch = 4, name = name, nbs = 8, warmup_epochs = 1, close_mosaic = 1 })
end

local function same_weights(path_a, path_b)
  local a, b = yt.io.load_safetensors(path_a), yt.io.load_safetensors(path_b)
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
    local full = T { overrides = common(dir, "full") }
    full:train()
    local mark = dir .. "/in_epoch_2"
    local path = recipe(
      dir,
      string.format(
        [[
local t = T{ overrides = %s }
t:add_callback("on_train_batch_end", function(tr)
  if tr.epoch == 1 and tr.ni == 4 then
    io.open(%q, "w"):close()
    while true do end
  end
end)
t:train()
]],
        "{ model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 3, imgsz = 32, batch = 4, project = DIR, "
          .. "name = 'part', plots = false, verbose = false, nbs = 8, warmup_epochs = 1, close_mosaic = 1 }",
        mark
      )
    )
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
    local _, meta = yt.io.load_safetensors(dir .. "/part/weights/last.safetensors")
    assert.are.equal("0", meta.epoch)
    local resumed = T { overrides = { resume = dir .. "/part/weights/last.safetensors" } }
    resumed:train()
    same_weights(full.last, resumed.last)
  end)

  -- A recipe of 4 epochs of 3 batches that writes its pid mid-step at epoch 2, batch 2, so the signal arrives there.
  local function signalled_recipe(dir, name)
    fake.tiny_yaml(dir)
    return recipe(
      dir,
      string.format(
        [[
local t = T{ overrides = { model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 4, imgsz = 32, batch = 4,
  project = DIR, name = %q, plots = false, verbose = false, nbs = 8, warmup_epochs = 1, close_mosaic = 1 } }
%st:train()
print("after train()")
]],
        name,
        signal_window(1, 4)
      )
    )
  end

  local function last_line(out)
    local last
    for line in out:gmatch("[^\n]+") do
      last = line
    end
    return last
  end

  -- Resumes a stopped run in-process from the epoch after the one stopped in, to the end; returns its last.
  local function resume(last)
    local T = fake.make_trainer_class({ nb = 3 })
    local resumed = T { overrides = { resume = last } }
    resumed:train()
    assert.are.equal(2, resumed.start_epoch)
    return resumed.last
  end

  -- The same run stopped in-process by request_stop at the same step, then resumed: the reference weights.
  local reference
  local function reference_last()
    if reference then return reference end
    local dir = helpers.tmpdir()
    local T = fake.make_trainer_class({ nb = 3 })
    local o = common(dir, "ref")
    o.epochs = 4
    local t = T { overrides = o }
    t:add_callback("on_train_batch_end", function(tr)
      if tr.epoch == 1 and tr.ni == 4 then tr:request_stop("interrupt") end
    end)
    local ok, err = pcall(t.train, t)
    assert.is_false(ok)
    assert.are.equal(130, err.exit_status)
    reference = resume(t.last)
    return reference
  end

  for _, case in ipairs({
    { signal = "INT", status = 130, says = "Interrupted: saving last and stopping", by = "Stopped by Ctrl-C" },
    { signal = "TERM", status = 143, says = "Terminated: saving last and stopping", by = "Stopped by SIGTERM" },
  }) do
    it(
      "stops at the next step boundary on SIG"
        .. case.signal
        .. " without a terminal, saves last, exits "
        .. case.status,
      function()
        local dir = helpers.tmpdir()
        local path = signalled_recipe(dir, "sig")
        local ok, rc, out = helpers.run(
          string.format(
            "((while [ ! -s '%s/pid' ]; do sleep 0.1; done; kill -%s $(cat '%s/pid')) & '%s' '%s' </dev/null; "
              .. "st=$?; wait; exit $st)",
            dir,
            case.signal,
            dir,
            helpers.yolotrain,
            path
          )
        )
        assert.is_false(ok, out)
        assert.are.equal(case.status, rc, out)
        assert.matches(case.says, out, 1, true)
        local last = dir .. "/sig/weights/last.safetensors"
        assert.are.equal(case.by .. " at epoch 2/4, batch 2/3; last saved to " .. last, last_line(out), out)
        assert.is_nil(out:find("epochs completed", 1, true), out)
        assert.is_nil(out:find("after train()", 1, true), "train() raises the stop: " .. out)
        assert.is_nil(out:find("stack traceback", 1, true), out)
        local _, meta = yt.io.load_safetensors(last)
        assert.are.equal("1", meta.epoch)
        same_weights(reference_last(), resume(last))
      end
    )
  end

  -- The recipe of a 2-epoch tiny run named `name` that gets SIGINT at epoch 1, batch 2 (on a terminal it pauses
  -- into the REPL), then runs `after` (Lua source): returns its folder and path, or nil (pending) where no
  -- terminal can be provided.
  local function paused_run(name, after)
    if not helpers.run("command -v script") then
      pending("util-linux 'script' is not available to provide a terminal")
      return nil
    end
    local dir = helpers.tmpdir()
    fake.tiny_yaml(dir)
    return dir,
      recipe(dir, [[
local t = T{ overrides = { model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 2, imgsz = 32, batch = 4,
  project = DIR, name = ']] .. name .. [[', plots = false, verbose = false } }
]] .. signal_window(0, 1) .. [[
t:train()
]] .. after)
  end

  it("pauses into the REPL on a terminal: trainer is in scope and cont() resumes", function()
    local dir, path =
      paused_run("pause", 'print("lr0 now " .. t.args.lr0 .. ", finished at epoch " .. (t.epoch + 1))\n')
    if not dir then return end
    local _, _, out =
      run_on_terminal(dir, path, "print('epoch in repl', trainer.epoch + 1)\ntrainer.args.lr0 = 0.02\ncont()\n", 20)
    assert.matches("Training paused", out, 1, true)
    assert.matches("epoch in repl\t1", out, 1, true)
    assert.matches("lr0 now 0.02, finished at epoch 2", out, 1, true)
  end)

  it("stops after the epoch's save when SIGTERM comes at the epoch end (validation, the save), exit 143", function()
    local dir = helpers.tmpdir()
    fake.tiny_yaml(dir)
    local path = recipe(
      dir,
      [[
local t = T{ overrides = { model = DIR .. '/tiny-t.yaml', data = 'fake', epochs = 4, imgsz = 32, batch = 4,
  project = DIR, name = 'end', plots = false, verbose = false } }
t:add_callback("on_model_save", function(tr) os.execute("kill -TERM " .. yt.sys.getpid()) end)
t:train()
]]
    )
    local ok, rc, out = helpers.run(string.format("'%s' '%s' </dev/null", helpers.yolotrain, path))
    assert.is_false(ok, out)
    assert.are.equal(143, rc, out)
    local last = dir .. "/end/weights/last.safetensors"
    assert.are.equal("Stopped by SIGTERM at epoch 1/4, batch 3/3; last saved to " .. last, last_line(out), out)
    local _, meta = yt.io.load_safetensors(last)
    assert.are.equal("0", meta.epoch)
  end)

  it("stop() in the paused REPL saves last and ends the run as Ctrl-C does: 'Stopped by user', exit 130", function()
    local dir, path = paused_run("stop", 'print("after train()")\n')
    if not dir then return end
    local ok, rc, out = run_on_terminal(dir, path, "stop()\n", 2)
    out = out:gsub("\r", "")
    assert.is_false(ok, out)
    assert.are.equal(130, rc, out)
    assert.matches("Training paused", out, 1, true)
    local last = dir .. "/stop/weights/last.safetensors"
    assert.are.equal("Stopped by user at epoch 1/2, batch 2/3; last saved to " .. last, last_line(out), out)
    assert.is_nil(out:find("after train()", 1, true), out)
    local _, meta = yt.io.load_safetensors(last)
    assert.are.equal("0", meta.epoch)
  end)
end)
