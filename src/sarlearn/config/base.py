"""The base of every config section, and the one-line form of its validation errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    """A config section (a pydantic model): a bad value is rejected with a message naming the
    field."""

    # NaN and infinity are refused everywhere (pydantic: "Input should be a finite number"):
    # a non-finite speed, start or readout would only show up as a run diverging at step 0.
    # The fields where infinity means "no bound" say so with Field(allow_inf_nan=True).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def describe_errors(exc: ValidationError) -> str:
    """pydantic's errors as one line, ``"field.path: message; ..."`` (so the CLI's error stays
    one clear line whatever the number of problems)."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        got = f" (got {err['input']!r})" if err["type"] == "finite_number" else ""
        msg = err["msg"].removeprefix("Value error, ")  # our own validators' messages
        problems.append(f"{where}: {msg}{got}")
    return "; ".join(problems)


__all__ = ["Section", "describe_errors"]
