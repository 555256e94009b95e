-- Errors and stops as the user sees them: one message, one traceback that starts at the user's file:line (the
-- engine's frames left out unless YT_TRACEBACK=full), and the exit status.
--
-- A report is a table with `message`, `exit_status` and, for a bug, the `traceback` taken where it was raised.
-- The executable's handlers (src/lua/repl.c) pass a report through unchanged and exit with its status, so a
-- report wrapped by several engine layers still prints once. Library code raises reports; it never exits.
local M = {}

local Report = {}
Report.__index = Report
Report.__tostring = function(r)
  if r.traceback then return r.message .. "\n" .. r.traceback end
  return r.message
end
M.Report = Report

function M.is_report(e) return getmetatable(e) == Report end

-- How a training ended early, by stop_reason (Engine_Trainer:request_stop): what the last line says and the exit
-- status (128 + the signal, as a shell reports a process the signal ended; stop() counts as Ctrl-C).
M.STOPS = {
  interrupt = { says = "Stopped by Ctrl-C", exit_status = 130 },
  terminate = { says = "Stopped by SIGTERM", exit_status = 143 },
  user = { says = "Stopped by user", exit_status = 130 },
}

-- The report of a training stopped for `reason`; where: "at epoch 3/10, batch 17/128; last saved to ...".
function M.stopped(reason, where)
  local stop = M.STOPS[reason]
  if not stop then error(string.format("unknown stop reason '%s'", tostring(reason)), 2) end
  local r = M.report(stop.says .. " " .. where, stop.exit_status)
  r.stop_reason = reason
  return r
end

-- Is this Lua source one of the engine's files?
local function engine_source(source) return source:sub(1, 1) == "@" and source:find("lua/yolotrain/", 1, true) ~= nil end

-- "file:line: " of the innermost frame from `level` (of the caller) on that is the user's (not the engine's,
-- not C), or "" when there is none (the command line: the caller names the override instead).
function M.user_where(level)
  local lv = (level or 1) + 1
  while true do
    local info = debug.getinfo(lv, "Sl")
    if not info then return "" end
    if info.currentline > 0 and not engine_source(info.source) then
      return string.format("%s:%d: ", info.short_src, info.currentline)
    end
    lv = lv + 1
  end
end

-- A report of message (no traceback) that exits with exit_status.
function M.report(message, exit_status)
  return setmetatable({ message = tostring(message), exit_status = exit_status }, Report)
end

-- Refuses the user's input (a bad command-line word): one line, no traceback, exit status 1.
function M.refuse(msg) error(M.report(msg, 1), 0) end

-- Raises msg at the user's file:line (an error in how the engine was called, not in the engine).
function M.raise_at_user(msg) error(M.user_where(2) .. msg, 0) end

-- The message handler of the engine's xpcalls: the error as a report, its traceback taken here, where it was
-- raised (level 2 is the function that raised). A report passes through unchanged, so an error is wrapped once
-- however many handlers it crosses. A write that failed for a reason outside the program (utils.write_error: a
-- full disk) is not a bug and gets no traceback.
function M.capture(e)
  if M.is_report(e) then return e end
  local r = setmetatable({ exit_status = 1 }, Report)
  if type(e) == "table" then
    for k, v in pairs(e) do
      r[k] = v
    end
    r.message = e.message ~= nil and tostring(e.message) or tostring(e)
  else
    r.message = tostring(e)
  end
  if not r.write_error then r.traceback = require("yolotrain.core").sys.traceback(nil, 2) end
  return r
end

return M
