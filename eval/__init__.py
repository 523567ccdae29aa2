"""MOTChallenge evaluator: TrackEval-exact HOTA / CLEAR / Identity metrics, vectorised.

``evaluate(sequences)`` works on arrays (for training loops); ``eval.loading`` reads a data root and a
results folder; ``python -m eval.mot17`` is the command line.
"""
from eval.evaluate import EvalResult, evaluate
from eval.protocol import SequenceData

__all__ = ["EvalResult", "SequenceData", "evaluate"]
