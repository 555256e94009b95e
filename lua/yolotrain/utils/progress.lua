-- A progress bar for the training loop: redrawn in place on a terminal (with it/s and ETA), plain lines
-- otherwise (one per quarter of a long epoch, and the last), so logs stay readable.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local Progress = class.Object:extend("Progress")

function Progress:init(total, out)
  self.total = total
  self.n = 0
  self.out = out or io.stdout
  self.t0 = yt.now()
  -- under mpirun the output is forwarded line by line even when it ends on a terminal: use plain lines there
  local forwarded = os.getenv("OMPI_COMM_WORLD_SIZE") ~= nil
  self.tty = not forwarded and yt.sys and yt.sys.isatty and yt.sys.isatty(1) or false
  self.plain_step = total >= 20 and 0.25 or 1.0
  self.next_plain = self.plain_step
end

local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, (s % 3600) // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end

function Progress:render(desc)
  local elapsed = yt.now() - self.t0
  local rate = self.n > 0 and self.n / elapsed or 0
  local eta = rate > 0 and (self.total - self.n) / rate or 0
  local frac = self.total > 0 and self.n / self.total or 1
  local width = 20
  local filled = math.floor(frac * width + 0.5)
  local bar = string.rep("━", filled) .. string.rep("─", width - filled)
  local speed = rate >= 1 and string.format("%.2fit/s", rate) or string.format("%.2fs/it", rate > 0 and 1 / rate or 0)
  return string.format("%s %3d%% %s %d/%d [%s<%s, %s]", desc or "", math.floor(frac * 100), bar, self.n, self.total,
    fmt_time(elapsed), fmt_time(eta), speed)
end

function Progress:update(desc)
  self.n = self.n + 1
  self.desc = desc
  if self.tty then
    self.out:write("\r", self:render(desc), "\27[K")
    self.out:flush()
  elseif self.n == self.total or self.n / self.total >= self.next_plain then
    self.out:write(self:render(desc), "\n")
    self.out:flush()
    while self.n / self.total >= self.next_plain do self.next_plain = self.next_plain + self.plain_step end
  end
end

function Progress:close()
  if self.closed then return end
  self.closed = true
  if self.tty and self.n > 0 then self.out:write("\n") end
  self.out:flush()
end

return Progress
