-- Plots: annotated prediction images (boxes, class names, confidences), results.png (training curves from
-- results.csv, Ultralytics' 2 x 5 grid) and the training-label statistics (labels.jpg, labels_correlogram.jpg). Drawing is done in C with cairo (src/metrics/plots.c).
--
--   local plotting = require("yolotrain.utils.plotting")
--   local img = plotting.draw_detections(orig_img, { {x1, y1, x2, y2, conf, cls}, ... }, names)
--   plotting.save_image(img, "out.jpg")
--   plotting.plot_results("runs/detect/train/results.csv")      -- writes results.png beside it
--   plotting.plot_labels(boxes, cls, names, save_dir)           -- labels.jpg, labels_correlogram.jpg
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")

local M = {}

local function name_of(names, c)
  c = math.tointeger(c) or math.floor(c)
  local n = names and names[c]
  if n == nil and names and names[0] == nil then n = names[c + 1] end
  return n or tostring(c)
end

-- Ultralytics' class colour (palette entry c % 20) as r, g, b 0..255.
function M.colors(c) return yt.metrics.plot_class_color(math.floor(c)) end

-- A copy of img ((H, W, 3) uint8) with the boxes drawn. rows: list of {x1, y1, x2, y2, conf, cls} in img pixels
-- (or an (n, 6) tensor). opts: labels (true), conf (true), boxes (true), line_width (max(round((H+W)/2*0.003),2)),
-- font_size.
function M.draw_detections(img, rows, names, opts)
  opts = opts or {}
  if not yt.is_tensor(img) then error("draw_detections: img must be an (H, W, 3) uint8 tensor", 2) end
  local t
  if yt.is_tensor(rows) then
    t = rows
    rows = {}
    local n = t:shape(1)
    local flat = n > 0 and t:contiguous():tolist() or {}
    for i = 1, n do
      local o = (i - 1) * 6
      rows[i] = { flat[o + 1], flat[o + 2], flat[o + 3], flat[o + 4], flat[o + 5], flat[o + 6] }
    end
  end
  if opts.boxes == false then return img:clone() end
  local labels = {}
  local flat, n = {}, 0
  for i, r in ipairs(rows) do
    for j = 1, 6 do
      n = n + 1
      flat[n] = r[j]
    end
    if opts.labels ~= false then
      labels[i] = yt.data.plot_box_label(name_of(names, r[6]), math.floor(r[6]), opts.conf ~= false and r[5] or nil)
    else
      labels[i] = false
    end
  end
  local rt = #rows > 0 and yt.tensor(flat):reshape({ #rows, 6 }) or yt.zeros({ 0, 6 })
  return yt.metrics.draw_detections(img, rt, labels, { line_width = opts.line_width, font_size = opts.font_size })
end

-- Writes an (H, W, 3) uint8 RGB image: .png or .jpg/.jpeg.
function M.save_image(img, path, quality)
  yt.metrics.save_image(img, path, quality or 95)
  return path
end

-- ---- training labels -> labels.jpg, labels_correlogram.jpg ----

-- Ultralytics' plot_labels: labels.jpg (instances per class, the boxes to scale, x-y and width-height histograms)
-- and labels_correlogram.jpg (the pair plot of x, y, width, height) in save_dir, from boxes (N, 4) normalised
-- xywh and cls (N) or (N, 1). names: {[0] = "person", ...}; nc defaults to their count. on_plot(path) is told
-- of labels.jpg. Returns the two paths.
function M.plot_labels(boxes, cls, names, save_dir, on_plot)
  save_dir = save_dir or "."
  local nc = 0
  if names then
    for k in pairs(names) do
      if math.type(k) == "integer" then nc = math.max(nc, names[0] ~= nil and k + 1 or k) end
    end
  end
  local labels_jpg = utils.join(save_dir, "labels.jpg")
  local correlogram_jpg = utils.join(save_dir, "labels_correlogram.jpg")
  utils.log("Plotting labels to %s... ", labels_jpg)
  yt.metrics.plot_labels_correlogram(correlogram_jpg, boxes)
  yt.metrics.plot_labels(labels_jpg, boxes, cls, { nc = nc > 0 and nc or nil, names = names })
  if on_plot then on_plot(labels_jpg) end
  return labels_jpg, correlogram_jpg
end

-- ---- results.csv -> results.png ----

local function split_csv_line(line)
  local out = {}
  for field in (line .. ","):gmatch("([^,]*),") do
    out[#out + 1] = field:match("^%s*(.-)%s*$")
  end
  return out
end

-- scipy.ndimage.gaussian_filter1d(y, sigma) with mode "reflect" and truncate 4 (what Ultralytics smooths with).
function M.gaussian_filter1d(y, sigma)
  local n = #y
  if n == 0 then return {} end
  local r = math.floor(4.0 * sigma + 0.5)
  local w, s = {}, 0
  for k = -r, r do
    w[k] = math.exp(-0.5 * (k / sigma) ^ 2)
    s = s + w[k]
  end
  for k = -r, r do
    w[k] = w[k] / s
  end
  local function at(i) -- reflect: d c b a | a b c d | d c b a
    local period = 2 * n
    i = (i - 1) % period
    if i >= n then i = period - 1 - i end
    return y[i + 1]
  end
  local out = {}
  for i = 1, n do
    local acc = 0
    for k = -r, r do
      acc = acc + w[k] * at(i + k)
    end
    out[i] = acc
  end
  return out
end

-- The panels of Ultralytics' detection results.png, in its order.
M.RESULTS_COLUMNS = {
  "train/box_loss",
  "train/cls_loss",
  "train/dfl_loss",
  "metrics/precision(B)",
  "metrics/recall(B)",
  "val/box_loss",
  "val/cls_loss",
  "val/dfl_loss",
  "metrics/mAP50(B)",
  "metrics/mAP50-95(B)",
}

-- Reads results.csv into what results.png shows: the panels (the columns of RESULTS_COLUMNS that exist, else every
-- column after epoch), the epochs x, each panel's values ys[j] (NaN where a row has none) and their
-- Gaussian-smoothed line smooth[j]. Raises naming the file when it has no header or no metric column.
function M.read_results(csv_path)
  local f, err = io.open(csv_path, "rb")
  if not f then error(string.format("results: cannot read '%s': %s", csv_path, tostring(err)), 2) end
  local text = f:read("a")
  f:close()
  local lines = {}
  for line in text:gmatch("[^\r\n]+") do
    if line:match("%S") then lines[#lines + 1] = line end
  end
  if #lines < 1 then error(string.format("results: '%s' is empty", csv_path), 2) end
  local header = split_csv_line(lines[1])
  local col = {}
  for i, h in ipairs(header) do
    col[h] = i
  end
  local wanted = {}
  for _, k in ipairs(M.RESULTS_COLUMNS) do
    if col[k] then wanted[#wanted + 1] = k end
  end
  if #wanted == 0 then
    for i, h in ipairs(header) do
      if i > 1 and h ~= "" and not h:match("^lr/") then wanted[#wanted + 1] = h end
    end
  end
  if #wanted == 0 then error(string.format("results: '%s' has no metric columns", csv_path), 2) end
  local x, ys = {}, {}
  for j = 1, #wanted do
    ys[j] = {}
  end
  for r = 2, #lines do
    local fields = split_csv_line(lines[r])
    local e = tonumber(fields[col.epoch or 1])
    x[#x + 1] = e or (r - 1)
    for j, k in ipairs(wanted) do
      ys[j][#x] = tonumber(fields[col[k]]) or (0 / 0)
    end
  end
  local smooth = {}
  for j = 1, #wanted do
    -- smooth over the finite values only (gaps stay gaps)
    local vals, idx = {}, {}
    for i = 1, #x do
      local v = ys[j][i]
      if v == v then
        vals[#vals + 1] = v
        idx[#idx + 1] = i
      end
    end
    local s = M.gaussian_filter1d(vals, 3)
    smooth[j] = {}
    for i = 1, #x do
      smooth[j][i] = 0 / 0
    end
    for q, i in ipairs(idx) do
      smooth[j][i] = s[q]
    end
  end
  return wanted, x, ys, smooth
end

-- Draws results.csv as Ultralytics' results.png: every panel with its values and a dotted smoothed line.
-- png_path defaults to results.png beside the CSV. Returns the PNG path.
function M.plot_results(csv_path, png_path)
  png_path = png_path or ((csv_path:match("^(.*)/[^/]*$") or ".") .. "/results.png")
  local wanted, x, ys, smooth = M.read_results(csv_path)
  local label = (csv_path:match("([^/]+)$") or "results"):gsub("%.csv$", "")
  yt.metrics.plot_results(png_path, wanted, x, ys, smooth, label)
  return png_path
end

return M
