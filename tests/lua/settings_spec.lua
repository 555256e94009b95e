-- User settings (lua/yolotrain/utils/settings.lua) and `yolotrain settings`: where the file lives, defaults outside
-- the source tree, values checked by kind (folders, booleans), updates written atomically, and the engine using
-- runs_dir and datasets_dir (tensorboard_spec.lua covers the tensorboard setting's effect).
local helpers = require("helpers")

-- Runs yolotrain with a private config folder (and data home) so the user's own settings never take part.
local function yolotrain(env, args) return helpers.run(string.format("env %s '%s' %s", env, helpers.yolotrain, args)) end

describe("settings", function()
  local dir, env
  before_each(function()
    dir = helpers.tmpdir()
    env = string.format("YOLOTRAIN_CONFIG_DIR='%s/cfg' XDG_DATA_HOME='%s/data'", dir, dir)
  end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("lists every setting with defaults under the XDG data home, and writes no file until one changes", function()
    local ok, _, out = yolotrain(env, "settings")
    assert.is_true(ok, out)
    assert.matches("Settings: " .. dir .. "/cfg/settings.yaml %(not written yet", out)
    assert.matches("datasets_dir%s+" .. dir .. "/data/yolotrain/datasets\n", out)
    assert.matches("weights_dir%s+" .. dir .. "/data/yolotrain/weights\n", out)
    assert.matches("runs_dir%s+runs\n", out)
    assert.matches("tensorboard%s+true\n", out)
    assert.is_nil(io.open(dir .. "/cfg/settings.yaml"))
  end)

  it("takes XDG_CONFIG_HOME when YOLOTRAIN_CONFIG_DIR is unset", function()
    local ok, _, out = yolotrain(string.format("-u YOLOTRAIN_CONFIG_DIR XDG_CONFIG_HOME='%s/xdg'", dir), "settings")
    assert.is_true(ok, out)
    assert.matches("Settings: " .. dir .. "/xdg/yolotrain/settings.yaml", out)
  end)

  it("writes key=value changes (relative folders made absolute), keeps them, and resets", function()
    local ok, _, out = yolotrain(env, "settings datasets_dir=rel/ds runs_dir=/tmp/yt_runs_x")
    assert.is_true(ok, out)
    local text = helpers.read_file(dir .. "/cfg/settings.yaml")
    assert.matches("datasets_dir: /.-/rel/ds\n", text)
    assert.matches("runs_dir: /tmp/yt_runs_x\n", text)
    ok, _, out = yolotrain(env, "settings")
    assert.matches("runs_dir%s+/tmp/yt_runs_x\n", out)
    ok, _, out = yolotrain(env, "settings reset")
    assert.is_true(ok, out)
    assert.matches("runs_dir%s+runs\n", out)
    assert.matches("runs_dir: runs\n", helpers.read_file(dir .. "/cfg/settings.yaml"))
  end)

  it("refuses an unknown key and a malformed file, naming them, and leaves the file as it was", function()
    yolotrain(env, "settings runs_dir=/tmp/keep")
    local before = helpers.read_file(dir .. "/cfg/settings.yaml")
    local ok, rc, out = yolotrain(env, "settings run_dir=/x")
    assert.is_false(ok)
    assert.equals(1, rc)
    assert.matches(
      "'run_dir' is not a setting; settings are settings_version, datasets_dir, weights_dir, runs_dir, "
        .. "tensorboard",
      out
    )
    assert.equals(before, helpers.read_file(dir .. "/cfg/settings.yaml"))
    helpers.write_file(dir .. "/cfg/settings.yaml", "runs_dir: [1, 2\n")
    ok, rc, out = yolotrain(env, "settings")
    assert.is_false(ok)
    assert.matches(dir .. "/cfg/settings.yaml", out, 1, true)
    helpers.write_file(dir .. "/cfg/settings.yaml", "datasets_dir: 3\n")
    ok, rc, out = yolotrain(env, "settings")
    assert.is_false(ok)
    assert.matches("settings.yaml: 'datasets_dir' must be a folder name", out, 1, true)
  end)

  it("checks each setting by its kind: tensorboard is true or false, from the command line or the file", function()
    local ok, _, out = yolotrain(env, "settings tensorboard=false")
    assert.is_true(ok, out)
    assert.matches("tensorboard%s+false\n", out)
    assert.matches("tensorboard: false\n", helpers.read_file(dir .. "/cfg/settings.yaml"))
    ok, _, out = yolotrain(env, "settings tensorboard=True")
    assert.is_true(ok, out)
    assert.matches("tensorboard%s+true\n", out)
    local before = helpers.read_file(dir .. "/cfg/settings.yaml")
    local rc
    ok, rc, out = yolotrain(env, "settings tensorboard=maybe")
    assert.is_false(ok)
    assert.equals(1, rc)
    assert.matches("'tensorboard' must be true or false, not maybe", out, 1, true)
    assert.equals(before, helpers.read_file(dir .. "/cfg/settings.yaml"))
    -- a folder is not a boolean, nor a boolean a folder
    ok, _, out = yolotrain(env, "settings runs_dir=")
    assert.is_false(ok)
    assert.matches("'runs_dir' must be a folder name, not ", out, 1, true)
    helpers.write_file(dir .. "/cfg/settings.yaml", "tensorboard: 3\n")
    ok, _, out = yolotrain(env, "settings")
    assert.is_false(ok)
    assert.matches(dir .. "/cfg/settings.yaml: 'tensorboard' must be true or false, not 3", out, 1, true)
    helpers.write_file(dir .. "/cfg/settings.yaml", "weights_dir: true\n")
    ok, _, out = yolotrain(env, "settings")
    assert.is_false(ok)
    assert.matches("settings.yaml: 'weights_dir' must be a folder name, not true", out, 1, true)
  end)

  it("puts run directories under runs_dir and generated datasets under datasets_dir", function()
    yolotrain(env, string.format("settings runs_dir='%s/myruns' datasets_dir='%s/myds'", dir, dir))
    local code = string.format(
      [[
      local utils = require('yolotrain.utils')
      io.write(utils.run_dir({ task = 'detect' }, 'train'), '\n')
      io.write(utils.run_dir({ task = 'detect', project = 'p' }, 'val'), '\n')
      local yaml = dofile('%sdatasets/shapes.lua')(nil, { n_train = 2, n_val = 1, imgsz = 64 })
      io.write(yaml, '\n')]],
      helpers.repo_dir
    )
    local ok, _, out = yolotrain(env, '-e "' .. code:gsub('"', '\\"') .. '"')
    assert.is_true(ok, out)
    assert.matches(dir .. "/myruns/detect/train\n", out, 1, true)
    assert.matches("\np/val\n", out, 1, true)
    assert.matches(dir .. "/myds/shapes/data.yaml\n", out, 1, true)
    assert.is_not_nil(io.open(dir .. "/myds/shapes/data.yaml"))
  end)
end)
