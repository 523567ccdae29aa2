"""Student-student deep mutual learning on responses (after "teacher-students KD", Liu et al. 2019, and DML).

Why responses: students of different widths (yolov5s, yolov5n) and ``id_dim`` share no feature space, but they
share the decoded head (the same grid, anchors and classes) and the ERC response distributions, which are
distributions over positions/targets whatever the embedding size. Each side is detached for the other's
update, so a student's term only ever moves that student.

For students A and B on the same batch, per prediction point a of the decoded head:

* detection: l(a) = sum_l KL_bernoulli(sigmoid(b_l) || sigmoid(a_l)) over the decoded class/objectness logits,
  weighted like pred-diff by disagreement, with a weight symmetric in A and B (detached):
  w(a) = w_conf * max(conf_A(a), conf_B(a)) + w_cls * max_k |score_A,k - score_B,k|, normalised per image;
* ID: the ERC loss (:func:`mot_kd.kd.losses.erc.erc_loss`) with B's embedding in the teacher's place.

A's term = det_weight * mean over images of sum_a w(a) l(a) + id_weight * ERC(B -> A); B's term swaps A and B.
The two terms are 0 when A and B respond identically, and their sum is the symmetric KL.
"""
from __future__ import annotations

import torch

from mot_kd.kd.decoders import Decoded
from mot_kd.kd.losses.erc import erc_loss
from mot_kd.kd.losses.pred_diff import bernoulli_kl


def mutual_weights(a: Decoded, b: Decoded, w_conf: float = 1.0, w_cls: float = 1.0) -> torch.Tensor:
    """Detached per-point weights (B, A), symmetric in the two students, summing to 1 per image."""
    with torch.no_grad():
        confidence = torch.maximum(a.scores.amax(-1), b.scores.amax(-1))
        weights = w_conf * confidence + w_cls * (a.scores - b.scores).abs().amax(-1)
        return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)


def mutual_detection_loss(learner: Decoded, other: Decoded, weights: torch.Tensor) -> torch.Tensor:
    """Disagreement-weighted KL(other || learner) of decoded logits; ``other`` is detached."""
    per_point = bernoulli_kl(other.logits.detach(), learner.logits).sum(-1)
    return (weights * per_point).sum(-1).mean()


def mutual_losses(decoded: list[Decoded], embeddings: list[torch.Tensor], targets: torch.Tensor,
                  det_weight: float = 1.0, id_weight: float = 1.0, w_conf: float = 1.0, w_cls: float = 1.0,
                  erc: dict | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per student i: (detection term, ID term) summed over every other student j, each j detached.

    ``decoded``/``embeddings`` hold one entry per student; ``erc`` the ERC keys (tau, env_weight, ...).
    """
    n = len(decoded)
    terms = [[[], []] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            weights = mutual_weights(decoded[i], decoded[j], w_conf, w_cls)
            for learner, other in ((i, j), (j, i)):
                terms[learner][0].append(det_weight * mutual_detection_loss(decoded[learner], decoded[other], weights))
                terms[learner][1].append(id_weight * erc_loss(embeddings[other], embeddings[learner], targets,
                                                              **(erc or {})))
    return [(torch.stack(det).sum(), torch.stack(ident).sum()) for det, ident in terms]
