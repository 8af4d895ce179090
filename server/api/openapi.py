"""``/api/v1/openapi.json``: generated from the route table and the msgspec types the handlers
decode and encode, so it describes exactly what is served."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from server.api.base import ErrorReply, Route, reply
from server.keys import API_ROUTES

_PARAM = re.compile(r"\{(\w+)\}")
_REF = "#/components/schemas/{name}"
_REASONS = {
    400: "invalid request (the field is named)",
    401: "not signed in",
    403: "forbidden (or, for a cookie session, an origin not allowed)",
    404: "no such object, or not one the caller may see",
    409: "conflict",
    413: "body too large",
    415: "media type refused (the file is not of a kind accepted here)",
    429: "too many attempts (see Retry-After)",
    503: "storage unavailable",
}


def document(routes: list[Route]) -> dict[str, Any]:
    types: list[Any] = [ErrorReply]
    for route in routes:
        types += [t for t in (route.body, route.reply) if t is not None]
    schemas, components = msgspec.json.schema_components(
        list(dict.fromkeys(types)), ref_template=_REF
    )
    by_type = dict(zip(dict.fromkeys(types), schemas, strict=True))
    error = {"application/json": {"schema": by_type[ErrorReply]}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
            for name in _PARAM.findall(route.path)
        ]
        if route.query is not None:
            (query_schema,), query_components = msgspec.json.schema_components(
                [route.query], ref_template=_REF
            )
            resolved = query_components.get(route.query.__name__, query_schema)
            for name, schema in resolved.get("properties", {}).items():
                parameters.append(
                    {"name": name, "in": "query", "required": False, "schema": schema}
                )
        ok: dict[str, Any] = {"description": "success"}
        if route.reply is not None:
            ok["content"] = {"application/json": {"schema": by_type[route.reply]}}
        operation: dict[str, Any] = {
            "summary": route.summary,
            "description": f"Who: {route.who}.",
            "x-kinline-policy": route.who,
            "parameters": parameters,
            "responses": {
                str(route.status): ok,
                **{
                    str(code): {"description": _REASONS[code], "content": error}
                    for code in (*route.errors, 503)
                },
            },
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[route.body]}},
            }
        paths.setdefault(route.full_path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kinline API", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "kinline_session"},
            },
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return reply(document(request.app[API_ROUTES]))


ROUTES = [
    Route(
        "GET",
        "/openapi.json",
        openapi,
        "This description of the API",
        "anyone",
        reply=None,
    ),
]
