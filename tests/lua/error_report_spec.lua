-- How errors reach the user: exit status 1, one message and ONE traceback whose first frame is the user's
-- file:line (the recipe's), the engine's frames (lua/yolotrain/) left out unless YT_TRACEBACK=full; a bad argument
-- on the command line is one line naming the word, with the typo hint.
local helpers = require("helpers")
local fake = require("fake_training")

local REPO = helpers.repo_dir

-- Writes recipe.lua: a header of 6 lines (T, the fake trainer class; DIR; ARGS, a tiny run's overrides), then
-- body, whose line k is line 6 + k of the file.
local HEADER_LINES = 6
local function recipe(dir, body)
  fake.tiny_yaml(dir)
  local path = dir .. "/recipe.lua"
  helpers.write_file(path, string.format(
    [[
package.path = %q .. "tests/lua/?.lua;" .. package.path
local T = require("fake_training").make_trainer_class({ nb = 3 })
local DIR = %q
local ARGS = { model = DIR .. "/tiny-t.yaml", data = "fake", epochs = 2, imgsz = 32, batch = 4, project = DIR,
  name = "run", plots = false, verbose = false }
local yt = require("yolotrain")
]],
    REPO,
    dir
  ) .. body)
  return path
end

local function count(s, plain)
  local n, at = 0, 1
  while true do
    local i, j = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, j + 1
  end
end

-- The first frame of the (one) traceback in out.
local function first_frame(out) return out:match("stack traceback:\n\t([^\n]*)") end

local function run(path, env)
  return helpers.run(
    string.format("cd '%s' && %s '%s' '%s' </dev/null", helpers.tmpdir(), env or "", helpers.yolotrain, path)
  )
end

-- Checks the report of an error raised at line `line` of the recipe.
local function assert_one_report(out, rc, path, line)
  assert.are.equal(1, rc, out)
  assert.are.equal(1, count(out, "stack traceback"), out)
  assert.are.equal(1, count(out, "yolotrain: "), out)
  local frame = first_frame(out)
  assert.is_truthy(
    frame and frame:find(path .. ":" .. line .. ":", 1, true) == 1,
    "first frame is not " .. path .. ":" .. line .. ":\n" .. out
  )
  assert.is_nil(out:find("lua/yolotrain/", 1, true), "an engine frame is shown:\n" .. out)
end

describe("an error report", function()
  it("of a recipe's own error: exit 1, one traceback starting at recipe.lua:N", function()
    local dir = helpers.tmpdir()
    local path = recipe(dir, "local x = 1\nerror('boom')\n")
    local _, rc, out = run(path)
    assert_one_report(out, rc, path, HEADER_LINES + 2)
    assert.matches("yolotrain: " .. path .. ":" .. (HEADER_LINES + 2) .. ": boom", out, 1, true)
  end)

  it("of a runaway recursion: the two ends of the stack, at once", function()
    local dir = helpers.tmpdir()
    local path = recipe(dir, "local function f(n) return 1 + f(n + 1) end\nf(1)\n")
    local t0 = os.time()
    local _, rc, out = run(path)
    assert(os.time() - t0 < 30, "the traceback of a deep stack took too long")
    assert_one_report(out, rc, path, HEADER_LINES + 1)
    assert.matches(path .. ":" .. (HEADER_LINES + 1) .. ": stack overflow", out, 1, true)
    assert.are.equal(21, count(out, "\n\t" .. path .. ":"), out)
    assert.matches("\n\t...\t(levels skipped)\n", out, 1, true)
    assert.matches(path .. ":" .. (HEADER_LINES + 2) .. ": in main chunk", out, 1, true)
  end)

  it("of an error in a callback inside the training loop: one traceback, the user's line, last's state", function()
    local dir = helpers.tmpdir()
    local path = recipe(
      dir,
      [[
local t = T{ overrides = ARGS }
t:add_callback("on_train_batch_end", function(tr)
  if tr.epoch == 1 then
    local missing = nil
    return missing.field
  end
end)
t:train()
]]
    )
    local _, rc, out = run(path)
    assert_one_report(out, rc, path, HEADER_LINES + 5)
    assert.matches(
      "training failed at epoch 2, batch 1: callback 1 of 'on_train_batch_end' failed: "
        .. path
        .. ":"
        .. (HEADER_LINES + 5)
        .. ": attempt to index a nil value",
      out,
      1,
      true
    )
    assert.matches(
      "\ntraining stopped; the last checkpoint (" .. dir .. "/run/weights/last.safetensors) is intact",
      out,
      1,
      true
    )
    -- the recipe's frames, innermost first: the callback, then the line that called train()
    assert.matches(path .. ":" .. (HEADER_LINES + 8) .. ": in main chunk", out, 1, true)
    assert.matches("(engine frames hidden; YT_TRACEBACK=full shows them)", out, 1, true)
  end)

  it("of an error in a method a recipe overrides (no callback between): one traceback at its line", function()
    local dir = helpers.tmpdir()
    local path = recipe(
      dir,
      [[
local Custom = T:extend("Custom")
function Custom:preprocess_batch(batch)
  error("cannot use this batch")
end
Custom{ overrides = ARGS }:train()
]]
    )
    local _, rc, out = run(path)
    assert_one_report(out, rc, path, HEADER_LINES + 3)
    assert.matches(
      "training failed at epoch 1, batch 1: "
        .. path
        .. ":"
        .. (HEADER_LINES + 3)
        .. ": cannot use this batch\ntraining stopped; no checkpoint had been saved yet",
      out,
      1,
      true
    )
  end)

  it("keeps the engine's frames, still in one traceback, with YT_TRACEBACK=full", function()
    local dir = helpers.tmpdir()
    local path = recipe(
      dir,
      [[
local t = T{ overrides = ARGS }
t:add_callback("on_train_batch_end", function(tr) error("stop here") end)
t:train()
]]
    )
    local _, rc, out = run(path, "YT_TRACEBACK=full")
    assert.are.equal(1, rc, out)
    assert.are.equal(1, count(out, "stack traceback"), out)
    assert.matches("lua/yolotrain/engine/trainer.lua:%d+:", out)
    assert.matches(path .. ":" .. (HEADER_LINES + 2) .. ": in function", out, 1, true)
  end)

  it("of a bad argument key in a recipe: the recipe's line, not the engine's, with the typo hint", function()
    local dir = helpers.tmpdir()
    local path = recipe(dir, "local t = T{ overrides = { epchs = 3 } }\n")
    local _, rc, out = run(path)
    assert_one_report(out, rc, path, HEADER_LINES + 1)
    assert.matches(
      "yolotrain: "
        .. path
        .. ":"
        .. (HEADER_LINES + 1)
        .. ": 'epchs' is not a valid yolotrain "
        .. "argument. Similar arguments are i.e. epochs=100.",
      out,
      1,
      true
    )
  end)

  it("of a bad key=value on the command line: one line naming the override, with the typo hint", function()
    local ok, rc, out = helpers.run(
      string.format(
        "cd '%s' && '%s' detect train epchs=3 data=coco8.yaml </dev/null",
        helpers.tmpdir(),
        helpers.yolotrain
      )
    )
    assert.is_false(ok)
    assert.are.equal(1, rc, out)
    assert.are.equal(
      "yolotrain: epchs=3: 'epchs' is not a valid yolotrain argument. Similar arguments are i.e. " .. "epochs=100.\n",
      out
    )
  end)

  it("of a bad key=value given to a recipe (cfg.recipe_overrides): the same one line", function()
    local dir = helpers.tmpdir()
    local path = recipe(dir, "local o = require('yolotrain.cfg').recipe_overrides({}, arg)\nprint('ran')\n")
    local ok, rc, out = helpers.run(string.format("'%s' '%s' epochs=3 imgz=64 </dev/null", helpers.yolotrain, path))
    assert.is_false(ok)
    assert.are.equal(1, rc, out)
    assert.are.equal(
      "yolotrain: imgz=64: 'imgz' is not a valid yolotrain argument. Similar arguments are i.e. " .. "imgsz=640.\n",
      out
    )
  end)
end)
