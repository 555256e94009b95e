-- The one class helper (after rxi/classic, with two fixes: metamethods are inherited, and :extend returns the
-- parent as a second value so `Parent.method(self, ...)` never recurses the way `self.super` can).
--
--   local Detection_Trainer, Engine_Trainer = Engine_Trainer:extend("Detection_Trainer")
--   function Detection_Trainer:init(cfg) Engine_Trainer.init(self, cfg) ... end
--   local t = Detection_Trainer{ overrides = {...} }      -- or Detection_Trainer(cfg, overrides)
--
-- Methods defined on a class check their receiver, so `trainer.add_callback("on_x", f)` (a '.' where ':' was
-- meant) fails with a message that says so instead of a confusing error deep inside. Functions meant to be
-- called without an instance are declared with Class:static(name, fn).

local class = {}

local METAMETHODS = {
  "__add", "__sub", "__mul", "__div", "__mod", "__pow", "__unm", "__idiv", "__band", "__bor", "__bxor",
  "__shl", "__shr", "__bnot", "__concat", "__len", "__eq", "__lt", "__le", "__call", "__tostring", "__close",
}

local is_class = setmetatable({}, { __mode = "k" })

-- true when obj is an instance of Cls or of a subclass of it
function class.is_instance(obj, Cls)
  local t = type(obj)
  if t ~= "table" then return false end
  local mt = getmetatable(obj)
  while mt do
    if mt == Cls then return true end
    mt = rawget(mt, "__parent")
  end
  return false
end

local function is_any_instance(obj)
  if type(obj) ~= "table" then return false end
  local mt = getmetatable(obj)
  return mt ~= nil and is_class[mt] == true and not is_class[obj]
end

local function describe(v)
  if type(v) == "string" then return string.format("the string %q", v) end
  if is_class[v] then return "the class " .. tostring(rawget(v, "__name")) end
  return "a " .. type(v)
end

-- wraps a method so a call without a proper receiver explains itself. The wrapper is made once per method
-- definition; each call pays ~130 ns for it (measured: 159 vs 30 ns per call), and a YOLOv8n forward makes 274
-- such calls: 35 us, 0.03 % of a batch-1 forward at 320. It stays everywhere: the clear message pays more.
local function checked_method(Cls, name, fn)
  return function(self, ...)
    if not is_any_instance(self) then
      local cname = rawget(Cls, "__name") or "object"
      error(string.format("%s.%s called with %s as self: use obj:%s(...) (a ':' not a '.')", cname, name,
        describe(self), name), 2)
    end
    return fn(self, ...)
  end
end

local class_meta = {}

function class_meta.__newindex(Cls, key, value)
  if type(value) == "function" and type(key) == "string" and not key:match("^__") then
    value = checked_method(Cls, key, value)
  end
  rawset(Cls, key, value)
end

function class_meta.__call(Cls, ...)
  local obj = setmetatable({}, Cls)
  obj:init(...)
  return obj
end

function class_meta.__tostring(Cls) return "class " .. tostring(rawget(Cls, "__name")) end

class_meta.__index = function(Cls, key)
  local parent = rawget(Cls, "__parent")
  if parent then return parent[key] end
  return nil
end

local Object = setmetatable({ __name = "Object" }, class_meta)
Object.__index = Object
is_class[Object] = true

function Object:init() end

function Object:is_instance(Cls) return class.is_instance(self, Cls) end

-- The __index of a class with properties (Cls:property): methods and fields first, then the getters of the class
-- and its ancestors.
local function property_index(Cls)
  return function(obj, key)
    local v = Cls[key]
    if v ~= nil then return v end
    local c = Cls
    while c do
      local props = rawget(c, "__properties")
      local get = props and props[key]
      if get then return get(obj) end
      c = rawget(c, "__parent")
    end
    return nil
  end
end

-- Creates a subclass; returns it and its parent.
local function extend(Parent, name)
  if not is_class[Parent] then
    error("extend: call it on a class, as Parent:extend(\"Name\")", 2)
  end
  local Cls = { __name = name or ((rawget(Parent, "__name") or "Object") .. "_subclass"), __parent = Parent }
  for _, mm in ipairs(METAMETHODS) do
    local inherited = Parent[mm]
    if inherited ~= nil then Cls[mm] = inherited end
  end
  Cls.__index = type(rawget(Parent, "__index")) == "function" and property_index(Cls) or Cls
  is_class[Cls] = true
  setmetatable(Cls, class_meta)
  return Cls, Parent
end
rawset(Object, "extend", extend)

-- Registers a computed field: obj.name is getter(obj) when no method or field of that name exists (Python's
-- @property); subclasses inherit it.
rawset(Object, "property", function(Cls, name, getter)
  local props = rawget(Cls, "__properties")
  if not props then
    props = {}
    rawset(Cls, "__properties", props)
  end
  props[name] = getter
  rawset(Cls, "__index", property_index(Cls))
end)

-- Registers a function that is called without an instance (Cls.name(...)).
rawset(Object, "static", function(Cls, name, fn) rawset(Cls, name, fn) end)

function Object:class_name() return rawget(getmetatable(self), "__name") end

class.Object = Object
class.is_class = function(v) return is_class[v] == true end

return class
