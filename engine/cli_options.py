"""Command-line option actions shared by the ``treaty`` subcommands."""

from __future__ import annotations

import argparse
from typing import Any

# Namespace attribute that records the value of each once-only option given so
# far, so that a repeat can name both values.
_GIVEN = "_given_once"


class StoreOnce(argparse.Action):
    """Store an option's value like ``store``, but reject a second occurrence.

    argparse's ``store`` keeps the last value, so ``--x A --x B`` would drop the
    first axis without a word. A repeat raises ``argparse.ArgumentError``, which
    the parser reports as a usage error with exit status 2, even when both
    values are equal.

    ``hint`` is the advice at the end of the message; it defaults to giving the
    option once.
    """

    def __init__(self, option_strings: list[str], dest: str, hint: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.hint = hint or "give it only once"

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = getattr(namespace, _GIVEN, None)
        if given is None:
            given = {}
            setattr(namespace, _GIVEN, given)

        if self.dest in given:
            raise argparse.ArgumentError(
                self,
                f"given more than once ({given[self.dest]!r}, then {values!r}); {self.hint}",
            )
        given[self.dest] = values
        setattr(namespace, self.dest, values)


def given_options(namespace: argparse.Namespace) -> set[str]:
    """Return the destinations of the once-only options given on the command line."""
    return set(getattr(namespace, _GIVEN, None) or {})
