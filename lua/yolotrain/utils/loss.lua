-- v8DetectionLoss: the criterion Detection_Model:build_loss_class() returns (Ultralytics' v8DetectionLoss).
--
--   local crit = loss.v8DetectionLoss(model)
--   local total, items = crit(preds, batch)   -- total: 0-d tensor (backward-able), items: [box, cls, dfl] tensor
--
-- The work is in C (src/loss): task-aligned assignment, BCE over all anchors x classes, CIoU and DFL, with the
-- analytic gradient recorded on the autograd tape. The pieces are callable from Lua too (yt.loss.bbox_iou,
-- yt.loss.task_aligned_assign, yt.loss.dfl_loss, yt.loss.bce_with_logits, yt.loss.make_anchors) for recipes that compose their own.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local M = {}

local v8DetectionLoss = class.Object:extend("v8DetectionLoss")
M.v8DetectionLoss = v8DetectionLoss

function v8DetectionLoss:init(model, tal_topk)
  local head = model.model and model.model.items[#model.model.items] or model
  self.nc = head.nc or model.nc
  self.reg_max = head.reg_max or 16
  self.stride = head.stride or model.stride
  self.hyp = model.args or {}
  self.topk = tal_topk or 10
  self.model = model
end

-- The loss options from the training arguments (box/cls/dfl gains, cls_pw) at call time, so a recipe that
-- changes trainer.args between epochs is honoured.
function v8DetectionLoss:options()
  local hyp = self.hyp
  local cls_pw = hyp.cls_pw
  if cls_pw ~= nil and type(cls_pw) ~= "table" and not yt.is_tensor(cls_pw) then cls_pw = nil end
  if type(cls_pw) == "table" and #cls_pw ~= self.nc then
    error(string.format("cls_pw has %d weights but the model has %d classes", #cls_pw, self.nc), 3)
  end
  return {
    box = hyp.box or 7.5,
    cls = hyp.cls or 0.5,
    dfl = hyp.dfl or 1.5,
    nc = self.nc,
    reg_max = self.reg_max,
    strides = self.stride,
    cls_pw = cls_pw,
    topk = self.topk,
    alpha = 0.5,
    beta = 6.0,
    -- data-parallel: every rank normalises by the whole batch's target-score sum, so N ranks compute exactly
    -- the gradient of one process with the whole batch (Ultralytics normalises per rank)
    -- (training only: validation runs on rank 0 alone)
    global_norm = (self.model.world_size or 1) > 1 and yt.is_grad_enabled(),
  }
end

-- preds: the 3 raw levels (or {y, raw} from an eval forward); batch: { batch_idx, cls, bboxes }
function v8DetectionLoss:__call(preds, batch)
  if type(preds) == "table" and type(preds[2]) == "table" and not yt.is_tensor(preds[2]) then preds = preds[2] end
  return yt.loss.detect_loss(preds, batch, self:options())
end

return M
