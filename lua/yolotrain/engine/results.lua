-- Results of a prediction (Ultralytics' Results and Boxes), plus the box helpers the validator and predictor
-- share (xywh <-> xyxy, scale_boxes, clip_boxes on plain Lua lists).
--
--   for _, r in ipairs(predictor(source)) do
--     print(r.path, r.orig_shape[1], r.orig_shape[2], #r.boxes)
--     local xyxy = r.boxes.xyxy         -- (n, 4) float32 tensor, original image pixels
--     local conf, cls = r.boxes.conf, r.boxes.cls
--     r:save("out.jpg"); r:save_txt("out.txt", { save_conf = true }); print(r:tojson())
--   end
--
-- Boxes are stored as a plain Lua list of rows {x1, y1, x2, y2, conf, cls} (original image pixels) so Results
-- outlive the tensor scopes of the prediction loop; the tensor views (xyxy, xywh, xyxyn, xywhn, conf, cls, data)
-- are built on access.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local cjson = require("cjson")
local utils = require("yolotrain.utils")

local M = {}

-- ---- box helpers on flat lists ----
local ops = {}
M.ops = ops

-- Python's round(): halves to the even neighbour.
ops.pyround = utils.round_half_even

-- Rounds a Lua number to the nearest float32 value (tensors hold float32; keeps list maths close to torch's).
local function f32(x) return (string.unpack("f", string.pack("f", x))) end
ops.f32 = f32

-- cx, cy, w, h -> x1, y1, x2, y2
function ops.xywh2xyxy(b)
  local hw, hh = b[3] / 2, b[4] / 2
  return { b[1] - hw, b[2] - hh, b[1] + hw, b[2] + hh }
end

function ops.xyxy2xywh(b) return { (b[1] + b[3]) / 2, (b[2] + b[4]) / 2, b[3] - b[1], b[4] - b[2] } end

-- Clips x1 y1 x2 y2 of box (in place) to the image of shape {h, w}.
function ops.clip_box(b, shape)
  local h, w = shape[1], shape[2]
  b[1] = math.min(math.max(b[1], 0), w)
  b[2] = math.min(math.max(b[2], 0), h)
  b[3] = math.min(math.max(b[3], 0), w)
  b[4] = math.min(math.max(b[4], 0), h)
  return b
end

-- Gain and padding that map an image of shape img0 {h, w} into img1 {h, w} (Ultralytics' scale_boxes without
-- ratio_pad): gain = min(h1/h0, w1/w0), pad = round((w1 - w0*gain)/2 - 0.1), round((h1 - h0*gain)/2 - 0.1).
function ops.letterbox_params(img1_shape, img0_shape)
  local gain = math.min(img1_shape[1] / img0_shape[1], img1_shape[2] / img0_shape[2])
  local padw = ops.pyround((img1_shape[2] - img0_shape[2] * gain) / 2 - 0.1)
  local padh = ops.pyround((img1_shape[1] - img0_shape[1] * gain) / 2 - 0.1)
  return gain, padw, padh
end

-- Maps the x1 y1 x2 y2 box b (in place) from img1_shape (letterboxed input) back to img0_shape (original) and
-- clips it. ratio_pad = {{rh, rw}, {padw, padh}} as the data pipeline gives it (gain = rh, as Ultralytics), or
-- nil to derive it from the shapes. float32 arithmetic like torch.
function ops.scale_box(b, img1_shape, img0_shape, ratio_pad)
  local gain, padw, padh
  if ratio_pad then
    gain, padw, padh = ratio_pad[1][1], ratio_pad[2][1], ratio_pad[2][2]
  else
    gain, padw, padh = ops.letterbox_params(img1_shape, img0_shape)
  end
  gain = f32(gain)
  b[1] = f32(f32(b[1] - padw) / gain)
  b[2] = f32(f32(b[2] - padh) / gain)
  b[3] = f32(f32(b[3] - padw) / gain)
  b[4] = f32(f32(b[4] - padh) / gain)
  return ops.clip_box(b, img0_shape)
end

-- A (n, k) float32 tensor from a list of rows (k columns; n may be 0).
function ops.rows_tensor(rows, k)
  if #rows == 0 then return yt.zeros({ 0, k }) end
  local flat, n = {}, 0
  for _, r in ipairs(rows) do
    for j = 1, k do
      n = n + 1
      flat[n] = r[j]
    end
  end
  return yt.tensor(flat):reshape({ #rows, k })
end

-- (n, k) tensor -> list of n rows (Lua numbers)
function ops.tensor_rows(t)
  local shape = t:shape()
  local n, k = shape[1], shape[2]
  local rows = {}
  if n == 0 then return rows end
  local flat = t:contiguous():tolist()
  for i = 1, n do
    local r = {}
    for j = 1, k do
      r[j] = flat[(i - 1) * k + j]
    end
    rows[i] = r
  end
  return rows
end

-- ---- Boxes ----
local Boxes = class.Object:extend("Boxes")
M.Boxes = Boxes

-- Boxes(rows, orig_shape): rows {x1, y1, x2, y2, conf, cls} in pixels of orig_shape {h, w}.
function Boxes:init(rows, orig_shape)
  if yt.is_tensor(rows) then rows = ops.tensor_rows(rows) end
  rawset(self, "rows", rows or {})
  rawset(self, "orig_shape", orig_shape)
end

local function column_tensor(rows, fn, k)
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = fn(r)
  end
  if k then return ops.rows_tensor(out, k) end
  if #out == 0 then return yt.zeros({ 0 }) end
  return yt.tensor(out)
end

local box_props = {
  data = function(self) return ops.rows_tensor(self.rows, 6) end,
  xyxy = function(self)
    return column_tensor(self.rows, function(r) return { r[1], r[2], r[3], r[4] } end, 4)
  end,
  xywh = function(self)
    return column_tensor(self.rows, function(r) return ops.xyxy2xywh(r) end, 4)
  end,
  xyxyn = function(self)
    local h, w = self.orig_shape[1], self.orig_shape[2]
    return column_tensor(self.rows, function(r) return { r[1] / w, r[2] / h, r[3] / w, r[4] / h } end, 4)
  end,
  xywhn = function(self)
    local h, w = self.orig_shape[1], self.orig_shape[2]
    return column_tensor(self.rows, function(r)
      local b = ops.xyxy2xywh(r)
      return { b[1] / w, b[2] / h, b[3] / w, b[4] / h }
    end, 4)
  end,
  conf = function(self)
    return column_tensor(self.rows, function(r) return r[5] end)
  end,
  cls = function(self)
    return column_tensor(self.rows, function(r) return r[6] end)
  end,
  shape = function(self) return { #self.rows, 6 } end,
}
M.BOX_PROPERTIES = box_props -- name -> getter: what boxes.<name> computes (docs/reference.md lists them)

Boxes.__index = function(self, k)
  local m = Boxes[k]
  if m ~= nil then return m end
  local p = box_props[k]
  if p then return p(self) end
  return nil
end
Boxes.__len = function(self) return #self.rows end
Boxes.__tostring = function(self) return string.format("Boxes(%d)", #self.rows) end

-- ---- Results ----
local Results = class.Object:extend("Results")
M.Results = Results

-- Results{ orig_img = (H, W, 3) uint8 tensor or nil, path = , names = {[0]=...}, boxes = rows or (n,6) tensor,
--          orig_shape = {h, w}, speed = {preprocess=, inference=, postprocess=} }
function Results:init(opts)
  opts = opts or {}
  self.orig_img = opts.orig_img
  self.orig_shape = opts.orig_shape
  if not self.orig_shape and self.orig_img then
    local s = self.orig_img:shape()
    self.orig_shape = { s[1], s[2] }
  end
  self.path = opts.path or "image0.jpg"
  self.names = opts.names or {}
  self.boxes = Boxes(opts.boxes or {}, self.orig_shape)
  self.speed = opts.speed or { preprocess = nil, inference = nil, postprocess = nil }
  self.save_dir = opts.save_dir
end

Results.__len = function(self) return #self.boxes.rows end
Results.__tostring = function(self)
  return string.format(
    "Results(path=%s, orig_shape=%dx%d, %d boxes)",
    tostring(self.path),
    self.orig_shape and self.orig_shape[1] or 0,
    self.orig_shape and self.orig_shape[2] or 0,
    #self.boxes.rows
  )
end

local function name_of(names, c)
  c = math.tointeger(c) or math.floor(c)
  local n = names[c]
  if n == nil and names[0] == nil then n = names[c + 1] end
  return n or tostring(c)
end
M.name_of = name_of

-- "4 persons, 1 bus, " (Ultralytics' verbose(): counts per class in class order, plural with 's')
function Results:verbose()
  local rows = self.boxes.rows
  if #rows == 0 then return "(no detections), " end
  local counts, order = {}, {}
  for _, r in ipairs(rows) do
    local c = math.tointeger(r[6]) or math.floor(r[6])
    if not counts[c] then order[#order + 1] = c end
    counts[c] = (counts[c] or 0) + 1
  end
  table.sort(order)
  local s = ""
  for _, c in ipairs(order) do
    local n = counts[c]
    s = s .. string.format("%d %s%s, ", n, name_of(self.names, c), n > 1 and "s" or "")
  end
  return s
end

-- One table per box: { name=, class=, confidence=, box={x1=, y1=, x2=, y2=} } (normalize: divide by the image
-- size; decimals: rounding).
function Results:summary(normalize, decimals)
  decimals = decimals or 5
  local h, w = self.orig_shape[1], self.orig_shape[2]
  local function rnd(x)
    local m = 10 ^ decimals
    return math.floor(x * m + 0.5) / m
  end
  local out = {}
  for i, r in ipairs(self.boxes.rows) do
    local sx, sy = normalize and w or 1, normalize and h or 1
    local c = math.tointeger(r[6]) or math.floor(r[6])
    out[i] = {
      name = name_of(self.names, c),
      class = c,
      confidence = rnd(r[5]),
      box = { x1 = rnd(r[1] / sx), y1 = rnd(r[2] / sy), x2 = rnd(r[3] / sx), y2 = rnd(r[4] / sy) },
    }
  end
  return out
end

-- JSON array of the summary (keys in Ultralytics' order).
function Results:tojson(normalize, decimals)
  local parts = {}
  for i, d in ipairs(self:summary(normalize, decimals)) do
    parts[i] = string.format(
      '{"name": %s, "class": %d, "confidence": %s, "box": {"x1": %s, "y1": %s, "x2": %s, ' .. '"y2": %s}}',
      cjson.encode(d.name),
      d.class,
      cjson.encode(d.confidence),
      cjson.encode(d.box.x1),
      cjson.encode(d.box.y1),
      cjson.encode(d.box.x2),
      cjson.encode(d.box.y2)
    )
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- Label lines in Ultralytics' format: "cls cx cy w h[ conf]" normalised, %g with 6 significant digits.
function Results:txt_lines(save_conf)
  local h, w = self.orig_shape[1], self.orig_shape[2]
  local lines = {}
  for i, r in ipairs(self.boxes.rows) do
    local b = ops.xyxy2xywh(r)
    local c = math.tointeger(r[6]) or math.floor(r[6])
    local line = string.format("%d %.6g %.6g %.6g %.6g", c, f32(b[1] / w), f32(b[2] / h), f32(b[3] / w), f32(b[4] / h))
    if save_conf then line = line .. string.format(" %.6g", r[5]) end
    lines[i] = line
  end
  return lines
end

-- Appends the label lines to txt_file (as Ultralytics does). opts.save_conf adds the confidence.
function Results:save_txt(txt_file, opts)
  local save_conf = type(opts) == "table" and opts.save_conf or opts == true
  local lines = self:txt_lines(save_conf)
  local f, err = io.open(txt_file, "ab")
  if not f then error(string.format("save_txt: cannot write '%s': %s", txt_file, tostring(err)), 2) end
  for _, l in ipairs(lines) do
    f:write(l, "\n")
  end
  f:close()
  return txt_file
end

-- The annotated image (H, W, 3) uint8 tensor: boxes, class names and confidences drawn on a copy of orig_img.
-- opts: conf (true), labels (true), boxes (true), line_width (auto), font_size.
function Results:plot(opts)
  opts = opts or {}
  if not self.orig_img then error("Results:plot: no original image (orig_img) to draw on", 2) end
  local plotting = require("yolotrain.utils.plotting")
  return plotting.draw_detections(self.orig_img, self.boxes.rows, self.names, {
    conf = opts.conf ~= false,
    labels = opts.labels ~= false,
    boxes = opts.boxes ~= false,
    line_width = opts.line_width,
    font_size = opts.font_size,
  })
end

-- Writes the annotated image (.jpg or .png); returns the file name.
function Results:save(filename, opts)
  filename = filename or ("results_" .. (self.path:match("([^/]+)$") or "image.jpg"))
  local plotting = require("yolotrain.utils.plotting")
  plotting.save_image(self:plot(opts), filename)
  return filename
end

return M
