"""A fake OpenAI-compatible chat-completions server with scripted answers.

Run as ``python fake_llm.py LOG_FILE [--delay SECONDS]``: it prints ``listening on
PORT`` and answers ``POST /v1/chat/completions`` (plain JSON, or server-sent
events when the request says ``"stream": true``), appending one JSON line per
request to LOG_FILE before answering, so a test can count every request it
received, including the one a killed client never saw answered.

The script depends only on the conversation it is sent, so the same
conversation always gets the same answer: a request whose last user message
starts with "Summarise" gets a one-line summary; otherwise, while fewer than
three tool results are in the conversation, the next tool call of
``add_note("apples")``, ``add_note("pears")``, ``count_notes()``; then a final
answer that quotes the last tool result.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import threading
import time
from typing import Any

SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("add_note", {"text": "apples"}),
    ("add_note", {"text": "pears"}),
    ("count_notes", {}),
]
_log_lock = threading.Lock()


def _text(content: Any) -> str:
    """A message's content as text (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The assistant message for a chat-completions request (see the module docstring)."""
    messages = request.get("messages", [])
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    tool_results = [_text(m.get("content")) for m in messages if m.get("role") == "tool"]
    if users and users[-1].startswith("Summarise"):
        digest = hashlib.sha256(users[-1].encode()).hexdigest()[:8]
        return {"role": "assistant", "content": f"Summary {digest}: {users[-1][10:]}"}
    if request.get("tools") and len(tool_results) < len(SCRIPT):
        name, arguments = SCRIPT[len(tool_results)]
        call = {
            "id": f"call_{len(tool_results) + 1}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    last = tool_results[-1] if tool_results else "nothing"
    return {"role": "assistant", "content": f"Final answer: {last}"}


def _completion(message: dict[str, Any], model: str) -> dict[str, Any]:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _chunks(message: dict[str, Any], model: str, usage: bool) -> list[dict[str, Any]]:
    """The message as a stream of chat.completion.chunk objects."""
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000}
    base["model"] = model
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    content = message.get("content") or ""
    deltas += [{"content": content[i : i + 8]} for i in range(0, len(content), 8)]
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        head = {"index": index, "id": call["id"], "type": "function"}
        deltas.append(
            {
                "tool_calls": [
                    {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                ]
            }
        )
        for i in range(0, len(arguments), 6):
            piece = {"index": index, "function": {"arguments": arguments[i : i + 6]}}
            deltas.append({"tool_calls": [piece]})
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    found = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    found.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        counts = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        found.append({**base, "choices": [], "usage": counts})
    return found


def serve(log: str, delay: float, port: int = 0) -> http.server.ThreadingHTTPServer:
    """Start the server on a thread; it is returned running (``server_port``)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = json.loads(body or b"{}")
            stream = bool(request.get("stream"))
            with _log_lock, open(log, "a", encoding="utf-8") as out:
                seen = {
                    "path": self.path,
                    "stream": stream,
                    "sha256": hashlib.sha256(body).hexdigest(),
                }
                out.write(json.dumps(seen) + "\n")
            time.sleep(delay)  # a model takes its time: a kill often lands while it thinks
            message = answer(request)
            model = request.get("model", "fake")
            if stream:
                usage = bool((request.get("stream_options") or {}).get("include_usage"))
                events = [f"data: {json.dumps(c)}\n\n" for c in _chunks(message, model, usage)]
                data = ("".join(events) + "data: [DONE]\n\n").encode()
                kind = "text/event-stream"
            else:
                data, kind = json.dumps(_completion(message, model)).encode(), "application/json"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:  # quiet: the log file says it all
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="a file that gets one JSON line per request")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    server = serve(options.log, options.delay, options.port)
    print(f"listening on {server.server_port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
