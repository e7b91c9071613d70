#!/usr/bin/env bash
# kvprune chat in a terminal, driven the way a person uses it (tmux
# send-keys, capture-pane): a question and its streamed answer (the same
# text as a piped run), Ctrl-C stopping a long answer but not the session,
# Ctrl-C at the prompt, /stats, /reset, /quit. Skipped (77) without tmux.
# usage: chat_tmux.sh KVPRUNE
set -uo pipefail
KVP=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }
MODEL=models/kvp-mini
FLAGS="--method h2o --num-recent 8 --num-heavy 24 -n 24"
SOCK=kvp_chat_test_$$
T="tmux -L $SOCK"
fail=0
cleanup() { $T kill-server 2>/dev/null; }
trap cleanup EXIT
expected=$(printf 'What is the secret number?\n' | "$KVP" chat -m $MODEL $FLAGS | head -1)
[ -n "$expected" ] || { echo "no piped answer"; exit 1; }

# waits (at most ~30 s) until the screen of session $1 matches a pattern;
# the first miss ends the test
screen() { $T capture-pane -p -J -S -300 -t "$1"; }
wait_for() {
  for _ in $(seq 1 300); do
    screen "$1" | grep -qE -- "$2" && return 0
    sleep 0.1
  done
  echo "FAIL: waiting for /$2/; the screen:"; screen "$1" | tail -15; exit 1
}
prompts() { screen "$1" | grep -c '^> $'; }

# 1. a question, its streamed answer; Ctrl-C at the prompt; /stats; /reset; /quit
$T new-session -d -s a -x 220 -y 50 "$KVP chat -m $MODEL $FLAGS; echo CHAT-EXIT-\$?; sleep 30"
wait_for a '^> $'
$T send-keys -t a "What is the secret number?" Enter
for _ in $(seq 1 300); do [ "$(screen a | grep -c '^> ')" -ge 2 ] && break; sleep 0.1; done
answer=$(screen a | grep -A1 -F '> What is the secret number?' | sed -n 2p)
[ "$answer" = "$expected" ] || { echo "FAIL: answer '$answer' vs piped '$expected'"; fail=1; }
$T send-keys -t a C-c
wait_for a 'Ctrl-D to leave'
$T send-keys -t a "/stats" Enter
wait_for a '^turns 1, tokens seen'
wait_for a 'KV [0-9.]+ MiB of [0-9.]+ MiB full'
$T send-keys -t a "/reset" Enter
wait_for a 'conversation reset'
$T send-keys -t a "/quit" Enter
wait_for a 'CHAT-EXIT-0'

# 2. a long answer (no EOS, a million tokens at most) stopped by Ctrl-C;
# the session goes on
$T new-session -d -s b -x 220 -y 50 "$KVP chat -m $MODEL --method h2o --num-recent 8 --num-heavy 24 -n 1000000 --ignore-eos; echo CHAT-EXIT-\$?; sleep 30"
wait_for b '^> $'
$T send-keys -t b "Tell me a long story." Enter
sleep 0.5
$T send-keys -t b C-c
wait_for b '\[stopped\]'
wait_for b '^> $'
$T send-keys -t b "/stats" Enter
wait_for b '^turns 1, tokens seen'
$T send-keys -t b "/quit" Enter
wait_for b 'CHAT-EXIT-0'
[ $fail -eq 0 ] && echo "chat_tmux: ok"
exit $fail
