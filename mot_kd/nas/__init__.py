"""One-shot architecture search for the student (LightTrack-style); see docs/nas.md.

Search space and costs (space, cost), weight-sharing supernet and its KD training (supernet, supernet_train),
evolutionary search scored by tracking (evolution, score, report), candidate files (files), picks and the
inherited-vs-retrained rank correlation against a KD bench (compare), the CLI stages (steps, cli).
"""
from mot_kd.nas.cost import candidate_cost, check_budget, smallest_candidate
from mot_kd.nas.space import SearchSpace, build_candidate, candidate_cfg, check_candidate, load_space

__all__ = ["SearchSpace", "build_candidate", "candidate_cfg", "candidate_cost", "check_budget", "check_candidate",
           "load_space", "smallest_candidate"]
