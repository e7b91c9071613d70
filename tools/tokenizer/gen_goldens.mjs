// Writes tests/data/tokenizer/<vocab>.golden from the reference tokenizer.
// One line per corpus string: ids (encode with the tokenizer's special
// tokens added), a tab, the decode of those ids keeping special tokens, a
// tab, the decode skipping them. A decode equal to the input text is written
// as "=", one equal to P + text as "+" and P escaped, any other as the
// escaped string (clean_up_tokenization_spaces off).
// Usage: node gen_goldens.mjs CORPUS OUT_DIR [vocab ...]
import fs from "node:fs";
import path from "node:path";
import { VOCABS, modelDir, loadTokenizer, readCorpus, escape } from "./oracle.mjs";

const [corpusFile, outDir, ...only] = process.argv.slice(2);
const texts = readCorpus(corpusFile);
for (const vocab of only.length ? only : Object.keys(VOCABS)) {
  const tok = loadTokenizer(modelDir(vocab));
  const lines = [];
  let same = 0;
  for (const text of texts) {
    const ids = tok.encode(text);
    const dec = (skip) =>
      ids.length ? tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }) : "";
    const show = (d) =>
      d === text ? "=" : text.length && d.endsWith(text) ? "+" + escape(d.slice(0, d.length - text.length)) : escape(d);
    const d1 = dec(false), d2 = dec(true);
    if (d2 === text) same++;
    lines.push(`${ids.join(" ")}\t${show(d1)}\t${show(d2)}`);
  }
  const out = path.join(outDir, `${vocab}.golden`);
  fs.writeFileSync(out, lines.join("\n") + "\n");
  console.log(`${vocab}: ${texts.length} strings, decode(skip special) == text for ${same}, ${out}`);
}
