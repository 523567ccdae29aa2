"""Tracking metrics, one per module; each counts first (per sequence) and derives ratios after.

Every module exposes ``count(prepared) -> dict`` (TrackEval field names, raw per-sequence result),
``combine(list_of_counts) -> dict`` (COMBINED, from summed counts like TrackEval) and the field lists.
"""
