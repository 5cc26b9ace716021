"""Flexibility provisions: one module per kind, listed in ``PROVISION_MODULES``.

Each module defines ``KIND`` (the value of ``kind:`` in a treaty file), a pydantic
model for the provision's fields, ``RULES_FIELD`` (the attribute of
``engine.game.Rules`` it fills) and ``compile(provision, context)``, which converts a
validated provision into the rules record the solver reads. A new kind is added by
writing such a module and listing it here.
"""

from __future__ import annotations

from provisions import duration, escape_hatch, review, withdrawal

PROVISION_MODULES = (duration, withdrawal, escape_hatch, review)

PROVISION_MODELS = {
    duration.KIND: duration.DurationProvision,
    withdrawal.KIND: withdrawal.WithdrawalProvision,
    escape_hatch.KIND: escape_hatch.EscapeHatchProvision,
    review.KIND: review.ReviewProvision,
}

MODULES_BY_KIND = {module.KIND: module for module in PROVISION_MODULES}

PROVISION_KINDS = tuple(PROVISION_MODELS)
