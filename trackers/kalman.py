"""Constant-velocity Kalman filter on (cx, cy, aspect, h), batched over tracks.

Same state, motion model and noise as JDE/DeepSORT/ByteTrack (position noise 1/20 of the height, velocity
noise 1/160), but every operation takes stacked arrays ``(T, 8)`` / ``(T, 8, 8)`` so that predicting,
updating and gating 60 tracks costs a handful of numpy calls instead of 60 Python-level filter steps.
"""
from __future__ import annotations

import numpy as np

#: 0.95 quantile of the chi-square distribution with 4 degrees of freedom (full xyah gating).
CHI2_95_4DOF = 9.4877

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)  # x' = x + v (dt = 1 frame)


def _noise_std(h: np.ndarray, pos_scale: float, aspect_std: float, vel: bool) -> np.ndarray:
    """Per-track standard deviations (T, 4) for (cx, cy, a, h) that scale with the box height."""
    weight = _STD_VELOCITY if vel else _STD_POSITION
    std = np.empty((len(h), 4))
    std[:, [0, 1, 3]] = (pos_scale * weight * h)[:, None]
    std[:, 2] = aspect_std
    return std


def _diag(variances: np.ndarray) -> np.ndarray:
    """Stack of diagonal matrices from rows of variances: (T, k) -> (T, k, k)."""
    out = np.zeros(variances.shape + (variances.shape[1],))
    idx = np.arange(variances.shape[1])
    out[:, idx, idx] = variances
    return out


class KalmanFilter:
    """Batched filter; all arrays carry a leading track axis T (T may be 0)."""

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New states from measurements (T, 4): zero velocity, uncertainty scaled by height."""
        mean = np.concatenate([xyah, np.zeros_like(xyah)], axis=1)
        h = xyah[:, 3]
        std = np.concatenate([_noise_std(h, 2.0, 1e-2, False), _noise_std(h, 10.0, 1e-5, True)], axis=1)
        return mean, _diag(std**2)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead for all tracks (ByteTrack's multi_predict)."""
        h = mean[:, 3]
        std = np.concatenate([_noise_std(h, 1.0, 1e-2, False), _noise_std(h, 1.0, 1e-5, True)], axis=1)
        mean = mean @ _MOTION.T
        cov = _MOTION @ cov @ _MOTION.T + _diag(std**2)
        return mean, cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space distribution (T, 4), (T, 4, 4) including measurement noise."""
        std = _noise_std(mean[:, 3], 1.0, 1e-1, False)
        return mean[:, :4], cov[:, :4, :4] + _diag(std**2)

    def update(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track (row i) with its matched measurement ``xyah[i]``."""
        proj_mean, proj_cov = self.project(mean, cov)
        # Kalman gain K = P H^T S^-1, with H = [I 0] so P H^T = P[:, :, :4] (P symmetric); S is 4x4 per track.
        gain = cov[:, :, :4] @ np.linalg.inv(proj_cov)
        mean = mean + (gain @ (xyah - proj_mean)[:, :, None])[:, :, 0]
        cov = cov - gain @ proj_cov @ gain.transpose(0, 2, 1)
        return mean, cov

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance (T, N) of every measurement to every track's projection.

        Expanded as z'Az - 2 z'A mu + mu'A mu with A = S^-1 per track, so the (T, N) result comes from two
        (T, 16|4) x (16|4, N) products instead of T batched solves against N right-hand sides (3x faster).
        """
        if len(mean) == 0 or len(xyah) == 0:
            return np.zeros((len(mean), len(xyah)))
        proj_mean, proj_cov = self.project(mean, cov)
        inv = np.linalg.inv(proj_cov)  # (T, 4, 4), symmetric positive definite
        a_mu = (inv @ proj_mean[:, :, None])[:, :, 0]  # (T, 4)
        outer = (xyah[:, :, None] * xyah[:, None, :]).reshape(len(xyah), 16)  # z z' flattened, (N, 16)
        quad = inv.reshape(len(inv), 16) @ outer.T
        return quad - 2.0 * (a_mu @ xyah.T) + (a_mu * proj_mean).sum(1)[:, None]
