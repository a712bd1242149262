"""`forgebot template list|use`: named prompt templates (config `templates:` and .github/forge/templates/*.md).

`use` renders the template and then creates the task exactly as `task create` does (same options, same live
table or --detach); --agent on the command line wins over the template's `agents`, which win over the defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from forgebot.app import LocalApp
from forgebot.core.templates import parse_assignments
from forgebot.templates import TEMPLATES_DIR, find_template, load_templates

Handler = Callable[[LocalApp, argparse.Namespace, Console], Awaitable[int]]


async def template_list(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    found = load_templates(app.repo, app.settings)
    if not found:
        out.print(f"No templates: add {TEMPLATES_DIR}/NAME.md or a `templates:` entry to the config.")
        return 0
    table = Table(title="Templates", title_justify="left")
    for column in ("usage", "description", "agents", "from"):
        table.add_column(column)
    for template in found.values():
        params = "".join(f"\n  {param.name}: {param.description}" for param in template.params if param.description)
        cells = (template.usage + params, template.description or "-", ", ".join(template.agents) or "-")
        table.add_row(*(Text(cell) for cell in (*cells, template.source)))  # Text: "[line=1]" is not markup
    out.print(table)
    return 0


async def template_use(app: LocalApp, args: argparse.Namespace, out: Console, create: Handler) -> int:
    template = find_template(app.repo, args.name, app.settings)
    rendered = template.render(parse_assignments(args.params, f"template `{template.name}`"))
    args.title, args.description = rendered.title, rendered.description
    args.agent = args.agent or list(rendered.agents)
    return await create(app, args, out)


class _Parser(argparse.ArgumentParser):
    """Takes KEY=VALUE words after the options too (`use fix-bug --agent claude file=a.py`): argparse alone fills
    a `nargs="*"` positional from the words before the first option and refuses the rest."""

    def parse_known_args(  # type: ignore[override]  # one signature for typeshed's overloads
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if any(action.dest == "params" for action in self._actions):
            parsed.params = [*parsed.params, *(word for word in extra if not word.startswith("-"))]
            extra = [word for word in extra if word.startswith("-")]
        return parsed, extra


def add_parsers(
    groups: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    create: Handler,
    flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`create` is `task create`'s handler and `flags` adds its options, so `use` cannot drift from it."""
    templates = groups.add_parser("template", help="named prompt templates with parameters").add_subparsers(
        dest="cmd", required=True, parser_class=_Parser
    )
    listing = templates.add_parser("list", help="the templates of this repository and the config")
    listing.set_defaults(handler=template_list)

    use = templates.add_parser("use", help="create a task from a template")
    use.add_argument("name")
    use.add_argument("params", nargs="*", metavar="KEY=VALUE", help="the template's parameters")
    flags(use)

    async def handler(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
        return await template_use(app, args, out, create)

    use.set_defaults(handler=handler)
