"""The strict pydantic base every config section derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A frozen config section that rejects unknown keys.

    Every field carries a ``description`` so that ``dtgan config show`` and error messages can explain
    it, and its unit in the name (``total_steps``, ``ema_beta``).
    """

    # allow_inf_nan=False: ``optim.lr=inf`` or ``.nan`` passes ``gt=0`` checks otherwise.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)
