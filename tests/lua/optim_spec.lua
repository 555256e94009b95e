-- yt.optim.new / opt:step / groups / state, yt.optim.clip_grad_norm, yt.optim.ema_update
local yt = require("yolotrain.core")
local helpers = require("helpers")

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) end

local function with_grad(values, grad)
  local p = yt.tensor(values)
  p.grad = yt.tensor(grad)
  return p
end

describe("yt.optim", function()
  it("SGD with nesterov momentum and L2 decay matches the torch formulas over two steps", function()
    local p = with_grad({ 1.0, -2.0 }, { 0.5, 0.25 })
    local opt =
      yt.optim.new("SGD", { { params = { p }, lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01 } })
    opt:step()
    -- first step: buf = g + wd*p, p -= lr * (d + m*buf) = lr * (1+m) * d
    local d1 = { 0.5 + 0.01 * 1.0, 0.25 + 0.01 * -2.0 }
    local p1 = { 1.0 - 0.1 * 1.9 * d1[1], -2.0 - 0.1 * 1.9 * d1[2] }
    assert.is_true(close(p:get(1), p1[1]) and close(p:get(2), p1[2]))
    opt:step() -- same gradient again
    for i = 1, 2 do
      local g = ({ 0.5, 0.25 })[i]
      local d = g + 0.01 * p1[i]
      local buf = 0.9 * d1[i] + d
      local want = p1[i] - 0.1 * (d + 0.9 * buf)
      assert.is_true(close(p:get(i), want), string.format("%g vs %g", p:get(i), want))
    end
  end)

  it("AdamW first step is p*(1-lr*wd) - lr*sign(g)", function()
    local p = with_grad({ 1.0, 1.0 }, { 0.3, -4.0 })
    local opt =
      yt.optim.new("adamw", { { params = { p }, lr = 0.001, betas = { 0.937, 0.999 }, weight_decay = 0.0005 } })
    opt:step()
    assert.is_true(close(p:get(1), 1.0 * (1 - 0.001 * 0.0005) - 0.001, 1e-7))
    assert.is_true(close(p:get(2), 1.0 * (1 - 0.001 * 0.0005) + 0.001, 1e-7))
  end)

  it("leaves parameters without a gradient alone, and zero_grad drops gradients", function()
    local a = with_grad({ 1, 2, 3 }, { 1, 1, 1 })
    local b = yt.tensor({ 5, 6 })
    local opt = yt.optim.new("Adam", { { params = { a } }, { params = { b }, lr = 0.5 } })
    opt:step()
    assert.are.same({ 5, 6 }, b:totable())
    assert.is_true(a:get(1) < 1)
    opt:zero_grad()
    assert.is_nil(a.grad)
    a.grad = yt.tensor({ 2, 2, 2 })
    opt:zero_grad(false)
    assert.are.same({ 0, 0, 0 }, a.grad:totable())
    local st = opt:state_tensors()
    assert.are.equal(1, st["0.step"]:item())
    assert.are.equal(0, st["1.step"]:item())
    assert.are.same({ 0, 0 }, st["1.exp_avg"]:totable())
  end)

  it("exposes and changes group hyperparameters", function()
    local p = with_grad({ 1 }, { 1 })
    local opt = yt.optim.new("SGD", { { params = { p }, lr = 0.01, momentum = 0.937, nesterov = true } })
    assert.are.equal(1, #opt)
    assert.are.equal("SGD", opt:kind())
    local g = opt:get_group(1)
    assert.are.equal(0.01, g.lr)
    assert.are.equal(0.937, g.momentum)
    assert.is_true(g.nesterov)
    assert.are.equal(1, #g.params)
    opt:set_group(1, { lr = 0.5, momentum = 0.8 })
    assert.are.equal(0.5, opt:get_group(1).lr)
    assert.are.equal(0.8, opt:get_group(1).momentum)
    opt:step()
    assert.is_true(close(p:get(1), 1 - 0.5 * 1.8 * 1))
    assert.has_error(function() opt:set_group(1, { momentum = 0 }) end) -- nesterov needs momentum
    assert.has_error(function() opt:set_group(2, { lr = 1 }) end)
    assert.has_error(function() opt:set_group(1, { lr = 1, momentun = 0.9 }) end)
    assert.are.equal(0.5, opt:get_group(1).lr) -- a refused change changes nothing
  end)

  it("rejects bad construction", function()
    local p = yt.tensor({ 1 })
    assert.has_error(function() yt.optim.new("RMSProp", { { params = { p }, lr = 1 } }) end)
    assert.has_error(function() yt.optim.new("SGD", { { params = { p } } }) end) -- SGD needs lr
    assert.has_error(function() yt.optim.new("SGD", { { params = { p, p }, lr = 1 } }) end)
    assert.has_error(function() yt.optim.new("SGD", { { params = { yt.tensor({ 1 }, "int64") }, lr = 1 } }) end)
    assert.has_error(function() yt.optim.new("SGD", { { params = { p }, lr = 1, wd = 0.1 } }) end)
    assert.has_error(function() yt.optim.new("SGD", {}) end)
  end)

  it("state survives a safetensors round trip and resumes identically", function()
    local function make()
      local p = yt.tensor({ 0.5, -0.5, 2.0 })
      return p, yt.optim.new("AdamW", { { params = { p }, lr = 0.01, weight_decay = 0.1 } })
    end
    local a, oa = make()
    local grads = { { 1, 2, 3 }, { -1, 0.5, 0 }, { 0.1, 0.1, -3 }, { 2, -2, 1 } }
    for s = 1, 2 do
      a.grad = yt.tensor(grads[s])
      oa:step()
    end
    local path = helpers.tmpdir() .. "/opt.safetensors"
    yt.io.save_safetensors(path, oa:state_tensors())
    local b, ob = make()
    b:copy_(a)
    ob:load_state_tensors((yt.io.load_safetensors(path)))
    for s = 3, 4 do
      a.grad = yt.tensor(grads[s])
      oa:step()
      b.grad = yt.tensor(grads[s])
      ob:step()
    end
    assert.are.same(a:totable(), b:totable())
    assert.has_error(function() ob:load_state_tensors({ ["0.step"] = yt.tensor(1, "int64") }) end)
  end)
end)

describe("yt.optim.clip_grad_norm", function()
  it("returns the global norm and clips to max_norm", function()
    local a = with_grad({ 0, 0 }, { 3, 0 })
    local b = with_grad({ 0 }, { 4 })
    local c = yt.tensor({ 1 })
    assert.is_true(close(yt.optim.clip_grad_norm({ a, b, c }, 10), 5, 1e-12))
    assert.are.same({ 3, 0 }, a.grad:totable())
    assert.is_true(close(yt.optim.clip_grad_norm({ a, b, c }, 1), 5, 1e-12))
    assert.is_true(close(a.grad:get(1), 3 / (5 + 1e-6)))
    assert.is_true(close(b.grad:get(1), 4 / (5 + 1e-6)))
  end)

  it("gives the fixture's total norm on the YOLOv8n gradients", function()
    local grads = yt.io.load_safetensors(helpers.parity_dir .. "/loss.safetensors")
    local ref = yt.io.load_safetensors(helpers.parity_dir .. "/optimizer_step.safetensors")
    local params = {}
    for name, g in pairs(grads) do
      if name:sub(1, 5) == "grad." then
        local p = yt.zeros(g:shape())
        p.grad = g
        params[#params + 1] = p
      end
    end
    assert.are.equal(183, #params)
    local norm = yt.optim.clip_grad_norm(params, 0)
    local want = ref["clip.total_norm"]:item()
    assert.is_true(math.abs(norm - want) <= 2e-6 * want, string.format("%.9g vs %.9g", norm, want))
  end)
end)

describe("yt.optim.ema_update", function()
  it("averages float entries in place and leaves integer buffers alone", function()
    local e, m = yt.tensor({ 1, 2 }), yt.tensor({ 3, 6 })
    local ei, mi = yt.tensor(1, "int64"), yt.tensor(9, "int64")
    local d = yt.optim.ema_decay(10)
    assert.is_true(close(d, 0.9999 * (1 - math.exp(-10 / 2000)), 1e-15))
    yt.optim.ema_update({ e, ei }, { m, mi }, d)
    assert.is_true(close(e:get(1), d * 1 + (1 - d) * 3))
    assert.is_true(close(e:get(2), d * 2 + (1 - d) * 6))
    assert.are.equal(1, ei:item())
    assert.has_error(function() yt.optim.ema_update({ e }, { m, mi }, d) end)
    assert.has_error(function() yt.optim.ema_update({ e }, { yt.tensor({ 1, 2, 3 }) }, d) end)
  end)
end)
