-- A custom dataset: a subclass of data.Dataset whose get_labels keeps only the training images with at least two
-- objects (a curriculum-style filter) and merges one class into another (a class remap), for training and
-- validation alike. No file is written: the C pipeline (threads, augmentation) runs on the label table returned.
-- The trainer's build_dataset returns it through dataset_class; overriding build_dataset works as well.
local data = require("yolotrain.data")
local detect = require("yolotrain.models.yolo.detect")
local cfg = require("yolotrain.cfg")
local yt = require("yolotrain.core")

-- shapes' classes are circle (0), square (1), triangle (2), cross (3): crosses are counted as squares
local REMAP = { [0] = 0, [1] = 1, [2] = 2, [3] = 1 }

local Curriculum_Dataset, Dataset = data.Dataset:extend("Curriculum_Dataset")

function Curriculum_Dataset:get_labels()
  local labels = Dataset.get_labels(self) -- the stock scan (verification, label cache)
  local kept = {}
  for _, l in ipairs(labels) do
    if not self.augment or l.cls:numel() >= 2 then -- the filter is for training only
      local cls = l.cls:tolist()
      for k, c in ipairs(cls) do cls[k] = { REMAP[math.tointeger(c)] } end
      if #cls > 0 then l.cls = yt.tensor(cls) end
      kept[#kept + 1] = l
    end
  end
  if self.augment then
    print(string.format("custom_dataloader: training on %d of %d images (those with >= 2 objects)", #kept, #labels))
  end
  return kept
end

local Curriculum_Trainer = detect.Detection_Trainer:extend("Curriculum_Trainer")
Curriculum_Trainer.dataset_class = Curriculum_Dataset

local overrides = cfg.recipe_overrides({ data = "shapes", model = "yolov8n.yaml", epochs = 2, imgsz = 160,
  name = "custom_dataloader" }, arg)
local trainer = Curriculum_Trainer{ overrides = overrides }
trainer:train()

local ds = trainer.train_loader.dataset
assert(ds:is_instance(Curriculum_Dataset), "the trainer did not build the custom dataset")
local crosses = 0
for _, c in ipairs((ds:all_labels()):tolist()) do crosses = crosses + (c == 3 and 1 or 0) end
print(string.format("custom_dataloader: %d training images, %d labels of class 3 left after the remap", #ds, crosses))
assert(crosses == 0, "the class remap did not reach the loader")
