"""ACGAN (Odena et al. 2017): D predicts the class as well as real/fake."""

from __future__ import annotations

from typing import Any

from lit_gan.models.dcgan import DCGAN
from lit_gan.objective import ObjectiveSpec


class ACGAN(DCGAN):
    """G draws the class it is given; D is not told the label and has a real/fake logit and
    class logits (the `aux_classifier` term): both minimise the class loss as well."""

    def __init__(
        self, conditional: bool = True, objective: ObjectiveSpec = ObjectiveSpec(terms={"aux_classifier": {"weight": 1.0}}),
        **kwargs: Any,
    ) -> None:
        super().__init__(conditional=conditional, objective=objective, **kwargs)
