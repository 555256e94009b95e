-- Datasets as classes: a subclass overrides a step of the build (get_labels, build_transforms, load_image, set_rect,
-- close_mosaic) and the loader's batches show it.
local helpers = require("helpers")
local data = require("yolotrain.data")
local yt = require("yolotrain.core")

data.log = function() end
local info = data.check_det_dataset(helpers.datasets_dir .. "/coco128")

local function build(Cls, cfg, mode, batch, rect)
  return data.build_yolo_dataset(
    cfg or { imgsz = 64 },
    info.val,
    batch or 8,
    info,
    mode or "val",
    rect or false,
    32,
    Cls
  )
end

-- every batch of one epoch (no shuffle)
local function epoch(ds, batch, workers)
  local loader = data.build_dataloader(ds, batch or 8, workers or 0, false, -1, 5)
  local out = {}
  for b in loader do
    out[#out + 1] = b
  end
  return out, loader
end

local function count(t, x)
  local n = 0
  for _, v in ipairs(t) do
    n = n + (v == x and 1 or 0)
  end
  return n
end

describe("data.Dataset subclasses", function()
  it("a get_labels override (filter + class remap) is what the loader's batches hold", function()
    local Few, Base = data.Dataset:extend("Few")
    function Few:get_labels()
      local kept = {}
      for _, l in ipairs(Base.get_labels(self)) do
        if l.cls:numel() >= 3 then
          local c = {}
          for k, v in ipairs(l.cls:tolist()) do
            c[k] = { v % 5 }
          end
          l.cls = yt.tensor(c)
          kept[#kept + 1] = l
        end
      end
      return kept
    end
    local stock = build()
    local want_files, want_cls = {}, {}
    for i = 1, #stock do
      local l = stock:labels(i)
      if l.cls:numel() >= 3 then
        want_files[l.im_file] = true
        for _, v in ipairs(l.cls:tolist()) do
          want_cls[#want_cls + 1] = v % 5
        end
      end
    end
    local ds = build(Few)
    assert.is_true(ds:is_instance(data.Dataset))
    assert.is_true(#ds > 10 and #ds < #stock, "the filter kept " .. #ds .. " of " .. #stock)
    local files, cls = 0, {}
    for _, b in ipairs(epoch(ds)) do
      for _, f in ipairs(b.im_file) do
        assert.is_true(want_files[f], f .. " should have been filtered out")
        files = files + 1
      end
      for _, v in ipairs(b.cls:tolist()) do
        cls[#cls + 1] = v
      end
    end
    assert.are.equal(#ds, files)
    assert.are.same(want_cls, cls) -- every kept box, remapped, in order (val letterbox drops none)
    assert.is_true(count(cls, 0) > 0 and count(cls, 4) + count(cls, 3) > 0)
  end)

  it("a build_transforms override changes the pipeline, and the order of its steps matters", function()
    local function with(list)
      local C = data.Dataset:extend("T")
      function C:build_transforms() return list end
      return epoch(build(C, { imgsz = 64 }, "train"))[1]
    end
    local plain = with({ { "letterbox", scaleup = true } })
    local flipped = with({ { "letterbox", scaleup = true }, { "fliplr", p = 1.0 } })
    local mosaic = with({ { "mosaic", p = 1.0 }, { "letterbox", scaleup = true } })
    local late = with({ { "letterbox", scaleup = true }, { "mosaic", p = 1.0 } })
    assert.are.same({ 8, 3, 64, 64 }, plain.img:shape())
    -- fliplr p=1 mirrors every image and box
    local a, b = plain.img:tolist(), flipped.img:tolist()
    local W, mirrored = 64, true
    for i = 1, #a, W do
      for x = 0, W - 1 do
        if a[i + x] ~= b[i + W - 1 - x] then mirrored = false end
      end
    end
    assert.is_true(mirrored, "fliplr p=1 must mirror every row")
    local pb, fb = plain.bboxes:tolist(), flipped.bboxes:tolist()
    assert.is_true(#pb > 0)
    for k = 1, #pb, 4 do
      assert.is_true(math.abs(pb[k] - (1 - fb[k])) < 1e-5)
    end
    -- a mosaic without the perspective crop is a 2s x 2s canvas; after the letterbox it never applies
    assert.are.same({ 8, 3, 128, 128 }, mosaic.img:shape())
    assert.are.same(plain.img:tolist(), late.img:tolist())
    -- a step before the letterbox (other than a mosaic) is refused with a message naming it
    local Bad = data.Dataset:extend("Bad")
    function Bad:build_transforms() return { { "fliplr", p = 0.5 }, { "letterbox", scaleup = true } } end
    local ok, err = pcall(build, Bad)
    assert.is_false(ok)
    assert.matches("step 1 %(fliplr%) comes before the letterbox", tostring(err))
    local Missing = data.Dataset:extend("Missing")
    function Missing:build_transforms() return { { "letterbox" } } end
    ok, err = pcall(build, Missing)
    assert.is_false(ok)
    assert.matches("option 'scaleup' is required", tostring(err), 1, true)
  end)

  it("a Lua load_image runs on the main thread and its images are what the batches hold", function()
    local Blank, Base = data.Dataset:extend("Blank")
    Blank.calls = 0
    function Blank:load_image(i)
      Blank.calls = Blank.calls + 1
      local img = Base.load_image(self, i) -- the stock image, for its size
      local s = img:shape()
      return yt.zeros({ s[1], s[2], 3 }, "uint8")
    end
    local ds = build(Blank, nil, "val", 4)
    local batches, loader = epoch(ds, 4, 2)
    assert.are.equal(0, loader.num_workers) -- Lua runs on the main thread only
    assert.are.equal(#ds, Blank.calls)
    local zeros, other = 0, 0
    for _, v in ipairs(batches[1].img:tolist()) do
      if v == 0 then
        zeros = zeros + 1
      elseif v ~= 114 then
        other = other + 1
      end
    end
    assert.are.equal(0, other) -- the image (0) and the letterbox padding (114) only
    assert.is_true(zeros > 4 * 64 * 64)
    -- an override that returns the stock image gives the stock batches
    local Same, B2 = data.Dataset:extend("Same")
    function Same:load_image(i) return B2.load_image(self, i) end
    local stock = epoch(build(nil, nil, "val", 4), 4)[2]
    local same = epoch(build(Same, nil, "val", 4), 4)[2]
    assert.are.same(stock.img:tolist(), same.img:tolist())
    -- its errors name the image
    local Broken = data.Dataset:extend("Broken")
    function Broken:load_image(i) error("no camera " .. i) end
    local ok, err = pcall(function() return data.build_dataloader(build(Broken), 8, 0, false, -1, 0):next() end)
    assert.is_false(ok)
    assert.matches("%.jpg: load_image: .*no camera 1", tostring(err))
    local Wrong = data.Dataset:extend("Wrong")
    function Wrong:load_image() return yt.zeros({ 4, 4 }) end
    ok, err = pcall(function() return data.build_dataloader(build(Wrong), 8, 0, false, -1, 0):next() end)
    assert.is_false(ok)
    assert.matches("must return a uint8 H x W x 3 tensor", tostring(err), 1, true)
  end)

  it("set_rect sorts the labels and gives each batch its shape; a subclass's override is called", function()
    local Rect, Base = data.Dataset:extend("Rect")
    function Rect:set_rect()
      self.rect_calls = (self.rect_calls or 0) + 1
      Base.set_rect(self)
    end
    local ds = build(Rect, { imgsz = 96 }, "val", 8, true)
    assert.are.equal(1, ds.rect_calls)
    local shapes = ds:batch_shapes()
    assert.are.equal(math.ceil(#ds / 8), #shapes)
    for i = 2, #ds.labels do
      local a, b = ds.labels[i - 1].shape, ds.labels[i].shape
      assert.is_true(a[1] / a[2] <= b[1] / b[2], "labels sorted by aspect ratio")
    end
    for i, b in ipairs(epoch(ds)) do
      assert.are.same({ shapes[i][1], shapes[i][2] }, { b.img:shape()[3], b.img:shape()[4] })
      for k, f in ipairs(b.im_file) do
        assert.are.equal(ds.labels[(i - 1) * 8 + k].im_file, f)
      end
    end
  end)

  it("close_mosaic rebuilds the transforms from hyp with mosaic and mixup at 0", function()
    local Seen = data.Dataset:extend("Seen")
    function Seen:build_transforms(hyp)
      self.seen = self.seen or {}
      self.seen[#self.seen + 1] = hyp.mosaic
      -- no perspective: a mosaic shows as a 2s x 2s image
      return { { "mosaic", p = hyp.mosaic }, { "letterbox", scaleup = true } }
    end
    local ds = build(Seen, { imgsz = 64, mosaic = 1.0 }, "train")
    local loader = data.build_dataloader(ds, 8, 1, true, -1, 3)
    assert.are.same({ 8, 3, 128, 128 }, loader:next().img:shape())
    loader:close_mosaic()
    assert.are.same({ 1.0, 0.0 }, ds.seen)
    assert.is_true(ds.mosaic_closed)
    assert.are.same({ 8, 3, 64, 64 }, loader:next().img:shape())
  end)

  it("Loader, Metric and DetMetrics are classes recipes can extend", function()
    local metrics = require("yolotrain.utils.metrics")
    local My_Loader, Loader = data.Loader:extend("My_Loader")
    function My_Loader:next()
      local b = Loader.next(self)
      b.tag = "mine"
      return b
    end
    local l = My_Loader(build(), 8, 0, false, -1, 0)
    assert.are.equal(#l, math.ceil(128 / 8))
    assert.are.equal("mine", l:next().tag)
    local My_Metrics, DetMetrics = metrics.DetMetrics:extend("My_Metrics")
    function My_Metrics:summary_line() return "fitness " .. self.fitness end
    local m = My_Metrics { names = { [0] = "a" } }
    assert.is_true(m:is_instance(DetMetrics))
    assert.are.equal("fitness 0.0", m:summary_line()) -- a property (fitness) of the parent reaches the subclass
    local My_Metric = metrics.Metric:extend("My_Metric")
    assert.are.equal(0.0, My_Metric():map())
  end)

  it("the old positional form of data_dataset gives one clear error", function()
    local ok, err = pcall(
      yt.data.dataset,
      { helpers.datasets_dir .. "/coco128/images/val2017/000000000139.jpg" },
      { imgsz = 64, augment = false, stride = 32, pad = 0.5, batch_size = 1, cache_ram = false, nc = 80 }
    )
    assert.is_false(ok)
    assert.matches("takes the label table of data_scan", tostring(err), 1, true)
  end)
end)
