// Writes the benchmark texts: english.txt (synthetic English prose, ~N MB)
// and cjk.txt (Chinese/Japanese text, ~N/2 MB), paragraphs separated by a
// blank line. Usage: node make_text.mjs OUT_DIR [MB]
import fs from "node:fs";
import path from "node:path";

const [out, mb = "4"] = process.argv.slice(2);
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const words = ("the of and to in is was that for it with as his on be at by I had not are but from or have an " +
  "they which one you were her all she there would their we him been has when who will more no if out so said " +
  "what up its about into than them can only other new some could time these two may then do first any my now " +
  "startup founders investors essay programming language hackers painters wealth cities ambition don't it's " +
  "1995 2024 42 3.14 users growth").split(" ");
const cjk = Array.from("我能吞下玻璃而不伤身体天地玄黄宇宙洪荒日月盈昃辰宿列张人工智能正在改变世界" +
  "いろはにほへとちりぬるをわかよたれそつねならむ東京都は日本の首都ですカタカナ");
const punctCJK = ["。", "、", "，", "！", "？", "「", "」"];
function para(gen, target) {
  let s = "";
  while (s.length < target) s += gen();
  return s + "\n\n";
}
const english = () => {
  const n = 5 + Math.floor(rnd() * 20);
  const ws = Array.from({ length: n }, () => pick(words));
  return ws.join(" ").replace(/^./, (c) => c.toUpperCase()) + pick([". ", ". ", "? ", "! ", ", "]);
};
const chinese = () => Array.from({ length: 5 + Math.floor(rnd() * 30) }, () => pick(cjk)).join("") + pick(punctCJK);
const write = (name, gen, bytes) => {
  const parts = [];
  let n = 0;
  while (n < bytes) {
    const p = para(gen, 200 + rnd() * 2000);
    parts.push(p);
    n += Buffer.byteLength(p);
  }
  fs.writeFileSync(path.join(out, name), parts.join(""));
};
write("english.txt", english, Number(mb) * 1e6);
write("cjk.txt", chinese, (Number(mb) / 2) * 1e6);
