"""Channel pruning with distillation recovery (``python -m mot_kd.prune``; docs/prune.md).

A composition root like ``mot_kd.train.cli``: it prunes with Torch-Pruning (``structure``), ranks channels with
the seed's BN-scale + independence score or a baseline (``importance``), fine-tunes and distils with the
project's trainer (``finetune``) and validates with its tracker and evaluator (``pipeline``).
"""
