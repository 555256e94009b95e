-- Small deterministic stand-ins for data and validation, so engine tests run in seconds (in-process and in
-- recipes run by the yolotrain executable). A recipe can replace data and validation the same way.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local detect = require("yolotrain.models.yolo.detect")

local M = {}

local TINY = [==[
nc: 80
scales:
  t: [0.33, 0.0625, 256]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, SPPF, [256, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 2], 1, Concat, [1]]
  - [-1, 1, C2f, [128]]
  - [[7, 4], 1, Detect, [nc]]
]==]

-- A loader of `nb` batches of `bs` images, the same for a given (seed, epoch, index) like the real one.
local Fake_Loader = class.Object:extend("Fake_Loader")
function Fake_Loader:init(nb, bs, imgsz, nc, size)
  self.nb, self.bs, self.imgsz, self.nc, self.size = nb, bs, imgsz, nc, size or nb * bs
  self.epoch, self.num_workers = 0, 0
end
Fake_Loader.__len = function(self) return self.nb end
function Fake_Loader:set_epoch(e) self.epoch = e end
function Fake_Loader:dataset_size() return self.size end
function Fake_Loader:close_mosaic() self.mosaic_closed = true end
function Fake_Loader:iter()
  local i = 0
  return function()
    i = i + 1
    if i > self.nb then return nil end
    yt.manual_seed(1000 * self.epoch + i)
    local img = (yt.rand({ self.bs, 3, self.imgsz, self.imgsz }) * 255):to("uint8")
    local idx, cls, boxes = {}, {}, {}
    for b = 0, self.bs - 1 do
      for k = 1, 2 do
        idx[#idx + 1] = b
        cls[#cls + 1] = { (b * 7 + k * 3 + i) % self.nc }
        boxes[#boxes + 1] = { 0.25 + 0.2 * k, 0.3 + 0.1 * ((b + i) % 4), 0.3, 0.25 }
      end
    end
    return {
      img = img,
      batch_idx = yt.tensor(idx),
      cls = yt.tensor(cls),
      bboxes = yt.tensor(boxes),
      im_file = {},
      ori_shape = {},
      ratio_pad = {},
    }
  end
end

local KEYS = { "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)" }

local Fake_Validator = class.Object:extend("Fake_Validator")
function Fake_Validator:init(trainer)
  self.trainer, self.args, self.metrics = trainer, { plots = false }, { keys = KEYS }
  self.calls = 0
end
Fake_Validator.__call = function(self, trainer, model)
  self.calls = self.calls + 1
  local e = self.trainer.epoch or 0
  -- a fitness that improves, then gets worse, so best and last differ
  local f = ({ 0.1, 0.3, 0.2, 0.25, 0.15 })[e + 1] or 0.1
  local m = { fitness = f, ["val/box_loss"] = 1, ["val/cls_loss"] = 2, ["val/dfl_loss"] = 3 }
  for _, k in ipairs(KEYS) do
    m[k] = f
  end
  return m
end

function M.make_trainer_class(opts)
  opts = opts or {}
  local T, Base = detect.Detection_Trainer:extend("Test_Trainer")
  function T:get_dataset()
    local names = {}
    for i = 0, 79 do
      names[i] = "c" .. i
    end
    return { nc = 80, names = names, train = "train", val = "val" }
  end
  function T:get_dataloader(path, batch_size, rank, mode)
    self.calls = self.calls or {}
    self.calls.get_dataloader = (self.calls.get_dataloader or 0) + 1
    return Fake_Loader(opts.nb or 8, batch_size, self.args.imgsz, 80, opts.size)
  end
  function T:get_validator()
    self.loss_names = { "box_loss", "cls_loss", "dfl_loss" }
    return Fake_Validator(self)
  end
  function T:plot_metrics() end
  return T, Base
end

function M.tiny_yaml(dir)
  local path = dir .. "/tiny-t.yaml"
  local f = assert(io.open(path, "w"))
  f:write(TINY)
  f:close()
  return path
end

-- The overrides of a quick run in `dir` on the fake data with the tiny model (written there): imgsz 32, batch 2,
-- no plots, quiet; `fields` adds to them or replaces them.
function M.overrides(dir, fields)
  local o =
    { model = M.tiny_yaml(dir), data = "fake", imgsz = 32, batch = 2, project = dir, plots = false, verbose = false }
  for k, v in pairs(fields or {}) do
    o[k] = v
  end
  return o
end

return M
