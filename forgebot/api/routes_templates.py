"""/templates: the prompt templates a repository can use, and a task made from one."""

from __future__ import annotations

import asyncio

from aiohttp import web

from forgebot.api.bodies import UseTemplate, read_body
from forgebot.api.errors import ApiError
from forgebot.api.lookup import context
from forgebot.api.routes_tasks import repo_root_for, submit_task
from forgebot.core.templates import Template, TemplateError, UnknownTemplate
from forgebot.templates import find_template, load_templates


def template_json(template: Template) -> dict[str, object]:
    return {
        "name": template.name,
        "description": template.description,
        "title": template.title,
        "agents": list(template.agents),
        "params": [
            {"name": p.name, "required": p.required, "default": p.default, "description": p.description}
            for p in template.params
        ],
        "usage": template.usage,
        "source": template.source,
    }


def _repo_query(request: web.Request) -> str:
    repo = request.query.get("repo")
    if not repo:
        raise ApiError(422, "invalid", "repo: name the repository (an absolute path on the server)")
    return repo


async def list_templates(request: web.Request) -> web.Response:
    ctx = context(request)
    root = await repo_root_for(request, _repo_query(request))
    settings = await asyncio.to_thread(ctx.settings_for, root)
    try:
        templates = await asyncio.to_thread(load_templates, root, settings)
    except TemplateError as error:
        raise ApiError(422, "bad_template", str(error)) from None
    return web.json_response({"templates": [template_json(t) for t in templates.values()]})


async def use_template(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_body(request, UseTemplate)
    root = await repo_root_for(request, body.repo)
    settings = await asyncio.to_thread(ctx.settings_for, root)
    name = request.match_info["name"]
    try:
        template = await asyncio.to_thread(find_template, root, name, settings)
        rendered = template.render(body.params)
    except UnknownTemplate as error:
        raise ApiError(404, "not_found", str(error)) from None
    except TemplateError as error:
        raise ApiError(422, "bad_template", str(error)) from None
    agents = body.agents or list(rendered.agents)
    return await submit_task(request, body, title=rendered.title, description=rendered.description, agents=agents)


def add_routes(api: web.Application) -> None:
    api.router.add_get("/templates", list_templates)
    api.router.add_post("/templates/{name}/use", use_template)
