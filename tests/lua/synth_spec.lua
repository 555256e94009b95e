-- The embedded default dataset through Lua: yt.synth.generate / synth_render / synth_is_complete and
-- datasets/shapes.lua.
local helpers = require("helpers")
local yt = require("yolotrain.core")

local function list(dir)
  local out = {}
  local p = io.popen("ls '" .. dir .. "' 2>/dev/null")
  for l in p:lines() do
    out[#out + 1] = l
  end
  p:close()
  return out
end

local function lines(path)
  local t = {}
  for l in io.lines(path) do
    t[#t + 1] = l
  end
  return t
end

local SMALL = { seed = 3, n_train = 10, n_val = 4, imgsz = 64 }

describe("yt.synth.generate", function()
  local dir
  setup(function() dir = helpers.tmpdir() .. "/shapes" end)
  teardown(function() os.execute("rm -rf '" .. dir:match("(.*)/shapes$") .. "'") end)

  it("writes images, labels and a data.yaml that yt.io.load_yaml reads", function()
    local yaml, generated = yt.synth.generate(dir, SMALL)
    assert.are.equal(dir .. "/data.yaml", yaml)
    assert.is_true(generated)
    local d = yt.io.load_yaml(yaml)
    assert.are.equal("images/train", d.train)
    assert.are.equal("images/val", d.val)
    assert.are.equal(4, d.nc)
    assert.are.same({ [0] = "circle", "square", "triangle", "cross" }, d.names)
    assert.are.equal("/", d.path:sub(1, 1))
    assert.truthy(d.path:match("/shapes$"))
    assert.are.equal(10, #list(dir .. "/images/train"))
    assert.are.equal(10, #list(dir .. "/labels/train"))
    assert.are.equal(4, #list(dir .. "/images/val"))
    assert.are.equal(4, #list(dir .. "/labels/val"))
    assert.are.equal("000009.png", list(dir .. "/images/train")[10])
  end)

  it("labels are `cls cx cy w h` inside [0, 1] and equal the rendered boxes", function()
    for i = 0, 9 do
      local img, boxes = yt.synth.render(SMALL, "train", i)
      assert.are.same({ 64, 64, 3 }, img:shape())
      assert.are.equal("uint8", img:dtype())
      local ls = lines(string.format("%s/labels/train/%06d.txt", dir, i))
      assert.are.equal(#boxes, #ls)
      assert.is_true(#ls >= 1 and #ls <= 4)
      for k, l in ipairs(ls) do
        local c, cx, cy, w, h = l:match("^(%d) (%S+) (%S+) (%S+) (%S+)$")
        assert.truthy(c, l)
        c, cx, cy, w, h = tonumber(c), tonumber(cx), tonumber(cy), tonumber(w), tonumber(h)
        assert.is_true(c >= 0 and c < 4)
        for _, v in ipairs({ cx, cy, w, h }) do
          assert.is_true(v >= 0 and v <= 1)
        end
        assert.is_true(w > 0.09 and h > 0.05 and w <= 0.4501 and h <= 0.4501, l)
        local b = boxes[k]
        assert.are.equal(b[1], c)
        assert.is_true(math.abs((b[2] + b[4]) / 2 / 64 - cx) < 1e-5)
        assert.is_true(math.abs((b[5] - b[3]) / 64 - h) < 1e-5)
      end
    end
  end)

  it("is deterministic and reuses a complete dataset", function()
    assert.is_true(yt.synth.is_complete(dir, SMALL))
    assert.is_false(yt.synth.is_complete(dir, { seed = 4, n_train = 10, n_val = 4, imgsz = 64 }))
    local before = helpers.read_file(dir .. "/images/train/000003.png")
    local yaml, generated = yt.synth.generate(dir, SMALL)
    assert.are.equal(dir .. "/data.yaml", yaml)
    assert.is_false(generated)
    local other = helpers.tmpdir() .. "/again"
    assert.is_true(select(2, yt.synth.generate(other, SMALL)))
    assert.are.equal(before, helpers.read_file(other .. "/images/train/000003.png"))
    assert.are.equal(
      helpers.read_file(dir .. "/labels/val/000002.txt"),
      helpers.read_file(other .. "/labels/val/000002.txt")
    )
    os.execute("rm -rf '" .. other:match("(.*)/again$") .. "'")
  end)

  it("the background alone differs from the image only inside the boxes", function()
    local full, boxes = yt.synth.render(SMALL, "val", 1)
    local bg = yt.synth.render(SMALL, "val", 1, false)
    local f, g = full:totable(), bg:totable()
    local diff_in, diff_out = 0, 0
    for y = 1, 64 do
      for x = 1, 64 do
        local d = 0
        for c = 1, 3 do
          d = d + math.abs(f[y][x][c] - g[y][x][c])
        end
        local near = false
        for _, b in ipairs(boxes) do
          if x > b[2] - 1 and x - 1 < b[4] + 1 and y > b[3] - 1 and y - 1 < b[5] + 1 then near = true end
        end
        if d > 0 then
          if near then
            diff_in = diff_in + 1
          else
            diff_out = diff_out + 1
          end
        end
      end
    end
    assert.are.equal(0, diff_out)
    assert.is_true(diff_in > 20)
  end)

  it("takes classes as a count or a list of shape names", function()
    local d2 = helpers.tmpdir()
    local y = yt.synth.generate(d2 .. "/two", { n_train = 2, n_val = 1, imgsz = 64, classes = { "ring", "triangle" } })
    assert.are.same({ [0] = "ring", "triangle" }, yt.io.load_yaml(y).names)
    y = yt.synth.generate(d2 .. "/five", { n_train = 2, n_val = 1, imgsz = 64, classes = 5 })
    assert.are.equal(5, yt.io.load_yaml(y).nc)
    assert.are.same({ "circle", "square", "triangle", "cross", "ring" }, yt.synth.shapes)
    assert.is_true(math.type(yt.synth.version) == "integer")
    os.execute("rm -rf '" .. d2 .. "'")
  end)

  it("rejects bad options with clear messages", function()
    local function err(opts)
      local ok, e = pcall(yt.synth.generate, "/tmp/unused-synth-dir", opts)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.truthy(err({ n_trian = 3 }):match("unknown synth option 'n_trian'"))
    assert.truthy(err({ imgsz = 8 }):match("imgsz"))
    assert.truthy(err({ classes = { "hexagon" } }):match("unknown shape 'hexagon'"))
    assert.truthy(err({ classes = 9 }):match("classes"))
    assert.truthy(err({ seed = -1 }):match("seed"))
    local f = io.open("/tmp/unused-synth-dir")
    assert.is_nil(f)
  end)
end)

describe("datasets/shapes.lua", function()
  it("generates on first use with one line of output, then returns the same yaml silently", function()
    local ensure = dofile(helpers.repo_dir .. "datasets/shapes.lua")
    assert.are.equal("function", type(ensure))
    local d = helpers.tmpdir()
    local out = {}
    local real_write = io.write
    io.write = function(...)
      for _, s in ipairs({ ... }) do
        out[#out + 1] = tostring(s)
      end
    end
    local ok, y1 = pcall(ensure, d .. "/shapes/", SMALL)
    local first = table.concat(out)
    out = {}
    local ok2, y2 = pcall(ensure, d .. "/shapes", SMALL)
    io.write = real_write
    assert.is_true(ok, y1)
    assert.is_true(ok2, y2)
    assert.are.equal(d .. "/shapes/data.yaml", y1)
    assert.are.equal(y1, y2)
    assert.truthy(
      first:match("^Generating the shapes dataset %(10 train %+ 4 val images, 64x64%) into .*done %([%d.]+ s%)\n$"),
      first
    )
    local _, nl = first:gsub("\n", "")
    assert.are.equal(1, nl)
    assert.are.equal("", table.concat(out))
    -- the engine's dataset resolver accepts it as is
    local data = require("yolotrain.data")
    local info = data.check_det_dataset(y1)
    assert.are.equal(4, info.nc)
    assert.truthy(info.train:match("/shapes/images/train$"))
    os.execute("rm -rf '" .. d .. "'")
  end)
end)
