-- A progress bar for loops (training, validation) and transfers (downloads): redrawn in place on a terminal (with
-- the rate and ETA), plain lines otherwise (one per quarter of a long run, and the last), so logs stay readable.
--
--   local bar = Progress(nb)                      -- counts items: bar:update(desc) after each
--   local bar = Progress(total, out, { unit = "B" })   -- counts bytes: bar:set(received, desc); total 0 = unknown
--   bar:close()
local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local Progress = class.Object:extend("Progress")

function Progress:init(total, out, opts)
  self.total = total
  self.n = 0
  self.out = out or io.stdout
  self.bytes = opts ~= nil and opts.unit == "B"
  self.t0 = yt.machine.now()
  -- under mpirun the output is forwarded line by line even when it ends on a terminal: use plain lines there
  local forwarded = os.getenv("OMPI_COMM_WORLD_SIZE") ~= nil
  self.tty = not forwarded and yt.sys and yt.sys.isatty and yt.sys.isatty(1) or false
  self.plain_step = (self.bytes or total >= 20) and 0.25 or 1.0
  self.next_plain = self.plain_step
end

local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, (s % 3600) // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end

local fmt_bytes = require("yolotrain.utils").fmt_bytes

function Progress:render(desc)
  local elapsed = yt.machine.now() - self.t0
  local rate = self.n > 0 and elapsed > 0 and self.n / elapsed or 0
  local known = self.total > 0
  local eta = rate > 0 and known and (self.total - self.n) / rate or 0
  local frac = known and math.min(self.n / self.total, 1) or (self.bytes and 0 or 1)
  local width = 20
  local filled = math.floor(frac * width + 0.5)
  local bar = string.rep("━", filled) .. string.rep("─", width - filled)
  if self.bytes then
    local speed = fmt_bytes(rate) .. "/s"
    if not known then
      return string.format("%s %s [%s, %s]", desc or "", fmt_bytes(self.n), fmt_time(elapsed), speed)
    end
    return string.format(
      "%s %3d%% %s %s/%s [%s<%s, %s]",
      desc or "",
      math.floor(frac * 100),
      bar,
      fmt_bytes(self.n),
      fmt_bytes(self.total),
      fmt_time(elapsed),
      fmt_time(eta),
      speed
    )
  end
  local speed = rate >= 1 and string.format("%.2fit/s", rate) or string.format("%.2fs/it", rate > 0 and 1 / rate or 0)
  return string.format(
    "%s %3d%% %s %d/%d [%s<%s, %s]",
    desc or "",
    math.floor(frac * 100),
    bar,
    self.n,
    self.total,
    fmt_time(elapsed),
    fmt_time(eta),
    speed
  )
end

local function draw(self, desc)
  self.desc = desc
  if self.tty then
    self.out:write("\r", self:render(desc), "\27[K")
    self.out:flush()
  elseif self.total > 0 and (self.n >= self.total or self.n / self.total >= self.next_plain) then
    self.out:write(self:render(desc), "\n")
    self.out:flush()
    self.plain_done = self.n >= self.total
    while self.n / self.total >= self.next_plain do
      self.next_plain = self.next_plain + self.plain_step
    end
  end
end

-- One more item done.
function Progress:update(desc)
  self.n = self.n + 1
  draw(self, desc)
end

-- n done so far (bytes received); total may change once it is known (a server announces the size late).
function Progress:set(n, desc, total)
  if total ~= nil then self.total = total end
  if n == self.n and desc == self.desc and self.drawn then return end
  self.n = n
  self.drawn = true
  draw(self, desc)
end

function Progress:close()
  if self.closed then return end
  self.closed = true
  -- a transfer of unknown size, or one that ended short of its total, gets its last line too
  if not self.tty and self.bytes and self.n > 0 and not self.plain_done then
    self.out:write(self:render(self.desc), "\n")
  end
  if self.tty and self.n > 0 then self.out:write("\n") end
  self.out:flush()
end

return Progress
