"""mot-kd: knowledge distillation for one-shot multi-object trackers (CSTrack/JDE/FairMOT family)."""
__version__ = "0.1.0"


def __getattr__(name: str):
    """``from mot_kd import KDHooks``, imported lazily so ``import mot_kd`` does not pull in torch."""
    if name == "KDHooks":
        from mot_kd.kd import KDHooks
        return KDHooks
    raise AttributeError(f"module 'mot_kd' has no attribute {name!r}")
