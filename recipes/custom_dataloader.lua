-- A trainer whose get_dataloader is overridden: here it keeps only the training images that contain at least
-- two objects (a curriculum-style filter), by wrapping the stock loader's dataset before batching.
local cfg = require("yolotrain.cfg")
local data = require("yolotrain.data")
local detect = require("yolotrain.models.yolo.detect")

local FilteringTrainer, Base = detect.Detection_Trainer:extend("FilteringTrainer")

function FilteringTrainer:get_dataloader(dataset_path, batch_size, rank, mode)
  if mode ~= "train" then return Base.get_dataloader(self, dataset_path, batch_size, rank, mode) end
  -- a .txt image list of the images with >= 2 labels, then the stock pipeline on it
  local ds = self:build_dataset(dataset_path, mode, batch_size)
  local keep = {}
  for i, f in ipairs(ds:im_files()) do
    local labels = ds:labels(i)
    if labels and labels.cls and labels.cls:shape(1) >= 2 then keep[#keep + 1] = f end
  end
  local list = self.save_dir .. "/train_filtered.txt"
  local fh = assert(io.open(list, "w"))
  fh:write(table.concat(keep, "\n"), "\n")
  fh:close()
  print(string.format("custom_dataloader: training on %d of %d images (those with >= 2 objects)", #keep,
    #ds:im_files()))
  self.filtered_count = #keep
  return Base.get_dataloader(self, list, batch_size, rank, mode)
end

local overrides = cfg.recipe_overrides({ data = "shapes", model = "yolov8n.yaml", epochs = 2, imgsz = 160,
  name = "custom_dataloader" }, arg)
local trainer = FilteringTrainer{ overrides = overrides }
trainer:train()
assert(trainer.filtered_count and trainer.filtered_count > 0, "the override did not run")
