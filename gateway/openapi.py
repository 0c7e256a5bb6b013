"""The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`, and the docs page `/api/v1/docs`.

Why YAML files per area (`gateway/openapi/*.yaml`) plus this builder rather than apispec reading view
docstrings: the API modules belong to the areas' own pages and change often; one file per area keeps the
description in one readable place, reviewable as a whole, without touching every view. The builder adds
what is the same everywhere, so the YAML stays short and cannot drift on it:
- path parameters, typed from the Flask rule (`<int:x>` → integer), so they always match the routing;
- `security` (cookie session; writes also the CSRF header) unless an operation says `public: true`;
- the error answers every protected operation can give (400, 401, 403, 404, 503; writes 409;
  uploads 413), all with the one `Error` body of `gateway.errors`.

YAML shorthands per operation: `ok`/`created` (200/201 JSON body: a component name or a schema),
`no_content` (204), `html` (a page), `query` ({name: schema}), `body` (JSON request body;
`body_optional`), `upload` (also multipart `file`), `errors` (more statuses), `responses` ({status:
{description, schema}}). `{$ref: Name}` anywhere means `#/components/schemas/Name`.

`coverage(app)` compares the document with the url_map: a route added without documentation (or
documentation left for a removed route) fails `gateway/tests/test_openapi.py`.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Flask, current_app, jsonify, render_template
from werkzeug.routing import Map
from werkzeug.wrappers import Response

from gateway.errors import MESSAGES

API_PREFIX = "/api/v1"
SPEC_DIR = Path(__file__).with_name("openapi")
AREAS = ("session", "accounts", "roster", "org", "status", "housing", "aid", "transfer", "dashboard")
EXTENSION = "xueji_openapi"
WRITES = frozenset({"post", "put", "patch", "delete"})
METHODS = ("get", "post", "put", "patch", "delete")
SCHEMA_REF = "#/components/schemas/"
RULE_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

bp = Blueprint("openapi", __name__, url_prefix=API_PREFIX)

# Chinese descriptions of the error answers (the body is always `Error`).
ERROR_DESCRIPTIONS = {
    400: "请求参数有误",
    401: "未登录或会话已结束",
    403: "无权访问，或缺少 CSRF 校验",
    404: "对象不存在",
    409: "与现有数据冲突",
    413: "上传的内容过大",
    429: "登录尝试过于频繁（见 Retry-After）",
    503: "所需的服务暂时不可用",
}


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document(current_app))


@bp.get("/docs")
def docs_page() -> str:
    return render_template("api_docs.html")


def document(app: Flask) -> dict[str, Any]:
    """The app's document, built once (routes do not change after `create_app`)."""
    if EXTENSION not in app.extensions:
        app.extensions[EXTENSION] = build(app.url_map)
    return app.extensions[EXTENSION]


def api_rules(url_map: Map) -> dict[tuple[str, str], dict[str, str]]:
    """(OpenAPI path, method) → {variable: converter} of every `/api/v1` rule."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for rule in url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX + "/"):
            continue
        path = RULE_VARIABLE.sub(r"{\2}", rule.rule)
        variables = {name: converter or "default" for converter, name in RULE_VARIABLE.findall(rule.rule)}
        for method in rule.methods or ():
            if method.lower() in METHODS:
                found[(path, method.lower())] = variables
    return found


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items() for method in item if method in METHODS}


def coverage(app: Flask) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(routes without documentation, documentation without a route)."""
    routes = set(api_rules(app.url_map))
    described = documented(document(app))
    return routes - described, described - routes


# -- building ---------------------------------------------------------------------------------------


@cache
def _load(name: str) -> dict[str, Any]:
    with (SPEC_DIR / f"{name}.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _refs(node: Any) -> Any:
    """`{$ref: Name}` → `{$ref: '#/components/schemas/Name'}`, recursively (on a copy)."""
    if isinstance(node, dict):
        out = {key: _refs(value) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            out["$ref"] = SCHEMA_REF + ref
        return out
    if isinstance(node, list):
        return [_refs(item) for item in node]
    return node


def _schema(value: Any) -> dict[str, Any]:
    return {"$ref": SCHEMA_REF + value} if isinstance(value, str) else _refs(value)


def _path_parameter(name: str, converter: str) -> dict[str, Any]:
    if converter == "int":
        schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    else:  # Flask's default converter: one path segment
        schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _error_statuses(method: str, op: dict[str, Any]) -> set[int]:
    statuses = set(op.get("errors", ()))
    if not op.get("public"):
        statuses |= {400, 401, 403, 404, 503}
        if method in WRITES:
            statuses.add(409)
    if op.get("upload"):
        statuses.add(413)
    return statuses


def _operation(tag: str, path: str, method: str, op: dict[str, Any],
               variables: dict[str, str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "summary": op["summary"],
                           "operationId": re.sub(r"\W+", "_", f"{method}{path.removeprefix(API_PREFIX)}").strip("_")}
    if "description" in op:
        out["description"] = op["description"]
    names = re.findall(r"{(\w+)}", path)
    parameters = [_path_parameter(name, (variables or {}).get(name, "default")) for name in names]
    parameters += [{"name": name, "in": "query", "required": False, "schema": _schema(schema)}
                   for name, schema in (op.get("query") or {}).items()]
    if parameters:
        out["parameters"] = parameters
    if op.get("public"):
        out["security"] = []
    elif method in WRITES:
        out["security"] = [{"session": [], "csrf": []}]
    if "body" in op:
        content = {"application/json": {"schema": _schema(op["body"])}}
        if op.get("upload"):
            content["multipart/form-data"] = {"schema": {"$ref": SCHEMA_REF + "FileUpload"}}
        out["requestBody"] = {"required": not op.get("body_optional"), "content": content}
    responses: dict[str, Any] = {}
    if "ok" in op:
        responses["200"] = {"description": "成功", "content": {"application/json": {"schema": _schema(op["ok"])}}}
    if "created" in op:
        responses["201"] = {"description": "已创建",
                            "content": {"application/json": {"schema": _schema(op["created"])}}}
    if op.get("no_content"):
        responses["204"] = {"description": "成功，无内容"}
    if op.get("html"):
        responses["200"] = {"description": "HTML 页面", "content": {"text/html": {"schema": {"type": "string"}}}}
    for status, answer in (op.get("responses") or {}).items():
        responses[str(status)] = {"description": answer["description"],
                                  "content": {"application/json": {"schema": _schema(answer["schema"])}}}
    for status in sorted(_error_statuses(method, op)):
        responses.setdefault(str(status), {"$ref": f"#/components/responses/E{status}"})
    out["responses"] = responses
    return out


def _error_responses() -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, text in ERROR_DESCRIPTIONS.items():
        answer: dict[str, Any] = {"description": f"{text}（如：{MESSAGES.get(status, text)}）",
                                  "content": {"application/json": {"schema": {"$ref": SCHEMA_REF + "Error"}}}}
        if status == 429:
            answer["headers"] = {"Retry-After": {"description": "多少秒后可以再试",
                                                 "schema": {"type": "integer", "minimum": 1}}}
        answers[f"E{status}"] = answer
    return answers


def build(url_map: Map) -> dict[str, Any]:
    """The document for these routes, from the YAML of every area."""
    rules = api_rules(url_map)
    components = copy.deepcopy(_load("components"))
    paths: dict[str, dict[str, Any]] = {}
    tags = []
    for area in AREAS:
        spec = _load(area)
        tag = spec["tag"]
        tags.append(dict(tag))
        prefix = API_PREFIX + spec.get("prefix", "")
        for sub, item in spec["paths"].items():
            path = prefix + sub
            for method, op in item.items():
                paths.setdefault(path, {})[method] = _operation(tag["name"], path, method, op,
                                                                rules.get((path, method)))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "学籍管理平台 xueji API",
            "version": "1",
            "description": (
                "学生事务平台的 JSON 接口。先用 POST /api/v1/session 登录取得会话 Cookie；带 Cookie 的写请求须在 "
                "X-CSRF-Token 请求头中携带 xueji_csrf Cookie 的值。出错时统一返回 "
                '{"error": {"code", "message"}}，message 为中文说明。列表接口以 page、per_page 分页，'
                "返回 items、total、page、per_page。"
            ),
        },
        "tags": tags,
        "security": [{"session": []}],
        "paths": paths,
        "components": {
            "schemas": _refs(components["schemas"]),
            "responses": _error_responses(),
            "securitySchemes": components["securitySchemes"],
        },
    }
