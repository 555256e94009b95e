local helpers = require("helpers")
local data = require("yolotrain.data")
local yt = require("yolotrain.core")

local coco = helpers.datasets_dir .. "/coco128"
data.log = function() end

local function write(path, s) helpers.write_file(path, s) end

describe("yolotrain.data.check_det_dataset", function()
  it("resolves a folder holding data.yaml: path defaults to the folder, names indexed from 0", function()
    local info = data.check_det_dataset(coco)
    assert.are.equal(80, info.nc)
    assert.are.equal("person", info.names[0])
    assert.are.equal("toothbrush", info.names[79])
    assert.is_nil(info.names[80])
    assert.truthy(info.train:match("/coco128/images/train2017$"))
    assert.truthy(info.val:match("/coco128/images/val2017$"))
  end)

  it("accepts names as a list, a relative path and list-valued splits; checks nc", function()
    local d = helpers.tmpdir()
    os.execute("mkdir -p '" .. d .. "/root/a' '" .. d .. "/root/b'")
    write(d .. "/x.yaml", "path: root\ntrain: [a, b]\nval: a\nnames: [cat, dog]\nnc: 2\n")
    local info = data.check_det_dataset(d .. "/x.yaml")
    assert.are.equal(2, info.nc)
    assert.are.equal("cat", info.names[0])
    assert.are.equal("dog", info.names[1])
    assert.are.equal(2, #info.train)
    assert.truthy(info.train[2]:match("/root/b$"))
    write(d .. "/bad.yaml", "train: root/a\nval: root/a\nnames: [cat, dog]\nnc: 3\n")
    assert.has_error(function() data.check_det_dataset(d .. "/bad.yaml") end)
    write(d .. "/noval.yaml", "train: root/a\nnames: [cat]\n")
    local ok, err = pcall(data.check_det_dataset, d .. "/noval.yaml")
    assert.is_false(ok)
    assert.truthy(tostring(err):match("val"))
    assert.has_error(function() data.check_det_dataset(d .. "/missing.yaml") end)
  end)
end)

describe("yolotrain.data loader", function()
  local info = data.check_det_dataset(coco)

  it("yields Ultralytics' batch layout and iterates one epoch per for-loop", function()
    local ds = data.build_yolo_dataset({ imgsz = 160 }, info.train, 8, info, "train", false, 32)
    assert.are.equal(128, #ds)
    local loader = data.build_dataloader(ds, 8, 1, true, -1, 3)
    assert.are.equal(16, #loader)
    local n, boxes = 0, 0
    for batch in loader do
      n = n + 1
      local s = batch.img:shape()
      assert.are.same({ 8, 3, 160, 160 }, s)
      assert.are.equal("uint8", batch.img:dtype())
      local N = batch.cls:shape()[1]
      -- every mosaic of four coco128 images holds objects: an empty batch would check nothing below
      assert.is_true(N > 0, "a training batch with no boxes")
      assert.are.same({ N, 1 }, batch.cls:shape())
      assert.are.same({ N, 4 }, batch.bboxes:shape())
      assert.are.same({ N }, batch.batch_idx:shape())
      assert.are.equal(8, #batch.im_file)
      assert.are.equal(2, #batch.ori_shape[1])
      assert.are.equal(2, #batch.ratio_pad[1])
      for _, v in ipairs(batch.bboxes:tolist()) do
        assert.is_true(v >= 0 and v <= 1.0001)
      end
      for _, b in ipairs(batch.batch_idx:tolist()) do
        assert.is_true(b >= 0 and b < 8 and b == math.floor(b))
      end
      for _, c in ipairs(batch.cls:tolist()) do
        assert.is_true(c >= 0 and c < 80 and c == math.floor(c))
      end
      boxes = boxes + N
    end
    assert.are.equal(16, n)
    assert.is_true(boxes > 100)
    assert.are.equal(1, loader:epoch())
    -- the next loop is the next epoch, reshuffled
    local first = loader:next()
    loader:set_epoch(0)
    local again = loader:next()
    assert.are_not.same(first.im_file, again.im_file)
    loader:close_mosaic()
  end)

  it("gives identical batches for 0 and 2 workers with the same seed", function()
    local a = data.build_dataloader(
      data.build_yolo_dataset({ imgsz = 128 }, info.train, 8, info, "train", false, 32),
      8,
      0,
      true,
      -1,
      11
    )
    local b = data.build_dataloader(
      data.build_yolo_dataset({ imgsz = 128 }, info.train, 8, info, "train", false, 32),
      8,
      2,
      true,
      -1,
      11
    )
    for _ = 1, 3 do
      local x, y = a:next(), b:next()
      assert.are.same(x.im_file, y.im_file)
      assert.are.same(x.bboxes:tolist(), y.bboxes:tolist())
      assert.are.same(x.img:tolist(), y.img:tolist())
    end
  end)

  it("builds rect validation batches sorted by aspect ratio with ratio_pad", function()
    local ds = data.build_yolo_dataset({ imgsz = 320 }, info.val, 16, info, "val", true, 32)
    local loader = data.build_dataloader(ds, 16, 2, false, -1, 0)
    local shapes = ds:batch_shapes()
    local i = 0
    for batch in loader:iter() do
      i = i + 1
      local s = batch.img:shape()
      assert.are.equal(shapes[i][1], s[3])
      assert.are.equal(shapes[i][2], s[4])
      local rp = batch.ratio_pad[1]
      assert.is_true(rp[1][1] > 0 and rp[1][1] <= 1)
    end
    assert.are.equal(8, i)
  end)

  it("refuses copy_paste > 0", function()
    assert.has_error(
      function() data.build_yolo_dataset({ imgsz = 160, copy_paste = 0.5 }, info.train, 8, info, "train", false, 32) end
    )
  end)

  it("all_labels concatenates every image's labels in dataset order", function()
    local ds = data.build_yolo_dataset({ imgsz = 128 }, info.val, 4, info, "val", false, 32)
    local cls, boxes = ds:all_labels()
    local want_cls, want_boxes = {}, {}
    for i = 1, #ds do
      local l = ds:labels(i)
      for _, v in ipairs(l.cls:tolist()) do
        want_cls[#want_cls + 1] = v
      end
      for _, v in ipairs(l.bboxes:tolist()) do
        want_boxes[#want_boxes + 1] = v
      end
    end
    assert.is_true(#want_cls > 100)
    assert.are.same({ #want_cls, 1 }, cls:shape())
    assert.are.same({ #want_cls, 4 }, boxes:shape())
    assert.are.same(want_cls, cls:tolist())
    assert.are.same(want_boxes, boxes:tolist())
  end)

  it("plot_batch writes a PNG and a JPEG", function()
    local ds = data.build_yolo_dataset({ imgsz = 128 }, info.val, 4, info, "val", false, 32)
    local batch = data.build_dataloader(ds, 4, 0, false, -1, 0):next()
    local d = helpers.tmpdir()
    data.plot_batch(batch, info.names, d .. "/b.png")
    data.plot_batch(batch, info.names, d .. "/b.jpg")
    local png = helpers.read_file(d .. "/b.png")
    assert.are.equal("\137PNG", png:sub(1, 4))
    local jpg = helpers.read_file(d .. "/b.jpg")
    assert.are.equal("\255\216", jpg:sub(1, 2))
    local img = data.load_image(d .. "/b.png")
    assert.are.same({ 256, 256, 3 }, img:shape())
  end)

  it("decodes a file only as the format its header says: a WebP header over an SVG body is refused", function()
    -- a lossy VP8 header announcing 257x257 (under the pixel limit; no NUL byte, so SDL2_image's SVG detector
    -- sees the rest), then an SVG asking for 16000x12000: detected as SVG, that is 192 Mpixel rasterised
    local svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="16000" height="12000"><rect width="9" height="9"/></svg>'
    local path = helpers.tmpdir() .. "/evil.webp"
    helpers.write_file(path, "RIFF\1\1\1\1WEBPVP8 \1\1\1\1\1\1\1\157\1\42\1\1\1\1" .. svg)
    local rss0, t0 = yt.sys.rss(), yt.machine.now()
    local ok, err = pcall(data.load_image, path)
    assert.is_false(ok)
    assert.matches("webp", err)
    assert.is_true(yt.machine.now() - t0 < 2, "took as long as a rasterisation")
    assert.is_true(yt.sys.rss() - rss0 < 100 * 2 ^ 20, "memory grew as for a 192 Mpixel surface")
  end)

  it("refuses a PNG whose chunks run past its end (libpng behind SDL2_image hangs on one)", function()
    -- found by tests/fuzz: a bKGD chunk announcing 262 bytes in a 100-byte file made the decoder loop forever
    local hang = helpers.read_file(helpers.repo_dir .. "tests/fuzz/regressions/image/png_chunk_past_end_hang.png")
    local d = helpers.tmpdir()
    helpers.write_file(d .. "/hang.png", hang)
    local ok, err = pcall(data.load_image, d .. "/hang.png")
    assert.is_false(ok)
    assert.matches("truncated PNG: chunk 'bKGD' of 262 bytes at byte 33 runs past the end %(100 bytes%)", err)
    -- a PNG cut short of its IEND chunk is refused as truncated too; the whole file loads
    local good = helpers.read_file(helpers.repo_dir .. "tests/fuzz/corpus/image/tiny.png")
    assert.are.same({ 6, 10, 3 }, data.load_image(helpers.repo_dir .. "tests/fuzz/corpus/image/tiny.png"):shape())
    helpers.write_file(d .. "/cut.png", good:sub(1, #good - 12))
    ok, err = pcall(data.load_image, d .. "/cut.png")
    assert.is_false(ok)
    assert.matches("truncated PNG: the file ends at byte 88 before its IEND chunk", err)
  end)

  it("bounds the classes a dataset YAML may declare", function()
    local d = helpers.tmpdir()
    for text, msg in pairs({
      ["nc: 1000000000000000000\n"] = "nc must be an integer in 1..65536",
      ["names: {0: a, 70000: b}\n"] = "key 70000 is not a class index (0..65535)",
    }) do
      helpers.write_file(d .. "/data.yaml", "path: /\ntrain: tmp\nval: tmp\n" .. text)
      local ok, err = pcall(data.check_det_dataset, d .. "/data.yaml")
      assert.is_false(ok, text)
      assert.is_truthy(err:find(msg, 1, true), err)
    end
  end)

  it("refuses an image file over the input size limit before reading it", function()
    local path = helpers.tmpdir() .. "/huge.jpg"
    local f = assert(io.open(path, "wb"))
    f:write("\255\216\255")
    f:seek("set", (1 << 30) + 16) -- sparse: no disk used
    f:write("x")
    f:close()
    local rss0 = yt.sys.rss()
    local ok, err = pcall(data.load_image, path)
    os.remove(path)
    assert.is_false(ok)
    assert.matches("file too large", err)
    assert.is_true(yt.sys.rss() - rss0 < 100 * 2 ^ 20)
  end)

  it("letterboxes a decoded image like Ultralytics' LetterBox", function()
    local img = data.load_image(coco .. "/images/val2017/000000000139.jpg")
    assert.are.same({ 426, 640, 3 }, img:shape())
    local out, info2 = data.letterbox(img, 320, 320)
    assert.are.same({ 320, 320, 3 }, out:shape())
    assert.are.equal(53, info2.top)
    assert.are.equal(0, info2.left)
    assert.are.equal(114, out:get(1, 1, 1))
  end)
end)
