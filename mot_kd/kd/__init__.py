"""Knowledge distillation for one-shot trackers: :class:`KDHooks` and the three MOT distillation losses."""
from mot_kd.utils.cpu import flush_denormals
from mot_kd.kd.hooks import KDHooks
from mot_kd.kd.multi import MultiStudentKD

__all__ = ["KDHooks", "MultiStudentKD"]

flush_denormals()
