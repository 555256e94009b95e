// The Lua format of yolotrain, through StyLua's WASM build (the npm package in this folder).
// Usage: node scripts/lint/lua-format.mjs [--check] FILE...   (--check: list the files that differ, exit 1 if any)
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const stylua = createRequire(import.meta.url)("@johnnymorganz/stylua");

// The style itself (one home): 2-space indent, 120 columns, double quotes, calls and one-line bodies as written.
function config() {
  const c = stylua.Config.new(); // formatCode takes ownership: a new one per file
  c.column_width = 120;
  c.indent_type = stylua.IndentType.Spaces;
  c.indent_width = 2;
  c.quote_style = stylua.QuoteStyle.AutoPreferDouble;
  c.call_parentheses = stylua.CallParenType.Input;
  c.collapse_simple_statement = stylua.CollapseSimpleStatement.Always;
  return c;
}

const args = process.argv.slice(2);
const check = args[0] === "--check";
const files = check ? args.slice(1) : args;
const differing = [];
for (const file of files) {
  const source = readFileSync(file, "utf8");
  let formatted;
  try {
    formatted = stylua.formatCode(source, config(), null, stylua.OutputVerification.Full);
  } catch (e) {
    console.error(`${file}: ${e.message ?? e}`);
    process.exit(2);
  }
  if (formatted === source) continue;
  differing.push(file);
  if (!check) writeFileSync(file, formatted);
}
if (check && differing.length > 0) {
  console.error(`lua format: ${differing.length} file(s) differ (run scripts/lint.sh --fix):\n  ${differing.join("\n  ")}`);
  process.exit(1);
}
