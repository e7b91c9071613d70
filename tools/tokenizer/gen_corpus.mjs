// Builds the tokenizer conformance corpus: tests/data/tokenizer/corpus.txt.
// One string per line, escaped so that any byte string fits on a line:
//   "\\" -> \\\\, control bytes (< 0x20, 0x7f) and bytes that are not valid
//   UTF-8 -> \xNN; valid UTF-8 characters are written as they are.
// Deterministic (seeded PRNG). Usage: node gen_corpus.mjs OUT_FILE
import fs from "node:fs";

let seed = 0x5eed1234;
function rnd() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (a, b) => a + Math.floor(rnd() * (b - a + 1));
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];

const enc = new TextEncoder();
const out = []; // Uint8Array per string
const add = (s) => out.push(typeof s === "string" ? enc.encode(s) : Uint8Array.from(s));

const words = (
  "the of and to in is was that for it with as his on be at by I had not are but from or " +
  "have an they which one you were her all she there would their we him been has when who will " +
  "more no if out so said what up its about into than them can only other new some could time " +
  "these two may then do first any my now such like our over man me even most made after also " +
  "did many before must through back years where much your way well down should because each just " +
  "those people Mr how too little state good very make world still own see men work long get here " +
  "between both life being under never day same another know while last might us great old year " +
  "off come since against go came right used take three startup founders investors essay programming " +
  "Lisp Python hacker painters wealth cities ambition Y Combinator Paul Graham needle haystack " +
  "key value secret number remember question answer context window attention cache token"
).split(" ");
const contractions = ["don't", "I'm", "you're", "we've", "they'll", "it's", "he'd", "CAN'T", "I'LL",
  "She'S", "we'RE", "O'Neil", "rock'n'roll", "'twas", "y'all", "ma'am", "isn't", "WON'T", "'s", "'t"];
const punct = [".", ",", ";", ":", "!", "?", "...", " -", " --", "—", "–", "(", ")", "\"", "'", "[", "]",
  "{", "}", "/", "\\", "&", "%", "$", "#", "@", "*", "+", "=", "<", ">", "|", "~", "^", "`", "_"];

function sentence(n) {
  const ws = [];
  for (let i = 0; i < n; i++) {
    let w = rnd() < 0.08 ? pick(contractions) : pick(words);
    const r = rnd();
    if (r < 0.05) w = w.toUpperCase();
    else if (r < 0.15) w = w[0].toUpperCase() + w.slice(1);
    if (rnd() < 0.1) w += pick(punct);
    if (rnd() < 0.04) w += " " + ri(0, 99999);
    ws.push(w);
  }
  let s = ws.join(" ");
  return s[0].toUpperCase() + s.slice(1) + pick([".", ".", ".", "?", "!", ""]);
}

// ---- other scripts (all characters assigned before Unicode 14) ----
const scripts = {
  french: "Le cœur a ses raisons que la raison ne connaît point. Où est l'hôtel ? Ça coûte 12,50 € — déjà payé.",
  german: "Größenwahn ist keine Lösung; Straße, Maß, Fuß, Äpfel und Übermut. ẞ ist selten.",
  spanish: "¿Dónde está la biblioteca? ¡Mañana será otro día! El niño comió piña.",
  russian: "Съешь же ещё этих мягких французских булок, да выпей чаю. Москва — столица России.",
  greek: "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Η γλώσσα μου έδωσαν ελληνική.",
  arabic: "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.",
  hebrew: "עטלף אבק נס דרך מזגן שהתפוצץ כי חם. שלום עולם!",
  hindi: "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
  thai: "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
  korean: "다람쥐 헌 쳇바퀴에 타고파. 키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.",
  japanese: "いろはにほへと ちりぬるを わかよたれそ つねならむ。東京都は日本の首都です。カタカナ、ｶﾀｶﾅ、ひらがな。",
  chinese: "我能吞下玻璃而不伤身体。天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。人工智能正在改变世界。",
  vietnamese: "Tiếng Việt có dấu: Chữ Quốc ngữ, người Việt Nam, trường học.",
  tamil: "யாமறிந்த மொழிகளிலே தமிழ்மொழி போல் இனிதாவது எங்கும் காணோம்.",
  georgian: "ქართული ენა ერთ-ერთი უძველესი ენაა.",
  armenian: "Հայերեն լեզուն շատ գեղեցիկ է։",
  amharic: "ሰማይ አይታረስ ንጉሥ አይከሰስ።",
  math: "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ = ∫₀^∞ e^{−t} dt ≈ 1.0; 𝐀𝐁𝐂 𝔸𝔹ℂ ⅓ ½ ¼ Ⅻ ① ⑳ ℃ ™ ©",
  cjk_ext: "𠀀𠀁𠀂 𪚥 𩸽 — 丂 丄 丅 〇 々 〆",
};
const emoji = ["😀", "😂", "🥲", "👍", "👍🏽", "👍🏿", "❤️", "❤", "🔥", "🎉", "🚀", "🇺🇸", "🇯🇵", "🇪🇺",
  "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏽‍🚀", "🏳️‍🌈", "🏴‍☠️", "👁️‍🗨️", "1️⃣", "#️⃣", "©️", "☺️", "✌🏻", "🫠", "🤌", "🦀", "🐍",
  "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🤷‍♂️", "💁🏼‍♀️", "🧘🏻‍♀️"];
const code = [
  "int main(int argc, char **argv) {\n    printf(\"hello, %s\\n\", argv[0]);\n    return 0;\n}\n",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n",
  "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\\u00e9\"}}",
  "<html>\n  <body class=\"main\">\n    <p>Hello &amp; welcome</p>\n  </body>\n</html>",
  "for (let i = 0; i < arr.length; ++i) { sum += arr[i] ** 2; } // comment\n",
  "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
  "\tif (x) {\n\t\ty = x >> 2;\n\t}\n\treturn y;\n",
  "fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u8> = vec![0xff; 16]; Ok(()) }",
  "$ git commit -m \"fix: off-by-one\" && ./configure --prefix=/usr/local && make -j8",
  "   x = lambda a, b: a if a > b else b   # max\n\n\n",
  "#include <stdio.h>\r\n#define MAX(a,b) ((a)>(b)?(a):(b))\r\n",
  "a=1;b=2;c=a+b;d=c*c;e=d/2;f=e%3;g=f^1;h=~g;i=!h;j=h&&i||g;",
];
const specials = ["<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
  "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_5|>", "<|im_start|>", "<|im_end|>",
  "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|vision_start|>",
  "[INST]", "[/INST]", "<<SYS>>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<mask>"];
const partialSpecials = ["<|im_start", "<|im_start|", "|im_end|>", "<s", "</s", "<|begin_of_text", "<|eot_id",
  "<<s>>", "<s>>", "<<|im_end|>|>", "<|endoftext|>|>", "< s >"];
const spaceChars = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u2029", "\u200b",
  "\u2009", "\u202f", "\u0085", "\ufeff", "\u000b", "\u000c", "\u1680", "\u205f"];
const oddChars = ["\u0000", "\u0001", "\u001f", "\u007f", "\ufffd", "\ufffe", "\uffff", "\ue000", "\u{10ffff}",
  "\u0301", "\u0308", "e\u0301", "a\u030a", "\u1100\u1161\u11a8", "\u00e9", "\u212b", "\u2126", "\u017f", "\u212a",
  "\u0130", "\u0131", "ﬁ", "ﬀ", "Å", "Ω", "ẛ̣", "\u0344", "\u0958", "\u2000", "\u00ad", "\u200d", "\u200c", "\u034f",
  "Ǆ", "ǅ", "ǆ", "ß", "ᾳ", "ΐ", "\u0387", "\u1e9b\u0323", "각", "\u1100\u1161", "\u110b\u1173\u11b7"];
const allScriptText = Object.values(scripts).join(" ");
const pool = Array.from(allScriptText + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
  ".,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`").concat(emoji, spaceChars, oddChars, specials.slice(0, 6));

// 1. fixed edge cases
["", " ", "  ", "\n", "\n\n", " \n ", "\t", "a", " a", "a ", "  a", "A", "1", "12", "123", "1234", "12345",
  "1234567", "0.5", "-1", "3.14159", "1,000,000", "10:30", "2024-01-01", "Hello", " Hello", "Hello world",
  "hello world", "HELLO WORLD", "Hello, world!", "   leading", "trailing   ", "x   y    z", "'s", "'S", "'ll",
  "I'm", "i've", "He said 'hi'", "don't stop", "\u017f'\u017f", "'\u017f", "'\u212a", "It'\u017f",
  "The secret number for brave-eagle is 1234567.", "héllo wörld", "日本語のテキスト", "emoji 😀🎉 ok",
  "naïve café — “quotes” ‘single’", "tabs\tand\r\nwindows lines", "🦙", "▁", "▁▁", " ▁ ", "▁hello", "Ġ", "Ċ", "ĠĠ",
  "<0x0A>", "<0xFF>", "<0x", "\u00a0", "\u3000", "\ufeff", "\u0085", "a\u0085b", "a\ufeffb", "\ufeffhello"]
  .forEach(add);
for (const s of specials) {
  add(s);
  add(" " + s);
  add(s + " ");
  add("a" + s + "b");
  add("Hello " + s + " world");
  add(s + s);
  add(s + "\n" + s);
}
for (const s of partialSpecials) { add(s); add("x " + s + " y"); }
// chat-shaped strings
add("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
add("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
add("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST] Hi </s><s>[INST] More [/INST]");
add("[INST]\nSummarise the text.\n[/INST]");
for (const s of ["a  <mask>  b", "a\u00a0<mask>\u3000b", "<mask>\n\nx", "x \t<mask>", " <mask> <mask> ", "a <mask>b<mask> c"]) add(s);
add("<|system|>\nYou are kvp-mini.<|end|>\n<|user|>\nWhat is the secret number?<|end|>\n<|assistant|>\n");

// 2. whitespace runs
for (const c of [" ", "\n", "\t", "\r\n", " \n", "\n ", "\u00a0", "\u3000"]) {
  for (const n of [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100]) {
    add(c.repeat(n));
    add("a" + c.repeat(n) + "b");
    if (n % 4 === 0) add(c.repeat(n) + "word" + c.repeat(n));
  }
}
for (let i = 0; i < 80; i++) {
  let s = "";
  const k = ri(1, 12);
  for (let j = 0; j < k; j++) s += pick(spaceChars).repeat(ri(1, 6)) + (rnd() < 0.6 ? pick(words) : "");
  add(s);
}
// 3. digits
for (let n = 1; n <= 40; n++) {
  let d = "";
  for (let k = 0; k < n; k++) d += String(ri(0, 9));
  add(d);
  add("x" + d + "y");
  add(" " + d + " ");
}
for (let i = 0; i < 40; i++) add(`${ri(0, 1e9)}.${ri(0, 999)} ${ri(1, 12)}/${ri(1, 28)}/${ri(1900, 2100)} +1-${ri(100, 999)}-${ri(1000, 9999)}`);
add("١٢٣٤٥ ٠.٥ ۱۲۳ १२३ ๑๒๓ 一二三 ①②③ ¹²³ ½");
// 4. English
for (let i = 0; i < 500; i++) {
  let s = sentence(ri(1, 30));
  const r = rnd();
  if (r < 0.15) s = " " + s;
  else if (r < 0.25) s = s + "\n";
  else if (r < 0.35) s = s + "\n\n" + sentence(ri(3, 20));
  add(s);
}
for (let i = 0; i < 60; i++) {
  let p = [];
  for (let k = 0; k < ri(2, 8); k++) p.push(sentence(ri(5, 25)));
  add(p.join(pick([" ", "  ", "\n", "\n\n", "\r\n"])));
}
// 5. scripts
for (const [name, text] of Object.entries(scripts)) {
  add(text);
  add(" " + text);
  const cs = Array.from(text);
  for (let i = 0; i < 12; i++) {
    const a = ri(0, cs.length - 1);
    add(cs.slice(a, a + ri(1, 30)).join(""));
  }
  add(text + " " + sentence(8));
  add(text.normalize("NFD"));
  add(text.normalize("NFKC"));
}
for (let i = 0; i < 40; i++) add(Array.from(scripts.chinese).slice(0, ri(1, 40)).join("") + pick(["", "。", "\n", " ", "abc"]));
for (let i = 0; i < 40; i++) add(Array.from(scripts.japanese).sort(() => rnd() - 0.5).slice(0, ri(2, 30)).join(""));
// 6. emoji
for (const e of emoji) { add(e); add("a" + e + "b"); add(e + e + e); add(" " + e + " text"); }
for (let i = 0; i < 60; i++) {
  let s = "";
  for (let k = 0; k < ri(1, 10); k++) s += pick(emoji) + (rnd() < 0.5 ? pick([" ", "", "!", "\n", pick(words)]) : "");
  add(s);
}
// 7. code
for (const c of code) { add(c); add(c.replace(/\n/g, "\r\n")); add(c.replace(/    /g, "\t")); }
for (let i = 0; i < 40; i++) {
  let s = "";
  for (let k = 0; k < ri(1, 4); k++) s += pick(code);
  add(s.slice(ri(0, 20)));
}
// 8. odd characters, normalisation
for (const c of oddChars) { add(c); add("a" + c + "b"); add(c + c); add(" " + c + " x"); }
for (let i = 0; i < 60; i++) {
  let s = "";
  for (let k = 0; k < ri(1, 8); k++) s += pick(oddChars) + pick(["", "a", " ", "e", "Ω"]);
  add(s);
}
// 9. random soup
for (let i = 0; i < 450; i++) {
  let s = "";
  const n = ri(1, 80);
  for (let k = 0; k < n; k++) s += pick(pool);
  add(s);
}
// 10. invalid UTF-8 (byte strings)
const bad = [[0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xc2], [0xe2, 0x82], [0xe2, 0x28, 0xa1], [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf], [0xf0, 0x9f, 0x98], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff], [0xfe],
  [0xe0, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc3, 0x28], [0xe1, 0x80], [0xf1, 0x80, 0x80]];
for (const b of bad) {
  add(b);
  add([0x61, ...b, 0x62]);
  add([...enc.encode("Hello "), ...b, ...enc.encode(" world")]);
  add([...b, ...b]);
}
for (let i = 0; i < 60; i++) {
  const bytes = [];
  for (let k = 0; k < ri(1, 40); k++) {
    const r = rnd();
    if (r < 0.3) bytes.push(...pick(bad));
    else if (r < 0.6) bytes.push(...enc.encode(pick(pool)));
    else bytes.push(ri(0, 255));
  }
  add(bytes);
}
// 11. long strings
const longs = [
  Array.from({ length: 120 }, () => sentence(ri(8, 25))).join(" "),
  scripts.chinese.repeat(60),
  " ".repeat(3000),
  "\n".repeat(2000),
  "9".repeat(3000),
  "a".repeat(4000),
  "ab".repeat(2000),
  "😀".repeat(800),
  Array.from({ length: 60 }, () => pick(code)).join("\n"),
  Array.from({ length: 200 }, () => pick(Object.values(scripts))).join(" "),
  "<|im_start|>".repeat(200),
  "▁".repeat(1500),
];
longs.forEach(add);

const esc = (bytes) => {
  let s = "";
  let i = 0;
  const hex = (b) => "\\x" + b.toString(16).padStart(2, "0").toUpperCase();
  while (i < bytes.length) {
    const b = bytes[i];
    if (b === 0x5c) { s += "\\\\"; i++; continue; }
    if (b < 0x20 || b === 0x7f) { s += hex(b); i++; continue; }
    if (b < 0x80) { s += String.fromCharCode(b); i++; continue; }
    // keep a valid UTF-8 character as is
    let n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
    const ch = n && i + n <= bytes.length ? bytes.slice(i, i + n) : null;
    let ok = false;
    if (ch) {
      try {
        const t = new TextDecoder("utf-8", { fatal: true }).decode(ch);
        ok = Array.from(t).length === 1;
      } catch { ok = false; }
    }
    if (ok) { s += Buffer.from(ch).toString("utf8"); i += n; } else { s += hex(b); i++; }
  }
  return s;
};

// de-duplicate, keep order
const seen = new Set();
const lines = [];
for (const b of out) {
  const e = esc(b);
  if (seen.has(e)) continue;
  seen.add(e);
  lines.push(e);
}
fs.writeFileSync(process.argv[2], lines.join("\n") + "\n");
console.log(`${lines.length} strings, ${lines.reduce((a, l) => a + l.length, 0)} chars`);
