-- `require("yolotrain")` is the `yt` users see: the core module (tensors, ops, yt.sys, ...), re-exported as is.
-- Keep this a thin re-export: it sets no globals and adds nothing of its own.
return require("yolotrain.core")
