"""The three MOT distillation losses, one module each."""
from mot_kd.kd.losses.erc import erc_loss
from mot_kd.kd.losses.key_feature import key_feature_loss
from mot_kd.kd.losses.pred_diff import pred_diff_loss

__all__ = ["erc_loss", "key_feature_loss", "pred_diff_loss"]
