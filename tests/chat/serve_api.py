"""kvprune serve over loopback, from Python's standard library.

Starts the server on 127.0.0.1 with a free port and the bundled model, then
checks: the endpoints; greedy answers (whole and streamed) equal to
`kvprune generate` / `kvprune chat` on the same prompt and method; stop
strings; sessions (a conversation read once, LRU-bounded); 4xx/503 with
OpenAI error objects for bad input; a few hundred malformed and valid
requests at once, clients that leave mid-answer, and a resident size that
stays flat; and, at SIGTERM, a clean exit (under AddressSanitizer: no
leaks). Usage: serve_api.py KVPRUNE MODEL"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

cli, model = sys.argv[1], sys.argv[2]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)


def run_cli(args, stdin=None):
    p = subprocess.run([cli] + args, input=stdin, capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, "%s: %s" % (args[0], p.stderr))
    return p.stdout


env = dict(os.environ)
# a small quarantine, so that freed memory is reused under AddressSanitizer
env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8:detect_leaks=1"
srv = subprocess.Popen([cli, "serve", "-m", model, "--port", "0", "--parallel", "2", "--max-sessions", "3",
                        "--max-kv-mib", "1", "--max-body-kib", "64", "--max-prompt-tokens", "600",
                        "--max-tokens-limit", "2048", "-n", "16", "--queue", "400", "--connections", "48",
                        "-t", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
line = srv.stdout.readline()
check("listening on http://127.0.0.1:" in line, "banner: " + line)
port = int(line.split("127.0.0.1:")[1].split()[0]) if "127.0.0.1:" in line else 0


def request(method, path, body=None, raw=None, timeout=120, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, payload


def post(path, body, **kw):
    st, payload = request("POST", path, body, **kw)
    try:
        return st, json.loads(payload)
    except ValueError:
        return st, payload


def sse(path, body):
    st, payload = request("POST", path, body)
    events = []
    for block in payload.decode().split("\n\n"):
        if block.startswith("data: "):
            d = block[6:]
            events.append(d if d == "[DONE]" else json.loads(d))
    return st, events


def is_error(st, obj, status, code=None):
    ok = st == status and isinstance(obj, dict) and "error" in obj and isinstance(obj["error"].get("message"), str)
    if ok and code:
        ok = obj["error"].get("code") == code
    return ok


# 1. endpoints
st, body = request("GET", "/health")
check(st == 200 and json.loads(body)["status"] == "ok", "health")
st, body = request("GET", "/v1/models")
check(st == 200 and json.loads(body)["data"][0]["object"] == "model", "models")

# 2. greedy chat equals kvprune generate (same prompt, method, budget)
q = "What is the secret number?"
for flags, kv in [([], {}), (["--method", "snapkv", "--num-recent", "4", "--num-heavy", "8"],
                            {"kv_method": "snapkv", "kv_num_recent": 4, "kv_num_heavy": 8})]:
    ref = json.loads(run_cli(["generate", "-m", model, "--prompt", q, "-n", "16", "--json"] + flags))
    req = dict({"messages": [{"role": "user", "content": q}], "max_tokens": 16, "temperature": 0}, **kv)
    st, r = post("/v1/chat/completions", req)
    check(st == 200, "chat status %d %s" % (st, r))
    if st == 200:
        check(r["choices"][0]["message"]["content"] == ref["text"], "chat %s: %r vs generate %r" %
              (kv, r["choices"][0]["message"]["content"], ref["text"]))
        check(r["usage"]["prompt_tokens"] == len(ref["prompt_ids"]) and
              r["usage"]["completion_tokens"] == len(ref["ids"]), "usage %s" % r["usage"])
        check(r["kv_cache"]["kv_bytes"] == ref["stats"]["kv_bytes"], "kv bytes %s" % r["kv_cache"])
    # streamed: the same text in pieces, then the finish, usage and [DONE]
    st, ev = sse("/v1/chat/completions", dict(req, stream=True, stream_options={"include_usage": True}))
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in ev if isinstance(e, dict) and e["choices"])
    check(st == 200 and text == ref["text"], "streamed %r vs %r" % (text, ref["text"]))
    check(ev and ev[-1] == "[DONE]" and isinstance(ev[-2], dict) and ev[-2]["usage"]["completion_tokens"] == len(ref["ids"]),
          "stream ends with usage and [DONE]")

# completions: the prompt as is
ref = json.loads(run_cli(["generate", "-m", model, "--prompt", "The secret number is", "--no-chat", "-n", "12", "--json"]))
st, r = post("/v1/completions", {"prompt": "The secret number is", "max_tokens": 12})
check(st == 200 and r["choices"][0]["text"] == ref["text"], "completion %s vs %r" % (r, ref["text"]))
st, ev = sse("/v1/completions", {"prompt": "The secret number is", "max_tokens": 12, "stream": True})
check("".join(e["choices"][0]["text"] for e in ev if isinstance(e, dict)) == ref["text"], "streamed completion")

# stop strings cut the answer before them
full = ref["text"]
if len(full) > 6:
    stop = full[3:6]
    st, r = post("/v1/completions", {"prompt": "The secret number is", "max_tokens": 12, "stop": [stop]})
    check(st == 200 and r["choices"][0]["text"] == full[:full.find(stop)] and r["choices"][0]["finish_reason"] == "stop",
          "stop %r: %s" % (stop, r))
    st, ev = sse("/v1/completions", {"prompt": "The secret number is", "max_tokens": 12, "stop": stop, "stream": True})
    check("".join(e["choices"][0]["text"] for e in ev if isinstance(e, dict)) == full[:full.find(stop)], "streamed stop")

# 3. sessions: the conversation is read once; answers equal kvprune chat's
turns = ["What is the secret number?", "And the other one?", "Say it again, please."]
chat_flags = ["--method", "h2o", "--num-recent", "8", "--num-heavy", "24", "-n", "16"]
ref = [json.loads(l) for l in run_cli(["chat", "-m", model, "--json"] + chat_flags, "\n".join(turns) + "\n").splitlines()]
msgs, seen = [], 0
for k, t in enumerate(turns):
    msgs.append({"role": "user", "content": t})
    st, r = post("/v1/chat/completions", {"messages": msgs, "max_tokens": 16, "session": "conv-1", "kv_method": "h2o",
                                          "kv_num_recent": 8, "kv_num_heavy": 24})
    check(st == 200, "session turn %d: %s" % (k, r))
    if st != 200:
        break
    a = r["choices"][0]["message"]["content"]
    check(a == ref[k]["reply"], "session turn %d: %r vs chat %r" % (k, a, ref[k]["reply"]))
    check(not r["kv_cache"]["session_restarted"], "session turn %d restarted" % k)
    check(r["usage"]["prompt_tokens"] == ref[k]["stats"]["prompt_tokens"], "session turn %d read %d tokens" % (k, r["usage"]["prompt_tokens"]))
    check(r["kv_cache"]["kept_tokens"] <= 32 * 8, "session within budget")
    msgs.append({"role": "assistant", "content": a})
# an edited history restarts the session
st, r = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "no"},
                                                   {"role": "user", "content": "again"}], "session": "conv-1",
                                      "kv_method": "h2o", "kv_num_recent": 8, "kv_num_heavy": 24, "max_tokens": 4})
check(st == 200 and r["kv_cache"]["session_restarted"], "edited history restarts")
# more sessions than --max-sessions: the least recently used go
for i in range(5):
    post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "session": "s%d" % i, "max_tokens": 2})
st, body = request("GET", "/health")
check(json.loads(body)["sessions"] == 3, "sessions bounded: %s" % body)

# 4. bad input: 4xx with an error object, never a crash
bad = [
    (b"{not json", 400, "invalid_json"),
    (b"[1,2]", 400, "invalid_json"),
    (b"", 400, "invalid_json"),
    (json.dumps({"messages": "hi"}).encode(), 400, "invalid_type"),
    (json.dumps({"messages": []}).encode(), 400, "invalid_type"),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": 5}]}).encode(), 400, "invalid_type"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}).encode(), 400, "invalid_type"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 99999}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": 7}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "stop": [1]}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "n": 2}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "kv_method": "nope"}).encode(), 400, "invalid_cache_settings"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "kv_method": "h2o"}).encode(), 400, "invalid_cache_settings"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "kv_cache_ratio": 2}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "session": "a b"}).encode(), 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "word " * 700}]}).encode(), 400, "context_length_exceeded"),
    (json.dumps({"prompt": 5}).encode(), 400, "invalid_type"),
    (b"x" * (65 * 1024), 413, "body_too_large"),
]
for raw, status, code in bad:
    path = "/v1/completions" if raw.startswith(b'{"prompt"') else "/v1/chat/completions"
    st, payload = request("POST", path, raw=raw)
    try:
        obj = json.loads(payload)
    except ValueError:
        obj = None
    check(is_error(st, obj, status, code), "%r...: %d %s" % (raw[:40], st, payload[:200]))
st, payload = request("GET", "/v1/chat/completions")
check(st == 405, "GET on a POST endpoint")
st, payload = request("POST", "/v2/nothing", {"a": 1})
check(st == 404 and "error" in json.loads(payload), "unknown path")
# more KV than the server may hold: 503 at once
st, r = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2048,
                                      "kv_method": "full"})
check(is_error(st, r, 503, "unavailable") and "MiB" in r["error"]["message"], "over the memory cap: %d %s" % (st, r))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


# 5. a few hundred requests at once: malformed, valid, streamed, and
# clients that leave mid-answer
def storm(seed, n):
    for i in range(n):
        kind = (seed + i) % 5
        try:
            if kind == 0:
                request("POST", "/v1/chat/completions", raw=b'{"messages": [{"role":', timeout=60)
            elif kind == 1:
                request("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi %d" % i}],
                                                         "max_tokens": 3, "kv_method": "snapkv", "kv_num_recent": 4,
                                                         "kv_num_heavy": 4}, timeout=60)
            elif kind == 2:
                request("POST", "/v1/completions", {"prompt": "x" * (i % 7 + 1), "max_tokens": 3, "stream": True}, timeout=60)
            elif kind == 3:
                # leaves after the headers of a long streamed answer
                s = socket.create_connection(("127.0.0.1", port), timeout=60)
                b = json.dumps({"prompt": "Once", "max_tokens": 2000, "ignore_eos": True, "stream": True,
                                "kv_method": "snapkv", "kv_num_recent": 4, "kv_num_heavy": 8}).encode()
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(b) + b)
                s.recv(64)
                s.close()
            else:
                request("POST", "/v1/chat/completions", raw=b'{"messages": 3}', timeout=60)
        except (OSError, http.client.HTTPException) as e:
            check(False, "request failed: %r" % e)


def rounds(n_threads, per):
    ts = [threading.Thread(target=storm, args=(k, per)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def idle():
    for _ in range(600):  # the cancelled answers stop at their next token
        st, body = request("GET", "/health")
        h = json.loads(body)
        if h["running"] == 0 and h["queued"] == 0:
            return True
        time.sleep(0.05)
    return False


rounds(8, 10)
check(idle(), "idle after the first round")
rss0 = rss_kib(srv.pid)
rounds(8, 25)
check(idle(), "idle after 200 more requests (clients that left freed their work)")
rss1 = rss_kib(srv.pid)
print("RSS after 80 requests: %d KiB, after 200 more: %d KiB" % (rss0, rss1))
check(rss1 <= rss0 * 1.25 + 8192, "RSS grew from %d to %d KiB" % (rss0, rss1))
st, body = request("GET", "/health")
check(st == 200, "still serving")

# 6. SIGTERM: a clean exit (no leaks under AddressSanitizer)
srv.send_signal(signal.SIGTERM)
try:
    out, err = srv.communicate(timeout=60)
except subprocess.TimeoutExpired:
    srv.kill()
    out, err = srv.communicate()
check(srv.returncode == 0, "server exit %s: %s" % (srv.returncode, err[-3000:]))
print("serve_api: %d failures" % failures)
sys.exit(1 if failures else 0)
