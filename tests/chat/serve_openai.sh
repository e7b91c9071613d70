#!/usr/bin/env bash
# The official `openai` npm package (pinned) against `kvprune serve` on
# 127.0.0.1 (a free port) with the bundled model: chat, streaming, sessions,
# models and an error, each greedy answer equal to `kvprune generate` /
# `kvprune chat` on the same prompt and method. Installs the package into
# WORK on first run; exit 77 (skipped) only when npm cannot reach its
# registry. usage: serve_openai.sh KVPRUNE WORK_DIR
set -uo pipefail
KVP=$1
WORK=$2
MODEL=models/kvp-mini
PKG=openai@6.49.0
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
if [ ! -f "$WORK/node_modules/openai/package.json" ] || ! grep -q '"version": "6.49.0"' "$WORK/node_modules/openai/package.json"; then
  echo "installing $PKG into $WORK"
  [ -f "$WORK/package.json" ] || echo '{"private":true}' > "$WORK/package.json"
  if ! (cd "$WORK" && timeout 300 npm install --no-audit --no-fund --ignore-scripts "$PKG" >"$WORK/npm.log" 2>&1); then
    if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network" "$WORK/npm.log"; then
      echo "SKIP: npm registry unreachable; openai client test not run"; tail -3 "$WORK/npm.log"; exit 77
    fi
    echo "npm install failed:"; tail -20 "$WORK/npm.log"; exit 1
  fi
fi
Q="What is the secret number?"
# references from the CLI
"$KVP" generate -m $MODEL --prompt "$Q" -n 16 --json > "$WORK/ref_full.json" || exit 1
"$KVP" generate -m $MODEL --prompt "$Q" -n 16 --json --method snapkv --num-recent 4 --num-heavy 8 \
  > "$WORK/ref_snapkv.json" || exit 1
printf '%s\n' "$Q" "And the other one?" "Say it again, please." |
  "$KVP" chat -m $MODEL --json -n 16 --method kvcVK --num-recent 8 --num-heavy 24 > "$WORK/ref_chat.jsonl" || exit 1

"$KVP" serve -m $MODEL --port 0 -n 16 > "$WORK/serve.out" 2> "$WORK/serve.err" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
PORT=""
for _ in $(seq 1 200); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/serve.out")
  [ -n "$PORT" ] && break
  kill -0 $PID 2>/dev/null || { echo "the server exited:"; cat "$WORK/serve.err"; exit 1; }
  sleep 0.05
done
[ -n "$PORT" ] || { echo "the server did not start"; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
cp "$HERE/openai_client.mjs" "$WORK/"
(cd "$WORK" && node openai_client.mjs "http://127.0.0.1:$PORT/v1" "$Q")
rc=$?
kill -TERM $PID; wait $PID; src=$?
trap - EXIT
[ $src -eq 0 ] || { echo "server exit $src"; tail -20 "$WORK/serve.err"; exit 1; }
exit $rc
