-- YAML and safetensors from Lua: yt.io.load_yaml / load_yaml_string / dump_yaml / load_safetensors / save_safetensors
local yt = require("yolotrain.core")
local helpers = require("helpers")

local MODEL_YAML = [==[
# Ultralytics YOLOv8 object detection model (same structure as yolov8.yaml)
nc: 80 # number of classes
scales: # model compound scaling constants
  # [depth, width, max_channels]
  n: [0.33, 0.25, 1024]
  s: [0.33, 0.50, 1024]
  x: [1.00, 1.25, 512]

backbone:
  # [from, repeats, module, args]
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, SPPF, [1024, 5]] # 9

head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [-1, 1, nn.Upsample, [None, 2, 'nearest']]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [[15, 18, 21], 1, Detect, [nc]] # Detect(P3, P4, P5)
]==]

local function tmpfile(name) return helpers.tmpdir() .. "/" .. name end

describe("yt.io.load_yaml", function()
  it("reads an Ultralytics model YAML into nested tables", function()
    local path = tmpfile("yolov8.yaml")
    helpers.write_file(path, MODEL_YAML)
    local m = yt.io.load_yaml(path)
    assert.are.equal(80, m.nc)
    assert.is_true(math.type(m.nc) == "integer")
    assert.are.same({ 0.33, 0.25, 1024 }, m.scales.n)
    assert.are.equal(0.5, m.scales.s[2])
    assert.are.equal(1.0, m.scales.x[1])
    assert.are.equal("float", math.type(m.scales.x[1]))
    assert.are.equal(3, #m.backbone)
    assert.are.same({ -1, 1, "Conv", { 64, 3, 2 } }, m.backbone[1])
    assert.are.same({ -1, 3, "C2f", { 128, true } }, m.backbone[2])
    -- None is not a YAML null: it stays the string "None" (parse_model evaluates it)
    assert.are.same({ -1, 1, "nn.Upsample", { "None", 2, "nearest" } }, m.head[1])
    assert.are.same({ -1, 1, "nn.Upsample", { "None", 2, "nearest" } }, m.head[2])
    assert.are.same({ { -1, 6 }, 1, "Concat", { 1 } }, m.head[3])
    assert.are.same({ { 15, 18, 21 }, 1, "Detect", { "nc" } }, m.head[4])
  end)

  it("types scalars like PyYAML (YAML 1.1)", function()
    local v = yt.io.load_yaml_string([[
i: 42
neg: -17
hex: 0x1F
oct: 017
bin: 0b101
under: 1_000
f: 0.01
e1: 1e-3
e2: 1.0e+3
e3: 5E2
dot: 3.
inf: .inf
ninf: -.inf
nan: .nan
t1: true
t2: True
t3: yes
t4: on
f1: false
f2: No
f3: off
n1: null
n2: ~
n3:
s1: "123"
s2: '1.5'
s3: "true"
s4: None
s5: nearest
s6: 1.2.3
s7: 0b2
s8: 09
big: 123456789012345678901234
date: 2024-01-01
time: 1:30
big_time: 99999999999999999999:18
neg_big_time: -99999999999999999999:18
str_tag: !!str 12
float_tag: !!float 3
lit: |
  line1
  line2
]])
    assert.are.equal(42, v.i)
    assert.are.equal("integer", math.type(v.i))
    assert.are.equal(-17, v.neg)
    assert.are.equal(31, v.hex)
    assert.are.equal(15, v.oct)
    assert.are.equal(5, v.bin)
    assert.are.equal(1000, v.under)
    assert.are.equal(0.01, v.f)
    assert.are.equal(1e-3, v.e1)
    assert.are.equal("float", math.type(v.e1))
    assert.are.equal(1000.0, v.e2)
    assert.are.equal(500.0, v.e3)
    assert.are.equal("float", math.type(v.e3))
    assert.are.equal(3.0, v.dot)
    assert.are.equal(math.huge, v.inf)
    assert.are.equal(-math.huge, v.ninf)
    assert.is_true(v.nan ~= v.nan)
    assert.is_true(v.t1 and v.t2 and v.t3 and v.t4)
    assert.are.equal(false, v.f1)
    assert.are.equal(false, v.f2)
    assert.are.equal(false, v.f3)
    assert.is_nil(v.n1)
    assert.is_nil(v.n2)
    assert.is_nil(v.n3)
    assert.are.equal("123", v.s1)
    assert.are.equal("1.5", v.s2)
    assert.are.equal("true", v.s3)
    assert.are.equal("None", v.s4)
    assert.are.equal("nearest", v.s5)
    assert.are.equal("1.2.3", v.s6)
    assert.are.equal("0b2", v.s7)
    assert.are.equal("09", v.s8)
    assert.are.equal("float", math.type(v.big))
    assert.are.equal("2024-01-01", v.date) -- timestamps stay strings
    assert.are.equal(90, v.time) -- YAML 1.1 sexagesimal, as PyYAML
    -- sexagesimal beyond int64 becomes a float (as a long decimal integer does), never a wrapped integer
    assert.are.equal("float", math.type(v.big_time))
    assert.is_true(v.big_time > 5.9e21)
    assert.are.equal("float", math.type(v.neg_big_time))
    assert.is_true(v.neg_big_time < -5.9e21)
    assert.are.equal("12", v.str_tag)
    assert.are.equal(3.0, v.float_tag)
    assert.are.equal("float", math.type(v.float_tag))
    assert.are.equal("line1\nline2\n", v.lit)
  end)

  it("returns each map's keys in file order on request", function()
    local v, order =
      yt.io.load_yaml_string("z: 1\na:\n  y: 2\n  b: null\n  c: [{q: 1, p: 2}]\nm: 3\n", "t", { key_order = true })
    assert.are.same({ "z", "a", "m" }, order[v])
    assert.are.same({ "y", "b", "c" }, order[v.a])
    assert.are.same({ "q", "p" }, order[v.a.c[1]])
    assert.are.equal(1, select("#", yt.io.load_yaml_string("a: 1")))
  end)

  it("keeps sequences dense with yt.io.null and drops null map values", function()
    local v = yt.io.load_yaml_string("a: [1, null, ~, 4]\nb: null\nc: [~]\n")
    assert.are.equal(4, #v.a)
    assert.are.equal(yt.io.null, v.a[2])
    assert.are.equal(yt.io.null, v.a[3])
    assert.are.equal(4, v.a[4])
    assert.is_nil(v.b)
    assert.are.equal(yt.io.null, v.c[1])
    assert.is_nil(yt.io.load_yaml_string(""))
    assert.is_nil(yt.io.load_yaml_string("# only a comment\n"))
    assert.are.equal(7, yt.io.load_yaml_string("7"))
  end)

  it("reads integer keys (data YAML class names), anchors, aliases and merge keys", function()
    local v = yt.io.load_yaml_string([[
names:
  0: person
  1: bicycle
  79: toothbrush
base: &b {lr0: 0.01, momentum: 0.937}
run:
  <<: *b
  momentum: 0.9
list: [&x 3, *x]
]])
    assert.are.equal("person", v.names[0])
    assert.are.equal("toothbrush", v.names[79])
    assert.are.equal(0.01, v.run.lr0)
    assert.are.equal(0.9, v.run.momentum)
    assert.is_nil(v.run["<<"])
    assert.are.same({ 3, 3 }, v.list)
  end)

  it("reports errors with file:line:column", function()
    local path = tmpfile("bad.yaml")
    helpers.write_file(path, "a: 1\nb: [1, 2\nc: 3\n")
    local ok, err = pcall(yt.io.load_yaml, path)
    assert.is_false(ok)
    assert.matches("bad%.yaml:%d+:%d+:", err)
    helpers.write_file(path, "a: 1\n  b: 2\n")
    ok, err = pcall(yt.io.load_yaml, path)
    assert.is_false(ok)
    assert.matches("bad%.yaml:2:%d+:", err)
    ok, err = pcall(yt.io.load_yaml, "/nonexistent/x.yaml")
    assert.is_false(ok)
    assert.matches("/nonexistent/x%.yaml", err)
    ok, err = pcall(yt.io.load_yaml_string, "x: *nope\n", "s.yaml")
    assert.is_false(ok)
    assert.matches("s%.yaml:1:4: unknown alias", err)
    ok, err = pcall(yt.io.load_yaml_string, "x: !!int abc\n", "t.yaml")
    assert.is_false(ok)
    assert.matches("t%.yaml:1:4:.*not a valid !!int", err)
  end)

  it("refuses an alias bomb instead of exhausting memory", function()
    local lines = { "a0: &a0 [x, x, x, x, x, x, x, x, x, x]" }
    for i = 1, 9 do
      lines[#lines + 1] = string.format(
        "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]",
        i,
        i,
        i - 1,
        i - 1,
        i - 1,
        i - 1,
        i - 1,
        i - 1,
        i - 1,
        i - 1,
        i - 1,
        i - 1
      )
    end
    local ok, err = pcall(yt.io.load_yaml_string, table.concat(lines, "\n"), "bomb.yaml")
    assert.is_false(ok)
    assert.matches("too large", err)
  end)
end)

describe("yt.io.dump_yaml", function()
  it("round-trips through load_yaml_string", function()
    local value = {
      task = "detect",
      epochs = 3,
      lr0 = 0.01,
      cos_lr = false,
      name = "",
      amp = true,
      imgsz = 640,
      classes = yt.io.null,
      weird = "a: b # c",
      num_str = "1e-3",
      yes_str = "yes",
      nested = { a = 1, b = { 1.5, "x", true } },
      empty = {},
      backbone = { { -1, 1, "Conv", { 64, 3, 2 } }, { { -1, 6 }, 1, "Concat", { 1 } } },
      maps = { { k = 1, j = "two" }, { z = 0.5 } },
      inf = math.huge,
      small = 1e-20,
      big = 1e20,
      multi = "line1\nline2",
      quote = 'say "hi"',
      names = { [0] = "person", [1] = "bicycle" },
      dash = "-",
      neg = "-foo",
    }
    local text = yt.io.dump_yaml(value)
    local back = yt.io.load_yaml_string(text)
    value.classes = nil -- null map value -> absent
    assert.are.same(value, back)
  end)

  it("follows the given key order and sorts the rest", function()
    local text = yt.io.dump_yaml({ b = 1, a = 2, c = 3, z = 4 }, { "c", "missing", "b" })
    assert.are.equal("c: 3\nb: 1\na: 2\nz: 4\n", text)
  end)

  it("writes floats that read back as floats", function()
    local text = yt.io.dump_yaml({ x = 1.0, y = 0.1, z = 2.5e-7 })
    assert.are.equal("x: 1.0\ny: 0.1\nz: 2.5e-07\n", text)
    local back = yt.io.load_yaml_string(text)
    assert.are.equal("float", math.type(back.x))
  end)

  it("rejects values it cannot write", function()
    assert.has_error(function() yt.io.dump_yaml({ f = print }) end)
    local t = {}
    t.self = t
    assert.has_error(function() yt.io.dump_yaml(t) end)
  end)
end)

describe("safetensors from Lua", function()
  it("loads the parity init weights with metadata", function()
    local ts, meta = yt.io.load_safetensors(helpers.parity_dir .. "/yolov8n_init.safetensors")
    local n = 0
    for _ in pairs(ts) do
      n = n + 1
    end
    assert.are.equal(355, n)
    local dfl = ts["model.22.dfl.conv.weight"]
    assert.are.same({ 1, 16, 1, 1 }, dfl:shape())
    local vals = dfl:tolist()
    for i = 1, 16 do
      assert.are.equal(i - 1, vals[i])
    end
    assert.are.equal("int64", ts["model.0.bn.num_batches_tracked"]:dtype())
    assert.are.equal("8.2.100", meta.ultralytics_version)
  end)

  it("saves a name->tensor table and an array of pairs, and loads them back", function()
    local dir = helpers.tmpdir()
    local a = yt.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    local b = yt.tensor({ 7, 8 }, "int64")
    local c = yt.tensor({ 250, 3 }, "uint8")
    yt.io.save_safetensors(dir .. "/m.safetensors", { ["w.a"] = a, b = b, c = c }, { epoch = 3, note = 'x"y' })
    local ts, meta = yt.io.load_safetensors(dir .. "/m.safetensors")
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, ts["w.a"]:totable())
    assert.are.same({ 7, 8 }, ts.b:totable())
    assert.are.equal("int64", ts.b:dtype())
    assert.are.same({ 250, 3 }, ts.c:totable())
    assert.are.equal("3", meta.epoch)
    assert.are.equal('x"y', meta.note)
    -- deterministic: the same table gives the same bytes
    yt.io.save_safetensors(dir .. "/m2.safetensors", { c = c, b = b, ["w.a"] = a }, { note = 'x"y', epoch = 3 })
    assert.are.equal(helpers.read_file(dir .. "/m.safetensors"), helpers.read_file(dir .. "/m2.safetensors"))

    yt.io.save_safetensors(dir .. "/p.safetensors", { { "z", a }, { "a", b } })
    local ts2, meta2 = yt.io.load_safetensors(dir .. "/p.safetensors")
    assert.are.same({ 7, 8 }, ts2.a:totable())
    assert.are.same({}, meta2)
  end)

  it("raises clean errors", function()
    local dir = helpers.tmpdir()
    local ok, err = pcall(yt.io.load_safetensors, dir .. "/missing.safetensors")
    assert.is_false(ok)
    assert.matches("missing%.safetensors", err)
    helpers.write_file(dir .. "/junk.safetensors", "\255\255\255\255\255\255\255\255junk")
    ok, err = pcall(yt.io.load_safetensors, dir .. "/junk.safetensors")
    assert.is_false(ok)
    assert.matches("junk%.safetensors", err)
    assert.has_error(function() yt.io.save_safetensors(dir .. "/x.safetensors", { a = 1 }) end)
    assert.has_error(function() yt.io.save_safetensors(dir .. "/x.safetensors", { { 1, yt.zeros(2) } }) end)
    assert.has_error(function() yt.io.save_safetensors("/nonexistent/x.safetensors", { a = yt.zeros(2) }) end)
  end)
end)

describe("durable writes", function()
  it("durable_rename replaces the file and leaves no temporary behind", function()
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/f.txt", "old")
    helpers.write_file(dir .. "/f.txt.tmp.1234", "new")
    yt.sys.durable_rename(dir .. "/f.txt.tmp.1234", dir .. "/f.txt")
    assert.are.equal("new", helpers.read_file(dir .. "/f.txt"))
    assert.is_nil(io.open(dir .. "/f.txt.tmp.1234", "r"))
  end)

  it("durable_rename of a missing temporary names it and keeps the old file", function()
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/f.txt", "old")
    local ok, err = pcall(yt.sys.durable_rename, dir .. "/missing.tmp.1", dir .. "/f.txt")
    assert.is_false(ok)
    assert.matches("missing.tmp.1", err, 1, true)
    assert.are.equal("old", helpers.read_file(dir .. "/f.txt"))
  end)

  it("remove_stale_temps removes only the temporaries of processes that no longer exist", function()
    local dir = helpers.tmpdir()
    local p = io.popen("sh -c 'echo $$'")
    local dead = tonumber(p:read("a"))
    p:close() -- that shell has exited: its pid is dead (reuse within this test is vanishingly unlikely)
    local me = yt.sys.getpid()
    for _, n in ipairs({
      "last.safetensors.tmp." .. dead,
      "best.safetensors.old." .. dead,
      "best.safetensors.tmp." .. me,
      "x.tmp.1",
      "keep.safetensors",
      "odd.tmp.12ab",
    }) do
      helpers.write_file(dir .. "/" .. n, "x")
    end
    assert.are.equal(2, yt.sys.remove_stale_temps(dir))
    assert.is_nil(io.open(dir .. "/last.safetensors.tmp." .. dead, "r"))
    assert.is_nil(io.open(dir .. "/best.safetensors.old." .. dead, "r"))
    for _, n in ipairs({ "best.safetensors.tmp." .. me, "x.tmp.1", "keep.safetensors", "odd.tmp.12ab" }) do
      assert.truthy(io.open(dir .. "/" .. n, "r"), n .. " was removed")
    end
  end)
end)
