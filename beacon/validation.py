"""Reading pydantic validation errors as one line per setting."""

from __future__ import annotations

from pydantic import ValidationError


def setting_problems(exc: ValidationError) -> list[str]:
    """`setting.path: what is wrong`, for each error."""
    return [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors()
    ]
