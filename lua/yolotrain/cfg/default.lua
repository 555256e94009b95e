-- Every argument with its default and meaning: Ultralytics 8.2's default.yaml (same names and values), plus
-- yolotrain's own additions at the end. `NONE` stands for YAML's None (a key that exists but has no value).
-- The meanings say what yolotrain does with each argument; `yolotrain cfg` prints them and docs/reference.md is
-- generated from them (scripts/gen_reference.lua).
local NONE = setmetatable({}, { __tostring = function() return "None" end, __name = "None" })

-- The batch size AutoBatch gives on a CPU: Ultralytics measures accelerator memory, and on a CPU uses this one.
local AUTOBATCH_CPU = 16

-- The confidence a detection needs when predicting, plotting predictions and counting the confusion matrix
-- (Ultralytics' predict default; validation keeps every detection above 0.001 for the mAP).
local PREDICT_CONF = 0.25

-- A string starts a group; then { key, default, kind, meaning } in args.yaml order. kind: "float" (any number),
-- "fraction" (0..1), "int", "bool", "str", "any".
local defaults = {
  "Training",
  {
    "task",
    "detect",
    "str",
    "what the model does; yolotrain implements detect (the other Ultralytics tasks are refused)",
  },
  { "mode", "train", "str", "what to run: train, val, predict or export (on the command line a bare word)" },
  {
    "model",
    NONE,
    "any",
    "a model YAML (yolov8n.yaml: the shipped yolov8.yaml at scale n), a yolotrain checkpoint (.safetensors) or "
      .. "an Ultralytics checkpoint (.pt, read as data)",
  },
  {
    "data",
    NONE,
    "any",
    "the dataset: a dataset YAML, a folder holding data.yaml, or shapes (the embedded synthetic dataset)",
  },
  { "epochs", 100, "int", "epochs to train (recomputed from the measured epoch time when time= is set)" },
  { "time", NONE, "float", "hours to train; wins over epochs: training stops once that much time has passed" },
  { "patience", 100, "int", "epochs without a better fitness before training stops early; 0 turns early stopping off" },
  {
    "batch",
    16,
    "float",
    string.format(
      "images per batch (split over the ranks when data-parallel); -1 or a fraction 0 < batch < 1 "
        .. "asks for AutoBatch, which gives %d on a CPU",
      AUTOBATCH_CPU
    ),
  },
  {
    "imgsz",
    640,
    "any",
    "image size in pixels, rounded up to a multiple of the largest stride; predict and export take [h, w] too",
  },
  {
    "save",
    true,
    "bool",
    "train: write the checkpoints every epoch (the final epoch is saved anyway); predict: write the annotated images",
  },
  {
    "save_period",
    -1,
    "int",
    "also keep weights/epochN.safetensors every N epochs (N counted from 0: epoch0, epochN, ...); -1: off",
  },
  {
    "cache",
    false,
    "any",
    "keep the decoded training images in memory: true or ram (disk is taken as ram, with a warning)",
  },
  { "device", NONE, "any", "accepted for compatibility: yolotrain runs on the CPU" },
  {
    "workers",
    8,
    "int",
    "data loader threads for training (validation during training uses twice as many), at most the CPUs available",
  },
  { "project", NONE, "any", "the folder of run directories (default: <runs_dir setting>/<task>, i.e. runs/detect)" },
  {
    "name",
    NONE,
    "any",
    "the run directory inside project (default: the mode); numbered name2, name3, ... when it exists",
  },
  { "exist_ok", false, "bool", "write into an existing run directory instead of numbering a new one" },
  {
    "pretrained",
    true,
    "any",
    "a weights file (.safetensors or .pt) copied into model= where names and shapes match; true or false alone "
      .. "change nothing (a checkpoint given as model= brings its own weights)",
  },
  {
    "optimizer",
    "auto",
    "str",
    "SGD, Adam, AdamW or auto (AdamW with a learning rate from the class count, or SGD lr=0.01 past 10,000 "
      .. "iterations); Adamax, NAdam and RAdam run as Adam",
  },
  {
    "verbose",
    true,
    "bool",
    "print the model summary when training starts, per-class metrics after a standalone validation, a line per "
      .. "image when predicting",
  },
  { "seed", 0, "int", "seed of the weight initialisation, the data order and the augmentation" },
  {
    "deterministic",
    true,
    "bool",
    "accepted for compatibility: yolotrain is always deterministic for a given thread count",
  },
  { "single_cls", false, "bool", "train and validate as one class (every label becomes class 0)" },
  {
    "rect",
    false,
    "bool",
    "training batches of similar aspect ratio padded to a rectangle (no shuffling, no mosaic); validation always "
      .. "batches this way",
  },
  { "cos_lr", false, "bool", "a cosine learning-rate schedule from lr0 to lr0 * lrf instead of the linear one" },
  { "close_mosaic", 10, "int", "turn mosaic and mixup off for the last N epochs; 0: never" },
  {
    "resume",
    false,
    "any",
    "true: continue the newest last.safetensors under project; a path: continue that checkpoint (its arguments "
      .. "come back; imgsz, batch, workers, ranks and device may be given anew)",
  },
  {
    "amp",
    false,
    "bool",
    "mixed precision: training convolutions in bf16 (float32 accumulation, weights, BatchNorm, loss and optimizer) "
      .. "on CPUs with BF16 instructions, float32 elsewhere; validation and prediction stay float32 (off by default "
      .. "until bf16 is shown to reach float32's mAP)",
  },
  { "fraction", 1.0, "fraction", "the fraction of the training images to use (validation uses all)" },
  { "profile", false, "bool", "accepted for compatibility; no effect" },
  {
    "freeze",
    NONE,
    "any",
    "freeze the first N layers (an integer) or the listed layer indices; the DFL layer is always frozen",
  },
  { "multi_scale", false, "bool", "accepted for compatibility; no effect (training uses one image size)" },
  { "overlap_mask", true, "bool", "segmentation only: no effect" },
  { "mask_ratio", 4, "int", "segmentation only: no effect" },
  { "dropout", 0.0, "fraction", "classification only: no effect" },
  "Validation",
  {
    "val",
    true,
    "bool",
    "validate after every epoch (the final epoch, and one that may stop training early, are validated either way)",
  },
  { "split", "val", "str", "the dataset split a standalone validation reads (val, test or train)" },
  { "save_json", false, "bool", "accepted for compatibility; no COCO JSON is written" },
  { "save_hybrid", false, "bool", "not supported: ignored with a warning" },
  {
    "conf",
    NONE,
    "fraction",
    string.format(
      "minimum confidence of a detection (default: 0.001 when validating, %g when predicting)",
      PREDICT_CONF
    ),
  },
  { "iou", 0.7, "fraction", "IoU above which non-maximum suppression drops the lower-scoring box" },
  { "max_det", 300, "int", "at most this many detections per image" },
  { "half", false, "bool", "accepted for compatibility: inference runs in float32 (export warns and turns it off)" },
  { "dnn", false, "bool", "accepted for compatibility; no effect" },
  {
    "plots",
    true,
    "bool",
    "write plots: training batch mosaics and results.png; the validator's confusion matrices, P/R/F1/PR curves "
      .. "and batch images",
  },
  "Prediction",
  {
    "source",
    NONE,
    "any",
    "what to predict: an image, a folder, a glob, a .txt list of images, or a list of these (no videos or streams)",
  },
  { "vid_stride", 1, "int", "videos only: no effect" },
  { "stream_buffer", false, "bool", "streams only: no effect" },
  { "visualize", false, "bool", "accepted for compatibility; no effect" },
  { "augment", false, "bool", "accepted for compatibility; no effect (no test-time augmentation)" },
  { "agnostic_nms", false, "bool", "suppress overlapping boxes across classes, not only within a class" },
  {
    "classes",
    NONE,
    "any",
    "keep only these class ids (an integer or a list); in training, only the labels of these classes",
  },
  { "retina_masks", false, "bool", "segmentation only: no effect" },
  { "embed", NONE, "any", "accepted for compatibility; no effect" },
  "Visualisation",
  { "show", false, "bool", "accepted for compatibility: no window is opened" },
  { "save_frames", false, "bool", "videos only: no effect" },
  {
    "save_txt",
    false,
    "bool",
    "write one label file per image (class cx cy w h, normalised) into <run>/labels, when predicting or validating",
  },
  { "save_conf", false, "bool", "add the confidence as a sixth column to save_txt files" },
  { "save_crop", false, "bool", "accepted for compatibility; no crops are written" },
  { "show_labels", true, "bool", "draw the class names on saved images" },
  { "show_conf", true, "bool", "draw the confidences on saved images" },
  { "show_boxes", true, "bool", "draw the boxes on saved images" },
  { "line_width", NONE, "int", "box line width in pixels (default: from the image size)" },
  "Export",
  {
    "format",
    "torchscript",
    "str",
    "onnx, or safetensors (converts a .pt); Ultralytics' default torchscript is refused",
  },
  { "keras", false, "bool", "TensorFlow export only: no effect" },
  { "optimize", false, "bool", "TorchScript export only: no effect" },
  { "int8", false, "bool", "not supported: an error (float32 export only)" },
  { "dynamic", false, "bool", "ONNX with a dynamic batch, height and width" },
  { "simplify", false, "bool", "nothing to do: the ONNX graph is written folded" },
  { "opset", NONE, "int", "the ONNX opset (default and accepted range: docs/export.md)" },
  { "workspace", 4, "float", "TensorRT export only: no effect" },
  { "nms", false, "bool", "not supported: an error (the ONNX graph ends where NMS starts)" },
  "Hyperparameters",
  { "lr0", 0.01, "fraction", "initial learning rate (optimizer=auto chooses its own)" },
  { "lrf", 0.01, "fraction", "final learning rate, as a fraction of lr0" },
  { "momentum", 0.937, "fraction", "SGD momentum, or Adam's beta1 (optimizer=auto chooses its own)" },
  {
    "weight_decay",
    0.0005,
    "fraction",
    "weight decay of the weights (not of biases or BatchNorm), scaled by batch * accumulate / nbs",
  },
  { "warmup_epochs", 3.0, "float", "epochs of learning-rate and momentum warmup (at least 100 iterations); 0: none" },
  { "warmup_momentum", 0.8, "fraction", "SGD momentum at the start of warmup" },
  { "warmup_bias_lr", 0.1, "fraction", "bias learning rate at the start of warmup (0 with optimizer=auto)" },
  { "box", 7.5, "float", "gain of the box (CIoU) loss" },
  { "cls", 0.5, "float", "gain of the class (BCE) loss" },
  { "dfl", 1.5, "float", "gain of the distribution focal loss" },
  { "pose", 12.0, "float", "pose only: no effect" },
  { "kobj", 1.0, "float", "pose only: no effect" },
  { "label_smoothing", 0.0, "fraction", "accepted for compatibility; no effect" },
  {
    "nbs",
    64,
    "int",
    "nominal batch size: gradients of nbs / batch batches are accumulated before each optimizer step",
  },
  { "hsv_h", 0.015, "fraction", "hue augmentation: a random shift of up to this fraction" },
  { "hsv_s", 0.7, "fraction", "saturation augmentation: a random gain of up to this fraction" },
  { "hsv_v", 0.4, "fraction", "value (brightness) augmentation: a random gain of up to this fraction" },
  { "degrees", 0.0, "float", "random rotation of up to +- this many degrees" },
  { "translate", 0.1, "fraction", "random translation of up to +- this fraction of the image size" },
  { "scale", 0.5, "fraction", "random scaling by a gain in 1 +- this" },
  { "shear", 0.0, "float", "random shear of up to +- this many degrees" },
  { "perspective", 0.0, "fraction", "random perspective distortion of up to this amount (0 .. 0.001 is sensible)" },
  { "flipud", 0.0, "fraction", "probability of an up-down flip" },
  { "fliplr", 0.5, "fraction", "probability of a left-right flip" },
  { "bgr", 0.0, "fraction", "accepted for compatibility; no effect" },
  { "mosaic", 1.0, "fraction", "probability of a four-image mosaic" },
  { "mixup", 0.0, "fraction", "probability of blending in a second (mosaic) image" },
  { "copy_paste", 0.0, "fraction", "segmentation augmentation: must be 0 (it needs masks)" },
  { "auto_augment", "randaugment", "str", "classification only: no effect" },
  { "erasing", 0.4, "fraction", "classification only: no effect" },
  { "crop_fraction", 1.0, "fraction", "classification only: no effect" },
  "Configuration and tracking",
  {
    "cfg",
    NONE,
    "any",
    "a YAML file of arguments (a run's args.yaml, say) that replaces these defaults; arguments given beside it win",
  },
  { "tracker", "botsort.yaml", "str", "tracking only: no effect" },
  "yolotrain additions",
  { "cls_pw", NONE, "any", "per-class weights of the class loss: a list of nc numbers" },
  { "ranks", 1, "int", "data-parallel processes: N > 1 re-launches the run under mpirun (docs/distributed.md)" },
  { "sync_bn", false, "bool", "synchronise the BatchNorm statistics across ranks" },
  {
    "callback_errors",
    "stop",
    "str",
    "stop: a failing callback stops the run (the last checkpoint stays intact); warn: print it and go on",
  },
  {
    "tensorboard",
    NONE,
    "bool",
    "write TensorBoard event files (events.out.tfevents.*) in the run directory; None: the tensorboard user "
      .. "setting (true unless changed)",
  },
}

-- order: every key in args.yaml order; groups: { title =, keys = {...} } in that order.
local M = { NONE = NONE, order = {}, values = {}, kinds = {}, meanings = {}, groups = {} }
for _, e in ipairs(defaults) do
  if type(e) == "string" then
    M.groups[#M.groups + 1] = { title = e, keys = {} }
  else
    M.order[#M.order + 1] = e[1]
    M.values[e[1]] = e[2]
    M.kinds[e[1]] = e[3]
    M.meanings[e[1]] = e[4]
    table.insert(M.groups[#M.groups].keys, e[1])
  end
end

-- The smallest valid value of numeric arguments (a value below it is refused before anything is created).
-- batch also takes Ultralytics' AutoBatch forms: -1, or a fraction 0 < batch < 1 of the memory.
M.minimum = {
  epochs = 1,
  batch = 1,
  workers = 0,
  patience = 0,
  close_mosaic = 0,
  nbs = 1,
  max_det = 1,
  vid_stride = 1,
  ranks = 1,
  warmup_epochs = 0,
  mask_ratio = 1,
  time = 0,
  workspace = 0,
}
M.autobatch_cpu = AUTOBATCH_CPU
M.predict_conf = PREDICT_CONF

-- A fresh table of defaults (NONE becomes nil in it; use M.order to walk every key).
function M.copy()
  local t = {}
  for k, v in pairs(M.values) do
    if v ~= NONE then t[k] = v end
  end
  return t
end

return M
