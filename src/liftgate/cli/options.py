"""Options every command group shares (one definition: the same flag says the same thing)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOpt", "UnsafeOpt", "WaitOpt"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (for machines).")]
WaitOpt = Annotated[
    float | None,
    typer.Option(
        "--wait", metavar="SECONDS", help="Wait this long for the target's or env's lock."
    ),
]
UnsafeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--unsafe-guardrail",
        metavar="NAME",
        help="Accept guardrail NAME weakened by the project's override registry, for this "
        "call (a person's decision, recorded in the evidence); repeatable.",
    ),
]
