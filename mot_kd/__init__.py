"""mot-kd: knowledge distillation for one-shot multi-object trackers (CSTrack/JDE/FairMOT family)."""
__version__ = "0.1.0"
