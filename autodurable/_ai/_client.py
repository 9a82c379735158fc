"""A client of OpenAI-compatible chat-completions endpoints, on the standard library.

``POST {base_url}/chat/completions`` with ``{"model", "messages", "temperature",
"response_format": {"type": "json_object"}}``; the answer's
``choices[0].message.content`` is the reply. Hosted APIs and local servers
(Ollama, vLLM, llama.cpp, LM Studio) all speak it.

Invariants:
- One request per `complete` call: no hidden retries, so rounds are counted
  by the caller and a slow endpoint costs at most `Endpoint.timeout` per call.
- Every failure is a `ChatError` with one readable line (the URL, the HTTP
  status, the endpoint's own error message); the API key is never part of
  it, even if the endpoint echoes it back.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

from .. import __version__
from ._settings import Endpoint

Message = dict[str, str]
_MAX_ERROR_TEXT = 300


class ChatError(Exception):
    """The endpoint could not be asked, or did not answer with a chat completion."""


class ChatClient:
    """Asks one endpoint for chat completions."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.url = f"{endpoint.base_url}/chat/completions"
        self.requests = 0  # how many were sent, for the summary

    def complete(self, messages: list[Message]) -> str:
        """The model's reply to `messages` (raises `ChatError`)."""
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.endpoint.temperature,
            "stream": False,
        }
        if self.endpoint.json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"autodurable/{__version__}",
        }
        if self.endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key.get_secret_value()}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.endpoint.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ChatError(self._scrub(self._http_error(exc))) from None
        except TimeoutError:
            raise ChatError(self._timed_out()) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise ChatError(self._timed_out()) from None
            raise ChatError(self._scrub(f"cannot reach {self.url}: {exc.reason}")) from None
        except OSError as exc:  # a connection reset half way, say
            raise ChatError(self._scrub(f"cannot reach {self.url}: {exc}")) from None
        return self._content(raw)

    def _timed_out(self) -> str:
        return (
            f"no answer from {self.url} within {self.endpoint.timeout:g} s "
            "(--timeout sets the limit; local models can be slow)"
        )

    def _http_error(self, exc: urllib.error.HTTPError) -> str:
        detail = ""
        try:
            text = exc.read().decode("utf-8", errors="replace")
        except OSError:
            text = ""
        try:
            data = json.loads(text)
            error = data.get("error") if isinstance(data, dict) else None
            detail = error.get("message", "") if isinstance(error, dict) else str(error or "")
        except (json.JSONDecodeError, AttributeError):
            detail = text
        detail = " ".join(detail.split())[:_MAX_ERROR_TEXT]
        return f"{self.url} answered HTTP {exc.code}" + (f": {detail}" if detail else "")

    def _content(self, raw: bytes) -> str:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            excerpt = raw[:_MAX_ERROR_TEXT].decode("utf-8", errors="replace")
            raise ChatError(
                self._scrub(f"{self.url} did not answer with a chat completion: {excerpt!r}")
            ) from None
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise ChatError(f"{self.url} answered with an empty message (finish_reason={reason})")
        return content

    def _scrub(self, text: str) -> str:
        """`text` without the API key, whatever the endpoint echoed."""
        key = self.endpoint.api_key
        if key is not None and key.get_secret_value():
            text = text.replace(key.get_secret_value(), "***")
        return text
