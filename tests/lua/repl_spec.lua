-- What the REPLs show and offer: repr of tables, classes, tensors and models; help(); completion; integer keys.
local yt = require("yolotrain.core")
local repl = require("yolotrain.repl")
local class = require("yolotrain.class")

describe("repl.repr", function()
  it("shows nested tables within a bounded depth and width, and marks cycles", function()
    assert.are.equal('{ 1, 2, { a = 1, b = { c = {...1} } }, x = "s" }',
      repl.repr({ 1, 2, { a = 1, b = { c = { d = { e = 1 } } } }, x = "s" }))
    local wide = {}
    for i = 1, 30 do wide[i] = i end
    assert.matches("24,%s+%.%.%. %(6 more%)", repl.repr(wide))
    local t = { name = "loop" }
    t.self = t
    assert.are.equal('{ name = "loop", self = <cycle> }', repl.repr(t))
    assert.are.equal('{ [3.5] = 1, ["a b"] = true }', repl.repr({ ["a b"] = true, [3.5] = 1 }))
  end)

  it("names class instances and classes, and summarises tensors", function()
    local Point = class.Object:extend("Point")
    function Point:init(x) self.x = x end
    assert.are.equal("Point { x = 1 }", repl.repr(Point(1)))
    assert.are.equal("class Point", repl.repr(Point))
    local values = {}
    for i = 1, 100 do values[i] = i - 1.0 end
    local r = repl.repr(yt.tensor(values))
    assert.matches("^tensor %[100%] float32", r)
    assert.matches("min 0 max 99 mean 49.5", r, 1, true)
  end)

  it("shows a model as its summary line and finds layers by integer index", function()
    local tasks = require("yolotrain.nn.tasks")
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 4, verbose = false })
    assert.matches("^YOLOv8n summary: 225 layers, [%d,]+ parameters", repl.repr(m))
    assert.are.equal(m.model["22"], m.model[22])
    assert.matches("^Detect%(3 children, %d+ parameters%)$", repl.repr(m.model[22]))
  end)
end)

describe("repl.help", function()
  it("lists the commands, and an object's methods with the reference's descriptions", function()
    local h = repl.help()
    for _, c in ipairs({ "pause()", "cont()", "save()", "stop()", "trainer:set{k = v, ...}" }) do
      assert.matches(c, h, 1, true)
    end
    local fake = require("fake_training")
    local T = fake.make_trainer_class({ nb = 1 })
    local dir = require("helpers").tmpdir()
    local t = T{ overrides = { model = fake.tiny_yaml(dir), data = "fake", project = dir, name = "h", epochs = 1 } }
    local th = repl.help(t)
    assert.matches("^Test_Trainer %(Test_Trainer < Detection_Trainer < Engine_Trainer", th)
    assert.matches(":set%s+`trainer:set{key = value, ...}`", th)
    assert.matches(":request_stop%s+Ends training", th)
    assert.matches("%.epochs%s+1", th)
  end)
end)

describe("repl.complete", function()
  it("completes globals, fields, methods and REPL names", function()
    local env = setmetatable({}, { __index = function(_, k) return ({ trainer = { args = {}, arm = 1 } })[k] end,
      __names = { { trainer = true } } })
    assert.are.same({ "trainer.args", "trainer.arm" }, repl.complete("trainer.ar", env))
    assert.are.same({ "trainer" }, repl.complete("trai", env))
    local got = repl.complete("string.fo", env)
    assert.are.same({ "string.format" }, got)
    local Point = class.Object:extend("Point2")
    function Point:norm() return 0 end
    assert.are.same({ "p:norm" }, repl.complete("p:no", { p = Point() }))
    local tasks = require("yolotrain.nn.tasks")
    local m = tasks.Detection_Model("yolov8n.yaml", { nc = 4, verbose = false })
    assert.are.same({ "m.model.22.cv2", "m.model.22.cv3" }, repl.complete("m.model.22.cv", { m = m }))
  end)
end)
