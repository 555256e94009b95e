-- Every argument with its default: Ultralytics 8.2's default.yaml (same names and values), plus yolotrain's
-- own additions at the end. `NONE` stands for YAML's None (a key that exists but has no value).
local NONE = setmetatable({}, { __tostring = function() return "None" end, __name = "None" })

local defaults = {
  -- order matters for args.yaml: { key, default, kind }; kind: "float" (any number), "fraction" (0..1),
  -- "int", "bool", "str", "any"
  { "task", "detect", "str" }, { "mode", "train", "str" },
  { "model", NONE, "any" }, { "data", NONE, "any" },
  { "epochs", 100, "int" }, { "time", NONE, "float" }, { "patience", 100, "int" }, { "batch", 16, "float" },
  { "imgsz", 640, "any" }, { "save", true, "bool" }, { "save_period", -1, "int" }, { "cache", false, "any" },
  { "device", NONE, "any" }, { "workers", 8, "int" }, { "project", NONE, "any" }, { "name", NONE, "any" },
  { "exist_ok", false, "bool" }, { "pretrained", true, "any" }, { "optimizer", "auto", "str" },
  { "verbose", true, "bool" }, { "seed", 0, "int" }, { "deterministic", true, "bool" },
  { "single_cls", false, "bool" }, { "rect", false, "bool" }, { "cos_lr", false, "bool" },
  { "close_mosaic", 10, "int" }, { "resume", false, "any" }, { "amp", true, "bool" },
  { "fraction", 1.0, "fraction" }, { "profile", false, "bool" }, { "freeze", NONE, "any" },
  { "multi_scale", false, "bool" }, { "overlap_mask", true, "bool" }, { "mask_ratio", 4, "int" },
  { "dropout", 0.0, "fraction" },
  -- val/test
  { "val", true, "bool" }, { "split", "val", "str" }, { "save_json", false, "bool" },
  { "save_hybrid", false, "bool" }, { "conf", NONE, "fraction" }, { "iou", 0.7, "fraction" },
  { "max_det", 300, "int" }, { "half", false, "bool" }, { "dnn", false, "bool" }, { "plots", true, "bool" },
  -- predict
  { "source", NONE, "any" }, { "vid_stride", 1, "int" }, { "stream_buffer", false, "bool" },
  { "visualize", false, "bool" }, { "augment", false, "bool" }, { "agnostic_nms", false, "bool" },
  { "classes", NONE, "any" }, { "retina_masks", false, "bool" }, { "embed", NONE, "any" },
  -- visualize
  { "show", false, "bool" }, { "save_frames", false, "bool" }, { "save_txt", false, "bool" },
  { "save_conf", false, "bool" }, { "save_crop", false, "bool" }, { "show_labels", true, "bool" },
  { "show_conf", true, "bool" }, { "show_boxes", true, "bool" }, { "line_width", NONE, "int" },
  -- export
  { "format", "torchscript", "str" }, { "keras", false, "bool" }, { "optimize", false, "bool" },
  { "int8", false, "bool" }, { "dynamic", false, "bool" }, { "simplify", false, "bool" },
  { "opset", NONE, "int" }, { "workspace", 4, "float" }, { "nms", false, "bool" },
  -- hyperparameters
  { "lr0", 0.01, "fraction" }, { "lrf", 0.01, "fraction" }, { "momentum", 0.937, "fraction" },
  { "weight_decay", 0.0005, "fraction" }, { "warmup_epochs", 3.0, "float" },
  { "warmup_momentum", 0.8, "fraction" }, { "warmup_bias_lr", 0.1, "fraction" }, { "box", 7.5, "float" },
  { "cls", 0.5, "float" }, { "dfl", 1.5, "float" }, { "pose", 12.0, "float" }, { "kobj", 1.0, "float" },
  { "label_smoothing", 0.0, "fraction" }, { "nbs", 64, "int" }, { "hsv_h", 0.015, "fraction" },
  { "hsv_s", 0.7, "fraction" }, { "hsv_v", 0.4, "fraction" }, { "degrees", 0.0, "float" },
  { "translate", 0.1, "fraction" }, { "scale", 0.5, "fraction" }, { "shear", 0.0, "float" },
  { "perspective", 0.0, "fraction" }, { "flipud", 0.0, "fraction" }, { "fliplr", 0.5, "fraction" },
  { "bgr", 0.0, "fraction" }, { "mosaic", 1.0, "fraction" }, { "mixup", 0.0, "fraction" },
  { "copy_paste", 0.0, "fraction" }, { "auto_augment", "randaugment", "str" }, { "erasing", 0.4, "fraction" },
  { "crop_fraction", 1.0, "fraction" },
  -- custom config, tracker
  { "cfg", NONE, "any" }, { "tracker", "botsort.yaml", "str" },
  -- yolotrain additions
  { "cls_pw", NONE, "any" },          -- per-class weights of the class loss (a list of nc numbers)
  { "ranks", 1, "int" },              -- data-parallel processes (re-launches itself under mpirun)
  { "sync_bn", false, "bool" },       -- synchronised BatchNorm statistics across ranks
  { "callback_errors", "stop", "str" }, -- "stop": a failing callback stops the run; "warn": warn and go on
  { "tensorboard", NONE, "bool" },    -- TensorBoard event files in the run directory; None: the user setting
}

local M = { NONE = NONE, order = {}, values = {}, kinds = {} }
for _, e in ipairs(defaults) do
  M.order[#M.order + 1] = e[1]
  M.values[e[1]] = e[2]
  M.kinds[e[1]] = e[3]
end

-- The smallest valid value of numeric arguments (a value below it is refused before anything is created).
-- batch also takes Ultralytics' AutoBatch forms: -1, or a fraction 0 < batch < 1 of the memory.
M.minimum = {
  epochs = 1, batch = 1, workers = 0, patience = 0, close_mosaic = 0, nbs = 1, max_det = 1, vid_stride = 1,
  ranks = 1, warmup_epochs = 0, mask_ratio = 1, time = 0, workspace = 0,
}
-- The batch size AutoBatch gives on a CPU: Ultralytics measures accelerator memory, and on a CPU uses this one.
M.autobatch_cpu = 16

-- A fresh table of defaults (NONE becomes nil in it; use M.order to walk every key).
function M.copy()
  local t = {}
  for k, v in pairs(M.values) do
    if v ~= NONE then t[k] = v end
  end
  return t
end

return M
