// The reference tokenizer's throughput on the same chunks as bench_tok.c.
// Usage: node bench_js.mjs TOKENIZER_DIR TEXT_FILE [REPEATS]
import fs from "node:fs";
import { loadTokenizer } from "../../tools/tokenizer/oracle.mjs";

const [dir, file, reps = "3"] = process.argv.slice(2);
const buf = fs.readFileSync(file);
const text = buf.toString("utf8");
const chunks = text.split(/(?<=\n\n)/);
let t0 = performance.now();
const tok = loadTokenizer(dir);
const load = (performance.now() - t0) / 1000;
let best = Infinity, total = 0;
for (let r = 0; r < Number(reps); r++) {
  total = 0;
  tok.model.clear_cache?.();
  t0 = performance.now();
  for (const c of chunks) total += tok.encode(c).length;
  best = Math.min(best, (performance.now() - t0) / 1000);
}
console.log(`JS  ${"".padEnd(10)} ${(buf.length / 1e6 / best).toFixed(2).padStart(8)} MB/s  ${String(total).padStart(9)} tokens  (load ${load.toFixed(2)} s)`);
