"""The HTML pages' markup lives in Jinja2 templates shipped with the package
(``sarlearn/reports/templates/``); this module renders them.

    render("live.html.j2", poll_ms=500)

Every template is HTML, so every value is escaped unless it is :class:`markupsafe.Markup`
(pieces of HTML built by another template). Jinja2 is imported on the first render only, so
the command line's start does not pay for it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2


def format_value(v: Any) -> str:
    """A value as a report shows it: thousands separators, 4 significant digits, yes/no, –."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, list | tuple):
        return ", ".join(format_value(x) for x in v)
    return str(v)


def is_number(v: Any) -> bool:
    """Whether a table cell is right-aligned (a number, not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


@cache
def environment() -> jinja2.Environment:
    """The templates' environment (built once): autoescaped, block tags leave no blank lines."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sarlearn.reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty string
    )
    env.filters["fmt"] = format_value
    env.tests["number"] = is_number
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` with ``context``."""
    return environment().get_template(name).render(**context)


def markup(text: str) -> Any:
    """``text`` marked as HTML that a template inserts as it is (not escaped)."""
    from markupsafe import Markup

    return Markup(text)


__all__ = ["environment", "format_value", "is_number", "markup", "render"]
