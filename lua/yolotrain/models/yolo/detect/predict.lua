-- Detection_Predictor: runs YOLO detectors on images (Ultralytics 8.2's DetectionPredictor).
--
--   local detect = require("yolotrain.models.yolo.detect")
--   local p = detect.Detection_Predictor{ overrides = { model = "best.safetensors", save = false } }
--   for _, r in ipairs(p("images/")) do print(r.path, r:verbose(), r.boxes.xyxy) end
--
-- Defaults as Ultralytics' predict: conf 0.25, iou 0.7, max_det 300, batch 1; NMS best class only, class-aware
-- unless agnostic_nms, optional classes= filter; boxes scaled back to the original image.
local yt = require("yolotrain.core")
local Engine_Predictor = require("yolotrain.engine.predictor")
local results_mod = require("yolotrain.engine.results")
local utils = require("yolotrain.utils")

local ops = results_mod.ops

local Detection_Predictor = Engine_Predictor:extend("Detection_Predictor")

function Detection_Predictor:init(cfg, overrides, callbacks)
  Engine_Predictor.init(self, cfg, overrides, callbacks)
  self.args.task = "detect"
end

function Detection_Predictor:setup_model(model, verbose)
  local Detection_Validator = require("yolotrain.models.yolo.detect.val")
  local data
  if self.args.data ~= nil then data = require("yolotrain.data").check_det_dataset(self.args.data) end
  local args = self.args
  if verbose == false then args = setmetatable({ verbose = false }, { __index = self.args }) end
  self.model = Detection_Validator.resolve_model(model, args, data)
  self.model:eval()
  local stride = utils.max_stride(self.model)
  self.stride = stride
  self.imgsz = utils.check_imgsz(self.args.imgsz, stride, 2)
  return self.model
end

function Detection_Predictor:inference(im)
  local y = self.model(im)
  return y
end

-- NMS, boxes back to original pixels, one Results per image.
function Detection_Predictor:postprocess(preds, img, orig_imgs)
  local classes = self.args.classes
  if type(classes) == "number" then classes = { math.tointeger(classes) } end
  local dets = yt.metrics.nms(preds, {
    conf = self.args.conf,
    iou = self.args.iou,
    max_det = self.args.max_det,
    agnostic = self.args.agnostic_nms and true or false,
    classes = classes,
  })
  local ishape = img:shape()
  local out = {}
  for i, pred in ipairs(dets) do
    local orig = orig_imgs[i]
    local os_ = orig:shape()
    local orig_shape
    if orig:dtype() == "uint8" then
      orig_shape = { os_[1], os_[2] }
    else
      orig_shape = { os_[2], os_[3] }
    end
    local rows = ops.tensor_rows(pred)
    for _, r in ipairs(rows) do
      local b = ops.scale_box({ r[1], r[2], r[3], r[4] }, { ishape[3], ishape[4] }, orig_shape, nil)
      r[1], r[2], r[3], r[4] = b[1], b[2], b[3], b[4]
      r[6] = math.tointeger(r[6]) or r[6]
    end
    local path = self.batch and self.batch.paths and self.batch.paths[i] or string.format("image%d.jpg", i - 1)
    out[i] = results_mod.Results {
      orig_img = orig:dtype() == "uint8" and orig or nil,
      orig_shape = orig_shape,
      path = path,
      names = self.model.names,
      boxes = rows,
    }
  end
  return out
end

return Detection_Predictor
