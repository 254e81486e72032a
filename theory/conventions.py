"""Conventions shared by every layer: dataset axes, the behaviour split of the token tree, units."""

from __future__ import annotations

import math

PRETRAIN, ALIGN, PERTURB = 0, 1, 2
"""Positions of D_p (pre-training), D_a (alignment) and D_t (the perturbation, further fine-tuning data) along the
dataset axis of every array of leaf distributions (..., 3, n_leaves) and of sizes (..., 3)."""

DATASET_NAMES = ("pretrain", "align", "perturb")
"""Names of the three datasets, in axis order."""

ALIGNED_PREFIX = (0,)
"""Responses whose first token is 0 play the aligned (positive) behaviour; D_a lives on this subtree."""

UNALIGNED_PREFIX = (1,)
"""Responses whose first token is 1 play the unaligned (negative) behaviour; an 'unaligned' D_t lives here."""

LN2 = math.log(2.0)
"""ln 2: nats per bit. Rates are reported in bits (log base 2), KL divergences and training losses in nats; a name
ending in _bits or _nats says which, and per_token / per_response says what it is divided by."""
