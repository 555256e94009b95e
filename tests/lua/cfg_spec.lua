local cfg = require("yolotrain.cfg")
local helpers = require("helpers")

describe("training arguments", function()
  it("start from Ultralytics' defaults", function()
    local a = cfg.get_cfg({})
    assert.are.equal(100, a.epochs)
    assert.are.equal(0.01, a.lr0)
    assert.are.equal(0.937, a.momentum)
    assert.are.equal(7.5, a.box)
    assert.are.equal(10, a.close_mosaic)
    assert.are.equal("auto", a.optimizer)
    assert.is_nil(a.model)
  end)

  it("reject an unknown key with the closest valid keys", function()
    local ok, err = pcall(cfg.get_cfg, { imgs = 320 })
    assert.is_false(ok)
    assert.matches("'imgs' is not a valid yolotrain argument", err, 1, true)
    assert.matches("imgsz=640", err, 1, true)
  end)

  it("reject wrong types and out-of-range fractions", function()
    local ok, err = pcall(cfg.get_cfg, { epochs = "ten" })
    assert.is_false(ok)
    assert.matches("'epochs=ten' is of invalid type string", err, 1, true)
    ok, err = pcall(cfg.get_cfg, { lr0 = 2 })
    assert.is_false(ok)
    assert.matches("between 0.0 and 1.0", err, 1, true)
    ok, err = pcall(cfg.get_cfg, { epochs = 2.5 })
    assert.is_false(ok)
    ok, err = pcall(cfg.get_cfg, { rect = 1 })
    assert.is_false(ok)
    assert.matches("Valid 'rect' types are bool", err, 1, true)
  end)
end)

describe("command-line grammar", function()
  it("parses key=value with Ultralytics' value rules", function()
    local task, mode, o = cfg.parse_args({
      "detect",
      "train",
      "epochs=3",
      "lr0=0.02",
      "rect=true",
      "name=none",
      "classes=[0,2]",
      "model=yolov8n.yaml",
      "cos_lr=False",
    })
    assert.are.equal("detect", task)
    assert.are.equal("train", mode)
    assert.are.equal(3, o.epochs)
    assert.are.equal(math.type(3), math.type(o.epochs))
    assert.are.equal(0.02, o.lr0)
    assert.is_true(o.rect)
    assert.is_nil(o.name)
    assert.are.same({ 0, 2 }, o.classes)
    assert.are.equal("yolov8n.yaml", o.model)
    assert.is_false(o.cos_lr)
  end)

  it("joins `a = b` spacing and treats a bare boolean key as true", function()
    local _, _, o = cfg.parse_args({ "imgsz", "=", "320", "batch=", "8", "epochs", "=5", "rect" })
    assert.are.equal(320, o.imgsz)
    assert.are.equal(8, o.batch)
    assert.are.equal(5, o.epochs)
    assert.is_true(o.rect)
  end)

  it("rejects unknown keys and wrong types", function()
    local ok, err = pcall(cfg.parse_args, { "epoch=3" })
    assert.is_false(ok)
    assert.matches("'epoch' is not a valid yolotrain argument", err, 1, true)
    assert.matches("epochs=100", err, 1, true)
    ok, err = pcall(cfg.parse_args, { "epochs=abc" })
    assert.is_false(ok)
    assert.matches("invalid type", err, 1, true)
    ok, err = pcall(cfg.parse_args, { "bogus" })
    assert.is_false(ok)
  end)
end)

describe("cfg=<file.yaml>", function()
  local dir = helpers.tmpdir()

  it("reads a run's args.yaml back, each key checked, nulls and its own cfg left out", function()
    local path = dir .. "/args.yaml"
    helpers.write_file(path, "epochs: 7\nlr0: 1e-3\nimgsz: [320, 256]\nname: null\ncfg: other.yaml\nsave: false\n")
    local a = cfg.load_args_yaml(path)
    assert.are.same({ epochs = 7, lr0 = 0.001, imgsz = { 320, 256 }, save = false }, a)
    assert.are.equal("integer", math.type(a.epochs))
  end)

  it("lets the other arguments of the command line win over the file's", function()
    local path = dir .. "/base.yaml"
    helpers.write_file(path, "epochs: 7\nbatch: 4\n")
    local out = cfg.apply_cfg_file({ cfg = path, epochs = 2 })
    assert.are.same({ epochs = 2, batch = 4 }, out)
    local same = { epochs = 2 }
    assert.are.equal(same, cfg.apply_cfg_file(same))
  end)

  it("refuses a file that is not a mapping, a wrong type, an unknown key: naming the file", function()
    for text, msg in pairs({
      ["- a\n- b\n"] = "expected a mapping of argument: value",
      ["epochs: many\n"] = "'epochs=many' is of invalid type string",
      ["epochs: 0\n"] = "'epochs=0' is an invalid value",
      ["epoch: 3\n"] = "'epoch' is not a valid yolotrain argument. Similar arguments are i.e. epochs=100",
      ["a: [\n"] = "bad.yaml:",
    }) do
      local path = dir .. "/bad.yaml"
      helpers.write_file(path, text)
      local ok, err = pcall(cfg.load_args_yaml, path)
      assert.is_false(ok, text)
      assert.are.equal("cfg=" .. path .. ": ", err:sub(1, #path + 6))
      assert.is_truthy(err:find(msg, 1, true), err)
    end
    local ok, err = pcall(cfg.load_args_yaml, dir .. "/missing.yaml")
    assert.is_false(ok)
    assert.matches("missing%.yaml", err)
  end)
end)

describe("a checkpoint's metadata given to resume=", function()
  local checkpoint = require("yolotrain.engine.checkpoint")

  it("refuses counters that are not integers in range, naming the file and key", function()
    assert.are.equal(4, checkpoint.counter("c.st", { epoch = "4" }, "epoch", -1))
    assert.are.equal(0, checkpoint.counter("c.st", {}, "updates", 0, 0))
    for _, raw in ipairs({ "nan", "-5", "1e12", "2.5", "inf", "" }) do
      local ok, err = pcall(checkpoint.counter, "c.st", { epoch = raw }, "epoch", -1)
      assert.is_false(ok, raw)
      assert.are.equal(string.format("resume=c.st: checkpoint metadata 'epoch' is %q, not an integer >= -1", raw), err)
    end
  end)

  it("checks train_args as the command line does", function()
    assert.are.same({ epochs = 3 }, checkpoint.train_args("c.st", { train_args = '{"epochs": 3}' }))
    local ok, err = pcall(checkpoint.train_args, "c.st", { train_args = '{"epochs": 0}' })
    assert.is_false(ok)
    assert.are.equal(
      "resume=c.st: checkpoint train_args: 'epochs=0' is an invalid value. Valid 'epochs' values are "
        .. "integers >= 1.",
      err
    )
    ok, err = pcall(checkpoint.train_args, "c.st", { train_args = "[1" })
    assert.is_false(ok)
    assert.matches("'train_args' is not a JSON object", err)
  end)

  it("takes at most the optimizer's groups, each a set of finite numbers", function()
    local groups = checkpoint.optimizer_groups(
      "c.st",
      { optimizer_groups = '[{"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005, "other": "x"}]' },
      3
    )
    assert.are.same({ { lr = 0.01, momentum = 0.9, weight_decay = 0.0005 } }, groups)
    assert.are.same({}, checkpoint.optimizer_groups("c.st", {}, 3))
    for text, msg in pairs({
      ["[{}, {}, {}, {}]"] = "has 4 groups, the optimizer 3",
      ['[{"lr": "fast"}]'] = "group 1: lr is fast, not a finite number",
      ['[{"lr": 1e999}]'] = "group 1: lr is inf, not a finite number",
      ["[7]"] = "group 1 is not an object",
      ['{"lr"'] = "is not a JSON array",
    }) do
      local ok, err = pcall(checkpoint.optimizer_groups, "c.st", { optimizer_groups = text }, 3)
      assert.is_false(ok, text)
      assert.are.equal("resume=c.st: checkpoint metadata 'optimizer_groups' " .. msg, err)
    end
  end)
end)
