local yt = require("yolotrain.core")

describe("tensors", function()
  it("are created with shapes and report them", function()
    local t = yt.zeros({ 2, 3 })
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.equal(6, t:numel())
    assert.are.equal("float32", t:dtype())
    local i = yt.zeros({ 4 }, "int64")
    assert.are.equal("int64", i:dtype())
  end)

  it("convert to and from Lua tables", function()
    local t = yt.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
    assert.are.equal(5, t:get(2, 2))
    assert.are.equal(6, t[2][3])
  end)

  it("gives item() of one-element tensors and refuses others", function()
    assert.are.equal(7, yt.tensor(7):item())
    assert.has_error(function() yt.zeros({ 2 }):item() end)
  end)

  it("releases a tensor made inside a scope when the scope ends", function()
    yt.scope_begin()
    local a = yt.zeros({ 100 })
    local kept = yt.ones({ 3 }):keep()
    yt.scope_end()
    assert.has_error(function() a:numel() end, nil)
    assert.are.equal(3, kept:numel())
    assert.matches("released", tostring(a))
  end)

  it("closes with <close>", function()
    local before = yt.memory()
    do
      local big <close> = yt.zeros({ 1000, 1000 })
    end
    assert.are.equal(before, (yt.memory()))
  end)

  it("assigns elements with 1-based indices, also through row views", function()
    local x = yt.zeros({ 5 })
    x[2] = 3
    x[-1] = 9
    assert.are.same({ 0, 3, 0, 0, 9 }, x:tolist())
    local a = yt.zeros({ 2, 3 })
    a[1][1] = 42
    a[2][3] = 7
    assert.are.same({ { 42, 0, 0 }, { 0, 0, 7 } }, a:totable())
    assert.has_error(function() x[6] = 1 end)
    assert.has_error(function() return a[{ 1, 2 }] end)
  end)
end)
