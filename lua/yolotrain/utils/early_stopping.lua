-- Early stopping on fitness: stop after `patience` epochs without improvement (Ultralytics' EarlyStopping).
local class = require("yolotrain.class")

local EarlyStopping = class.Object:extend("EarlyStopping")

function EarlyStopping:init(patience)
  self.best_fitness = 0.0
  self.best_epoch = 0
  self.patience = (patience and patience > 0) and patience or math.huge
  self.possible_stop = false
end

-- Returns true when training should stop after `epoch` (1-based count of finished epochs).
function EarlyStopping:check(epoch, fitness)
  if fitness == nil then return false end
  if fitness >= self.best_fitness then
    self.best_epoch = epoch
    self.best_fitness = fitness
  end
  local delta = epoch - self.best_epoch
  self.possible_stop = delta >= (self.patience - 1)
  local stop = delta >= self.patience
  if stop then
    print(
      string.format(
        "Stopping training early as no improvement observed in last %d epochs. Best results "
          .. "observed at epoch %d, best model saved as best.safetensors.\nTo update EarlyStopping(patience=%d) pass a "
          .. "new patience value, i.e. `patience=300` or use `patience=0` to disable EarlyStopping.",
        self.patience,
        self.best_epoch,
        self.patience
      )
    )
  end
  return stop
end

return EarlyStopping
