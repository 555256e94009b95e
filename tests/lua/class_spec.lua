local class = require("yolotrain.class")

describe("class helper", function()
  local Animal = class.Object:extend("Animal")
  function Animal:init(name) self.name = name end
  function Animal:speak() return self.name .. " makes a sound" end
  Animal.__tostring = function(self) return "Animal(" .. self.name .. ")" end

  local Dog, Parent = Animal:extend("Dog")
  function Dog:init(name, breed)
    Parent.init(self, name)
    self.breed = breed
  end
  function Dog:speak() return Parent.speak(self) .. ": woof" end

  it("constructs by calling the class, with table or positional arguments", function()
    local d = Dog("rex", "lab")
    assert.are.equal("rex", d.name)
    assert.are.equal("lab", d.breed)
    local Opt = class.Object:extend("Opt")
    function Opt:init(t) self.t = t end
    assert.are.equal(3, Opt { 3 }.t[1])
  end)

  it("returns the parent from extend so parent calls never recurse", function()
    assert.are.equal(Animal, Parent)
    assert.are.equal("rex makes a sound: woof", Dog("rex"):speak())
    local Puppy, P2 = Dog:extend("Puppy")
    function Puppy:speak() return P2.speak(self) .. "!" end
    assert.are.equal("bo makes a sound: woof!", Puppy("bo"):speak())
  end)

  it("inherits metamethods", function() assert.are.equal("Animal(rex)", tostring(Dog("rex"))) end)

  it("tells instances of a class and its subclasses", function()
    local d = Dog("rex")
    assert.is_true(class.is_instance(d, Animal))
    assert.is_true(class.is_instance(d, Dog))
    assert.is_false(class.is_instance(Animal("cat"), Dog))
    assert.is_false(class.is_instance({}, Dog))
  end)

  it("explains a method called with '.' instead of ':'", function()
    local d = Dog("rex")
    local ok, err = pcall(function() return d.speak("loud") end)
    assert.is_false(ok)
    assert.matches('Dog.speak called with the string "loud" as self: use obj:speak', err, 1, true)
  end)

  it("allows static functions", function()
    Dog:static("create", function(n) return Dog(n) end)
    assert.are.equal("x", Dog.create("x").name)
  end)
end)
