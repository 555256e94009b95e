-- Detection_Trainer: trains YOLO detectors on Ultralytics-format datasets (DetectionTrainer's role).
local yt = require("yolotrain.core")
local Engine_Trainer = require("yolotrain.engine.trainer")
local utils = require("yolotrain.utils")

local Detection_Trainer = Engine_Trainer:extend("Detection_Trainer")

function Detection_Trainer:get_dataset()
  local data = require("yolotrain.data")
  if self.args.data == nil then
    error("no dataset given: pass data=<data.yaml or a folder holding data.yaml>", 0)
  end
  local info = data.check_det_dataset(self.args.data)
  if self.args.single_cls then
    info.names = { [0] = "item" }
    info.nc = 1
  end
  return info
end

-- The dataset of a split: an instance of self.dataset_class (default data.YOLO_Dataset; a recipe sets it to its
-- own data.Dataset subclass, or overrides build_dataset).
function Detection_Trainer:build_dataset(img_path, mode, batch)
  local data = require("yolotrain.data")
  local gs = utils.max_stride(type(self.model) == "table" and self.model or {})
  return data.build_yolo_dataset(self.args, img_path, batch, self.data, mode, mode == "val", gs, self.dataset_class)
end

function Detection_Trainer:get_dataloader(dataset_path, batch_size, rank, mode)
  mode = mode or "train"
  local data = require("yolotrain.data")
  -- the dataset sees the global batch (its mosaic window depends on it): ranks then build the very samples one
  -- process with the whole batch would
  local global_batch = mode == "train" and batch_size * math.max(self.world_size or 1, 1) or batch_size
  local dataset = self:build_dataset(dataset_path, mode, global_batch)
  local shuffle = mode == "train" -- build_dataloader turns it off (with a warning) for a rect dataset
  local workers = mode == "train" and self.args.workers or self.args.workers * 2
  return data.build_dataloader(dataset, batch_size, workers, shuffle, rank, self.args.seed,
    mode == "train" and self.world_size or 1)
end

-- uint8 images -> float 0..1
function Detection_Trainer:preprocess_batch(batch)
  batch.img = yt.to_float(batch.img, 1 / 255)
  return batch
end

function Detection_Trainer:set_model_attributes()
  self.model.nc = self.data.nc
  self.model.names = self.data.names
  self.model.args = self.args
end

function Detection_Trainer:build_model(cfg, weights, verbose)
  local tasks = require("yolotrain.nn.tasks")
  local model = tasks.Detection_Model(cfg, { nc = self.data.nc, verbose = verbose })
  if weights then model:load(weights) end
  return model
end

function Detection_Trainer:get_validator()
  self.loss_names = { "box_loss", "cls_loss", "dfl_loss" }
  local Detection_Validator = require("yolotrain.models.yolo.detect.val")
  local args = {}
  for k, v in pairs(self.args) do args[k] = v end
  return Detection_Validator{ dataloader = self.test_loader, save_dir = self.save_dir, args = args,
    _callbacks = self.callbacks }
end

function Detection_Trainer:label_loss_items(loss_items, prefix)
  prefix = prefix or "train"
  local keys = {}
  for i, x in ipairs(self.loss_names) do keys[i] = prefix .. "/" .. x end
  if loss_items == nil then return keys end
  local out = {}
  for i, k in ipairs(keys) do out[k] = math.floor(loss_items[i] * 1e5 + 0.5) / 1e5 end
  return out
end

function Detection_Trainer:progress_string()
  local cols = { "Epoch" }
  for _, n in ipairs(self.loss_names) do cols[#cols + 1] = n end
  cols[#cols + 1] = "Instances"
  cols[#cols + 1] = "Size"
  local out = "\n"
  for _, c in ipairs(cols) do out = out .. string.format("%11s", c) end
  return out
end

function Detection_Trainer:progress_line(epoch)
  local s = string.format("%11s", string.format("%d/%d", epoch + 1, self.epochs))
  for _, v in ipairs(self.tloss or {}) do s = s .. string.format("%11.4g", v) end
  return s .. string.format("%11.4g%11.4g", self.batch_instances or 0, self.batch_imgsz or 0)
end

function Detection_Trainer:plot_training_samples(batch, ni)
  local data = require("yolotrain.data")
  data.plot_batch(batch, self.data.names, utils.join(self.save_dir, string.format("train_batch%d.jpg", ni)))
end

-- labels.jpg and labels_correlogram.jpg from the training set's labels (Ultralytics' plot_training_labels).
function Detection_Trainer:plot_training_labels()
  local dataset = self.train_loader and self.train_loader.dataset
  if not (dataset and dataset.all_labels) then
    utils.log("WARNING: not plotting labels: the train loader's dataset has no all_labels()")
    return
  end
  local cls, boxes = dataset:all_labels()
  local plots = require("yolotrain.utils.plotting")
  plots.plot_labels(boxes, cls, self.data.names, self.save_dir, function(p) self:on_plot(p) end)
end

function Detection_Trainer:plot_metrics()
  local plots = require("yolotrain.utils.plotting")
  plots.plot_results(self.csv, utils.join(self.save_dir, "results.png"))
end

return Detection_Trainer
