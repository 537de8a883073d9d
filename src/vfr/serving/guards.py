"""Pure ASGI middleware that guards the app against hostile input before any route runs.

* :class:`BodyLimit`: request bodies larger than ``api_max_body_bytes`` are refused with 413
  before they are parsed: at once when ``Content-Length`` says so (nothing of the body is read),
  and as soon as the streamed bytes pass the limit otherwise (chunked bodies, lying headers).
* :class:`ClientAddress`: the client address the API keys anonymous rate limits by. An
  ``X-Forwarded-For`` header is honoured only when the direct peer is one of the configured
  trusted proxies (``api_trusted_proxies``, empty by default): anyone else, localhost
  included, cannot choose the address they are counted under.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

#: ``scope["client"]`` host of a request whose server already applied ``X-Forwarded-For`` from a
#: peer VFR cannot verify (see :class:`ClientAddress`): such callers share one rate-limit bucket.
UNVERIFIED = "unverified-forwarder"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _TooLarge(Exception):
    """The streamed body passed the limit."""


async def _reject_413(scope, send, limit: int) -> None:
    rid = scope.get("state", {}).get("request_id")
    body = json.dumps({"error": "payload_too_large",
                       "detail": f"the request body exceeds the limit of {limit} bytes",
                       "request_id": rid}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 ``payload_too_large`` (0 = no limit).

    ``Content-Length`` is checked before the app runs, so an announced oversize body is never
    read; without it (or when it lies) the bytes received are counted and the request is cut off
    with 413 as soon as they pass the limit, whatever the route was doing with them.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = -1
                if announced > limit:
                    await _reject_413(scope, send, limit)
                    return
        received = 0
        too_large = False
        started = False

        async def counted_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message):
            nonlocal started
            if too_large:  # whatever the app answers to the cut-off body, the client gets the 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reject_413(scope, send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _TooLarge:
            if not started:
                started = True
                await _reject_413(scope, send, limit)
        except Exception:
            if not too_large:
                raise
            if not started:
                started = True
                await _reject_413(scope, send, limit)


def parse_networks(items: Iterable[str]) -> list[_Network]:
    """``ip_network`` of each address or CIDR string."""
    return [ipaddress.ip_network(item, strict=False) for item in items]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of an ``X-Forwarded-For`` entry (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddress:
    """Set ``scope["client"]`` to the address rate limits should key by.

    With the direct peer in ``trusted`` (addresses or networks), the ``X-Forwarded-For`` chain is
    walked from the right, past the trusted proxies, to the first address that is not one: that
    is the client. With any other peer the header is ignored and the peer is the client.

    A server that applies ``X-Forwarded-For`` itself (uvicorn's ``proxy_headers``, on by default
    for 127.0.0.1) hides the direct peer; that is recognised by the client address being one of
    the header's entries. The header is then honoured only when trusted proxies are configured;
    otherwise the caller is counted as :data:`UNVERIFIED`, one bucket for all of them, so changing
    the header cannot reset a limit.
    """

    def __init__(self, app, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = parse_networks(trusted)

    def _is_trusted(self, ip) -> bool:
        return ip is not None and any(ip in net for net in self.trusted)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
        client = scope.get("client")
        if values and client:
            entries = [e for e in ",".join(values).split(",") if e.strip()]
            peer = client[0]
            applied = any(_ip(e) is not None and _ip(e) == _ip(peer) for e in entries)
            if applied and not self.trusted:
                scope["client"] = (UNVERIFIED, 0)
            elif applied or self._is_trusted(_ip(peer)):
                scope["client"] = (self._from_chain(entries, peer), 0)
        await self.app(scope, receive, send)

    def _from_chain(self, entries: list[str], peer: str) -> str:
        """The rightmost entry that is not a trusted proxy (the leftmost valid one when all are)."""
        found = peer
        for entry in reversed(entries):
            ip = _ip(entry)
            if ip is None:  # garbage in the chain: stop at the last address we could trust
                break
            found = str(ip)
            if not self._is_trusted(ip):
                break
        return found
