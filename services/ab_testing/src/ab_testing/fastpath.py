"""`GET /api/route` without FastAPI's routing and dependency machinery: the request path the
service exists for. It answers only when everything is at hand — a well-formed query, an accepted
API key (or auth off), and the experiment's definition in the cache — and otherwise hands the
request to the regular route, which gives the same answer or the usual error."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ab_testing.routing import assignment_json

_HEADERS = [(b"content-type", b"application/json")]
# what the metrics middleware labels a request by (the regular route sets the same template)
_ROUTE = SimpleNamespace(path="/api/route")


def _key(scope: Scope) -> str | None:
    api_key = None
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            token: str = value[7:].decode("latin-1").strip()
            return token
        if name == b"x-api-key":
            api_key = value.decode("latin-1")
    return api_key


class RouteFastPath:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/route" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        answer = self._answer(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        body = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _answer(self, scope: Scope) -> dict[str, Any] | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        users, experiments = query.get("user_id"), query.get("experiment")
        if not users or not experiments or len(users) != 1 or len(experiments) != 1:
            return None
        user_id, experiment = users[0], experiments[0]
        if not 0 < len(user_id) <= 200 or not 0 < len(experiment) <= 100:
            return None
        state = scope["app"].state
        principal = state.keyring.authenticate(_key(scope))
        if principal is None:
            return None
        cached = state.definitions.get_cached(experiment)
        if cached is None:
            return None
        answer = assignment_json(cached.definition, user_id, cached.compiled)
        state.exposures.expose(cached.definition, answer, (principal.name, principal.role.name))
        return answer
