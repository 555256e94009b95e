-- Bad input through the executable: one clear message naming the file, key or line, exit code 1, no crash.
local yt = require("yolotrain.core")
local helpers = require("helpers")

local function run_lua(dir, code)
  helpers.write_file(dir .. "/recipe.lua", code)
  local ok, rc, out = helpers.run(string.format("cd '%s' && '%s' recipe.lua", dir, helpers.yolotrain))
  return rc, out
end

describe("bad input through yolotrain", function()
  local dir = helpers.tmpdir()

  it("an unknown module in a model YAML", function()
    helpers.write_file(dir .. "/bad.yaml", "nc: 3\nbackbone:\n  - [-1, 1, Frobnicate, [16]]\nhead: []\n")
    local rc, out = run_lua(dir, 'require("yolotrain.nn.tasks").Detection_Model("bad.yaml")\n')
    assert.are.equal(1, rc)
    assert.matches("^yolotrain: bad.yaml: backbone layer 0: unknown module 'Frobnicate'", out)
  end)

  it("a YAML syntax error", function()
    helpers.write_file(dir .. "/broken.yaml", "nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]\n")
    local rc, out = run_lua(dir, 'require("yolotrain.nn.tasks").Detection_Model("broken.yaml")\n')
    assert.are.equal(1, rc)
    assert.matches("^yolotrain: broken.yaml:%d+:%d+: ", out)
  end)

  it("a safetensors file with a lying header", function()
    -- header length says 1000 bytes, the file has 20
    helpers.write_file(dir .. "/lying.safetensors", string.pack("<I8", 1000) .. '{"a":{"dtype":"F32"}}')
    local rc, out = run_lua(dir, 'require("yolotrain").load_safetensors("lying.safetensors")\n')
    assert.are.equal(1, rc)
    assert.matches("^yolotrain: recipe.lua:1: [^\n]*lying.safetensors", out)
  end)

  it("a shape-mismatched state dict", function()
    local rc, out = run_lua(
      dir,
      [[
local yt = require("yolotrain")
local m = require("yolotrain.nn.tasks").Detection_Model("yolov8n.yaml", { nc = 80 })
local sd = m:state_dict()
local bad = {}
for k, v in pairs(sd) do bad[k] = v end
bad["model.0.conv.weight"] = yt.zeros({ 2, 2 })
m:load_state_dict(bad)
]]
    )
    assert.are.equal(1, rc)
    assert.matches("^yolotrain: recipe.lua:7: load_state_dict %(strict%)", out)
    assert.matches("model.0.conv.weight: checkpoint %[2, 2%], model %[16, 3, 3, 3%]", out)
  end)

  it("a Lua error in a recipe", function()
    local rc, out = run_lua(dir, "local x = nil\nprint(x.field)\n")
    assert.are.equal(1, rc)
    assert.matches("^yolotrain: recipe.lua:2: attempt to index", out)
  end)
  describe("settings out of range on the command line", function()
    for _, case in ipairs({
      { "epochs=0", "'epochs=0' is an invalid value. Valid 'epochs' values are integers >= 1" },
      { "batch=0", "'batch=0' is an invalid value. Valid 'batch' values are numbers >= 1 (or -1" },
      { "batch=-5", "'batch=-5' is an invalid value" },
      { "workers=-3", "'workers=-3' is an invalid value. Valid 'workers' values are integers >= 0" },
    }) do
      it(case[1] .. ": one line, exit 1, no run directory", function()
        local cwd = helpers.tmpdir()
        local ok, rc, out = helpers.run(
          string.format(
            "cd '%s' && '%s' detect train data=shapes model=yolov8n.yaml %s",
            cwd,
            helpers.yolotrain,
            case[1]
          )
        )
        assert.are.equal(1, rc)
        assert.are.equal("yolotrain: " .. case[2], out:sub(1, #case[2] + 11))
        assert.is_nil((out:gsub("\n$", "")):find("\n"), "more than one line: " .. out)
        assert.is_nil(io.open(cwd .. "/runs", "r"), "a run directory was created")
      end)
    end

    it("cfg=<file.yaml> with a bad key: one line naming the file and key, no run directory", function()
      local cwd = helpers.tmpdir()
      helpers.write_file(cwd .. "/args.yaml", "epochs: 3\nepoch: 5\n")
      local ok, rc, out =
        helpers.run(string.format("cd '%s' && '%s' detect train data=shapes cfg=args.yaml", cwd, helpers.yolotrain))
      assert.are.equal(1, rc)
      assert.are.equal(
        "yolotrain: cfg=args.yaml: 'epoch' is not a valid yolotrain argument.",
        out:match("^[^\n]*"):sub(1, 68)
      )
      assert.is_nil(io.open(cwd .. "/runs", "r"), "a run directory was created")
    end)

    it("batch=-1 is AutoBatch: the CPU default batch size, as Ultralytics on a CPU", function()
      local cfg = require("yolotrain.cfg")
      local logged
      assert.are.equal(cfg.defaults.autobatch_cpu, cfg.train_batch_size(-1, function(m) logged = m end))
      assert.matches("AutoBatch", logged)
      assert.are.equal(cfg.defaults.autobatch_cpu, cfg.train_batch_size(0.6))
      assert.are.equal(8, cfg.train_batch_size(8))
      assert.are.equal(-1, cfg.check_value("batch", -1))
    end)
  end)
end)
