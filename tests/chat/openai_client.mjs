// Drives kvprune serve with the official openai package (see serve_openai.sh).
import OpenAI from "openai";
import { readFileSync } from "node:fs";

const [baseURL, question] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 120000 });
let failures = 0;
const check = (cond, what) => { if (!cond) { failures++; console.log("FAIL:", what); } };
const full = JSON.parse(readFileSync("ref_full.json", "utf8"));
const snap = JSON.parse(readFileSync("ref_snapkv.json", "utf8"));
const chat = readFileSync("ref_chat.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l));

const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === "kvp-mini", "models: " + JSON.stringify(models.data));
const model = models.data[0].id;

// greedy chat, full cache and snapkv (extra body fields), equal to generate
for (const [ref, extra] of [[full, {}], [snap, { kv_method: "snapkv", kv_num_recent: 4, kv_num_heavy: 8 }]]) {
  const r = await client.chat.completions.create({
    model, messages: [{ role: "user", content: question }], max_tokens: 16, temperature: 0, ...extra,
  });
  check(r.choices[0].message.content === ref.text, `chat ${JSON.stringify(extra)}: ${JSON.stringify(r.choices[0].message.content)} vs ${JSON.stringify(ref.text)}`);
  check(r.usage.completion_tokens === ref.ids.length && r.usage.prompt_tokens === ref.prompt_ids.length, "usage " + JSON.stringify(r.usage));
  // streamed
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: question }], max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true }, ...extra,
  });
  let text = "", usage = null, finish = null;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta?.content ?? "";
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  check(text === ref.text, `stream: ${JSON.stringify(text)} vs ${JSON.stringify(ref.text)}`);
  check(usage && usage.completion_tokens === ref.ids.length && finish, "stream usage/finish " + JSON.stringify(usage) + " " + finish);
}

// a session: the conversation grows, the server reads only the new turn
const turns = [question, "And the other one?", "Say it again, please."];
const messages = [];
for (let k = 0; k < turns.length; k++) {
  messages.push({ role: "user", content: turns[k] });
  const r = await client.chat.completions.create({
    model, messages, max_tokens: 16, session: "openai-1", kv_method: "kvcVK", kv_num_recent: 8, kv_num_heavy: 24,
  });
  const a = r.choices[0].message.content;
  check(a === chat[k].reply, `session turn ${k}: ${JSON.stringify(a)} vs chat ${JSON.stringify(chat[k].reply)}`);
  check(r.usage.prompt_tokens === chat[k].stats.prompt_tokens, `session turn ${k} read ${r.usage.prompt_tokens} tokens`);
  check(r.kv_cache && r.kv_cache.session === "openai-1" && !r.kv_cache.session_restarted, "kv_cache " + JSON.stringify(r.kv_cache));
  messages.push({ role: "assistant", content: a });
}

// an error is an APIError with the OpenAI error object
try {
  await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }], kv_method: "nope" });
  check(false, "unknown kv_method accepted");
} catch (e) {
  check(e instanceof OpenAI.APIError && e.status === 400 && e.code === "invalid_cache_settings", "error: " + e);
}
console.log(`openai_client: ${failures} failures`);
process.exit(failures ? 1 : 0);
