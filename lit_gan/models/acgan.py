"""ACGAN (Odena et al. 2017; seed 004): D predicts the class as well as real/fake."""

from __future__ import annotations

from typing import Any

from lit_gan.models.dcgan import DCGAN


class ACGAN(DCGAN):
    """G draws the class it is given; D has a real/fake logit and class logits (into
    cross-entropy, no softmax first) and is not told the label. D minimises the source loss plus
    the class loss on real and fake images; G minimises its source loss plus the class loss of
    its samples."""

    def __init__(self, conditional: bool = True, aux_classifier: bool = True, **kwargs: Any) -> None:
        super().__init__(conditional=conditional, aux_classifier=aux_classifier, **kwargs)
