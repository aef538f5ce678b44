"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.domain.base import CROSS_FIELD

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://send-referrals.dev/problems/"

log = logging.getLogger(__name__)


class Problem(Exception):
    """An error the API answers with ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ if type_ == "about:blank" or ":" in type_ else PROBLEM_BASE + type_
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def validation_problem(errors: Sequence[dict[str, Any]], detail: str | None = None) -> Problem:
    return Problem(
        422,
        "Invalid request",
        detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors),
        type_="validation",
        errors=errors,
    )


@functools.cache
def _discriminator_tags() -> frozenset[str]:
    """The values that pick a member of a tagged union in our request bodies (a referral's
    ``route``, a venue's ``kind``, a fact's ``command``): pydantic puts them in an error's
    location, but they are not fields the caller can name."""
    from models.domain.base import VenueKind
    from models.domain.commands import Command
    from models.domain.referral import Route

    union, *_ = get_args(Command)  # Annotated[A | B | …, Field(discriminator="command")]
    commands = {model.model_fields["command"].default for model in get_args(union)}
    return frozenset({*(r.value for r in Route), *(k.value for k in VenueKind), *commands})


_UNION_FIELDS = frozenset({"venue", "facts"})
_QUOTED = re.compile(r"'([^']*)'")


def _path(loc: Sequence[Any]) -> list[str]:
    """An error location as the caller's field path: tagged-union members left out."""
    tags = _discriminator_tags()
    out: list[str] = []
    for n, part in enumerate(loc):
        before = loc[n - 1] if n else None
        if (
            isinstance(part, str)
            and part in tags
            and (before == "body" or isinstance(before, int) or before in _UNION_FIELDS)
        ):
            continue
        out.append(str(part))
    return out


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per problem, each naming its field: a cross-field error (``refuse``) is
    split into its fields, and an unknown union tag names the discriminator field."""
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = _path(err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        kind = err.get("type")
        ctx = err.get("ctx") or {}
        if kind == CROSS_FIELD and isinstance(ctx.get("errors"), list):
            for sub in ctx["errors"]:
                field = ".".join([*loc, *str(sub["field"]).split(".")])
                errors.append({"field": field, "message": sub["message"], "type": kind})
            continue
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            name = str(ctx.get("discriminator", "")).strip("'\"")
            loc = [*loc, name] if name else loc
            expected = ", ".join(_QUOTED.findall(str(ctx.get("expected_tags", ""))))
            message = f"must be one of {expected}" if expected else message
            if kind == "union_tag_invalid":
                message += f" (got {ctx.get('tag')!r})"
            else:
                message = "Field required"
        errors.append({"field": ".".join(loc), "message": message, "type": kind})
    return errors


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(_field_errors(exc)), request)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {
        400: "Bad request",
        401: "Unauthorised",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        408: "Request timeout",
        409: "Conflict",
        413: "Request too large",
        415: "Unsupported media type",
        422: "Invalid request",
    }
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    problem = Problem(
        exc.status_code,
        titles.get(exc.status_code, "Error"),
        detail,
        headers=headers or None,
    )
    return problem_response(problem, request)


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    from api.auth import route_path, route_table  # api.auth imports this module

    path = route_path(request.scope)
    methods = {
        m for entry in route_table(request.app) if entry.regex.match(path) for m in entry.methods
    }
    return ", ".join(sorted(methods))


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


def unexpected(exc: BaseException, path: str) -> JSONResponse:
    """The 500 answer to an error nothing else handled (logged with its traceback)."""
    log.error("unhandled error", exc_info=exc, extra={"path": path})
    problem = Problem(500, "Internal server error", "The error has been logged.")
    return JSONResponse(
        problem.body(path), status_code=500, media_type=PROBLEM_JSON, headers=problem.headers
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A backstop only: api/hardening.py answers these inside the middleware stack, so that a
    # 500 carries the same security headers as any other answer.
    return unexpected(exc, request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(Exception, _on_unexpected)
