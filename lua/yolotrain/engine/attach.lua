-- The training's side of `yolotrain attach` (docs/cli.md "Attach"): the control socket in the run directory,
-- polled between steps; the chunks a client sends run here, in the training's Lua state, with `trainer` in scope.
--
--   local a = attach.serve(trainer)   raises when the socket cannot be served (the trainer then warns, trains on)
--   a:poll()                          at a step boundary: answers what the client sent; blocks while paused
--   a:close([why])                    says goodbye to the client, removes the socket
--   attach.socket_path(run_dir)       where a run's socket is
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local utils = require("yolotrain.utils")
local repl = require("yolotrain.repl")

local M = {}

M.SOCKET_NAME = "attach.sock"

function M.socket_path(run_dir) return utils.join(run_dir, M.SOCKET_NAME) end

local Attach = class.Object:extend("Attach")
M.Attach = Attach

function M.serve(trainer) return Attach(trainer) end

function Attach:init(trainer)
  self.trainer = trainer
  self.server = yt.control.serve(M.socket_path(trainer.save_dir))
  self.paused = false
  self.session = {} -- the client's own globals, kept across its entries and clients
  local a = self
  local function print_to_client(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    a.server:send("out", table.concat(parts, "\t") .. "\n")
  end
  local builtins = {
    trainer = trainer,
    yt = require("yolotrain"),
    print = print_to_client,
    help = function(obj) print_to_client(repl.help(obj)) end,
    pause = function()
      a.paused = true
      utils.log("attach: paused at epoch %d, batch %s", trainer.epoch + 1, tostring(trainer.batch_i))
    end,
    cont = function()
      if a.paused then utils.log("attach: continuing") end
      a.paused = false
    end,
    save = function() return trainer:save_last() end,
    stop = function()
      a.paused = false
      trainer:request_stop("user")
    end,
  }
  self.builtins = builtins
  self.env = setmetatable({}, {
    __index = function(_, k)
      local v = builtins[k]
      if v == nil then v = a.session[k] end
      if v == nil then v = _G[k] end
      return v
    end,
    __newindex = function(_, k, v) a.session[k] = v end,
    __names = { builtins, self.session },
  })
end

function Attach:banner()
  local t = self.trainer
  return string.format("yolotrain attach: %s (pid %d), epoch %d/%d. `trainer` is in scope; help() lists the " ..
    "commands; Ctrl-D leaves, the training carries on.", t.save_dir, yt.sys.getpid(), (t.epoch or 0) + 1,
    t.epochs or 0)
end

-- Compiles as an expression first (its values are shown), then as statements, as the local REPL does.
function Attach:eval(src)
  local fn, err = load("return " .. src, "=attach", "t", self.env)
  if not fn then fn, err = load(src, "=attach", "t", self.env) end
  local s = self.server
  if not fn then
    s:send("err", tostring(err) .. "\n")
    s:send("done")
    return
  end
  -- chunks look at the training: they do not record on its autograd tape
  local grad = yt.is_grad_enabled()
  yt.set_grad_enabled(false)
  local r = table.pack(xpcall(fn, function(e)
    local tb = debug.traceback(type(e) == "string" and e or repl.repr(e), 2)
    -- the frames of the entry only: what called it is the training's business
    return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
  end))
  yt.set_grad_enabled(grad)
  if not r[1] then
    s:send("err", tostring(r[2]) .. "\n")
  elseif r.n > 1 then
    local parts = {}
    for i = 2, r.n do
      local ok, text = true, r[i] -- a string shows as itself, as in the local REPL
      if type(r[i]) ~= "string" then ok, text = pcall(repl.repr, r[i]) end
      parts[#parts + 1] = ok and text or tostring(r[i])
    end
    s:send("out", table.concat(parts, "\t") .. "\n")
  end
  s:send("done")
end

function Attach:poll()
  local s = self.server
  while true do
    local ev, text = s:poll(self.paused and -1 or 0)
    if ev == nil then
      if not self.paused then return end
      -- Ctrl-C in the training's terminal while paused: leave the pause to the interrupt handling
      if yt.sys.interrupt_count and yt.sys.interrupt_count() > 0 then
        self.paused = false
        return
      end
    elseif ev == "connect" then
      s:send("hello", self:banner())
      utils.log("attach: a client attached")
    elseif ev == "disconnect" then
      utils.log("attach: the client left%s", self.paused and "; continuing the paused training" or "")
      self.paused = false
    elseif ev == "eval" then
      self:eval(text)
    elseif ev == "complete" then
      local ok, list = pcall(repl.complete, text, self.env)
      s:send("matches", ok and table.concat(list, "\n") or "")
    end
  end
end

function Attach:close(why)
  if self.server then
    pcall(self.server.send, self.server, "bye", why or "the training ended")
    self.server:close()
    self.server = nil
  end
end

return M
