// Parse (HashiCorp hclsyntax) and format-check (hclwrite.Format, what `terraform fmt`
// is built on) Terraform files, via the WebAssembly builds in @cdktf/hcl2json and
// @cdktf/hcl-tools (tests/deploy/install_tools.sh installs them; NODE_PATH points there).
// Usage: node hcl.js FILE...   Prints one JSON line per file: {file, parsed, error, formatted}.
const fs = require("fs");
const { parse } = require("@cdktf/hcl2json");
const { format } = require("@cdktf/hcl-tools");

(async () => {
  for (const file of process.argv.slice(2)) {
    const src = fs.readFileSync(file, "utf8");
    const r = { file, parsed: false, error: null, formatted: false };
    try {
      await parse(file, src);
      r.parsed = true;
    } catch (e) {
      r.error = String(e);
    }
    try {
      r.formatted = (await format(src)) === src;
    } catch (e) {
      r.error = r.error || String(e);
    }
    console.log(JSON.stringify(r));
  }
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
