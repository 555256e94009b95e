-- Loader: batches of a dataset (a data.Dataset or a subclass), built ahead by the C loader's threads
-- (src/data/loader.c). `for batch in loader do ... end` iterates one epoch (the next loop is the next epoch);
-- #loader batches; loader:set_epoch(e); loader:close_mosaic(). A class of the engine: Loader:extend("Mine").
local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local function log(msg) require("yolotrain.data").log(msg) end

local Loader = class.Object:extend("Loader")

Loader.__len = function(self) return #self._c end
-- `for batch in loader do` calls the loader: the next batch of this epoch, nil at its end
Loader.__call = function(self) return self._c:next() end

-- dataset, batch, workers, shuffle, rank, seed, world_size: as data.build_dataloader.
function Loader:init(dataset, batch, workers, shuffle, rank, seed, world_size)
  local Base_Dataset = require("yolotrain.data.dataset").Base_Dataset
  if not class.is_instance(dataset, Base_Dataset) then
    error("build_dataloader: dataset must be a data.Dataset (from build_yolo_dataset, or a subclass's instance)", 3)
  end
  batch = math.min(math.tointeger(batch) or 16, #dataset)
  local nw = math.min(yt.sys.nproc(), math.tointeger(workers) or 0)
  if dataset.lua_images and nw > 0 then
    log(
      string.format(
        "%s%s:load_image is Lua: samples are built on the main thread (workers=0), which is slower",
        dataset.prefix or "",
        dataset:class_name()
      )
    )
    nw = 0
  end
  if dataset.rect and shuffle then
    log("WARNING 'rect=True' is incompatible with DataLoader shuffle, setting shuffle=False")
    shuffle = false
  end
  if dataset.rect and batch ~= math.min(dataset.batch_size, #dataset) then
    error(string.format("build_dataloader: rect dataset was built for batch %d, got %d", dataset.batch_size, batch), 3)
  end
  world_size = math.tointeger(world_size) or 1
  local shard_rank = (world_size > 1) and math.max(math.tointeger(rank) or 0, 0) or 0
  self._c =
    yt.data.loader(dataset._c, batch, nw, shuffle and true or false, math.tointeger(seed) or 0, world_size, shard_rank)
  self.dataset, self.batch_size, self.num_workers = dataset, batch, nw
  self.shuffle, self.rank = shuffle and true or false, rank
end

function Loader:iter()
  local c = self._c
  return function() return c:next() end
end
function Loader:next() return self._c:next() end
function Loader:set_epoch(e) self._c:set_epoch(e) end
function Loader:epoch() return self._c:epoch() end
function Loader:dataset_size() return #self.dataset end
function Loader:close() self._c:close() end

-- Mosaic and mixup off from the next batch taken: the dataset builds its transforms again (Dataset:close_mosaic)
-- and the batches built ahead with the old ones are dropped.
function Loader:close_mosaic()
  self.dataset:close_mosaic(self.dataset.hyp)
  self._c:restart()
end

-- The mosaic probability of the batches not yet taken (trainer:set{mosaic=}); a closed mosaic stays closed.
function Loader:set_mosaic(p)
  self.dataset:set_mosaic(p)
  self._c:restart()
end

return Loader
