"""One teacher, several students: per-student :class:`KDHooks` sharing one teacher forward, plus mutual learning.

Why one owner: a family of students for several devices (yolov5s for a Jetson, yolov5n for a phone) is cheaper
to distil in one run, where the teacher's forward (the dearest part of KD) runs once per batch for everyone,
and the students can teach each other (deep mutual learning, :mod:`mot_kd.kd.losses.mutual`). Each student keeps
its own KDHooks (taps, adapters, the three losses), so the single-student API is untouched.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.kd.decoders import check_pair
from mot_kd.kd.hooks import KDHooks
from mot_kd.kd.losses.mutual import mutual_losses
from mot_kd.kd.masks import check_targets
from mot_kd.kd.recorder import TapRecorder
from mot_kd.kd.settings import SCHEDULE_KEYS, load_kd_config, schedule_factor, tap_groups
from mot_kd.kd.tapspec import parse_taps


def mutual_enabled(cfg: dict, students: int, where: str = "kd config") -> bool:
    """``mutual.enabled`` resolved for ``students`` students (auto: on with more than one)."""
    setting = cfg["mutual"]["enabled"]
    if setting is True and students < 2:
        raise InputError(f"{where}: mutual.enabled: true needs at least two students, got {students}; give several "
                         "--student architectures or set mutual.enabled to auto/false")
    return students > 1 and setting is not False


class MultiStudentKD(nn.Module):
    """``kd = MultiStudentKD(teacher, [student_a, student_b], cfg)``; after every student's training forward on
    ``images``, ``kd(images, targets, epoch=None) -> [(loss, parts)]`` gives each student's KD loss (the teacher's
    three losses + its mutual term; parts detached) from one teacher forward. Parameters: every student's
    adapters; ``kd.members[i]`` is student ``i``'s KDHooks (its adapters alone, for a per-student optimizer).
    """

    def __init__(self, teacher: nn.Module, students: list[nn.Module], cfg: str | Path | dict | None = None,
                 sample_input: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(students, (list, tuple)) or not students:
            raise InputError("MultiStudentKD(teacher, students): students must be a non-empty list of modules")
        if len({id(s) for s in students}) != len(students):
            raise InputError("MultiStudentKD(teacher, students): the same student object is given twice")
        self.cfg = load_kd_config(cfg)
        self.mutual = mutual_enabled(self.cfg, len(students), "kd config" if cfg is None or isinstance(
            cfg, dict) else str(cfg))
        self.members = nn.ModuleList()
        self._recorders: list[TapRecorder] = []
        try:
            for student in students:
                self.members.append(KDHooks(teacher, student, cfg, sample_input))
            self._groups = (*tap_groups(self.cfg, "pred_diff"), "embedding")
            specs = {g: parse_taps(self.cfg["taps"][g], f"taps.{g}") for g in self._groups}
            self._labels = {g: [s.label for s in v] for g, v in specs.items()}
            if self.mutual:
                self._recorders = [TapRecorder(s, [x for v in specs.values() for x in v], f"student {i}",
                                               training_only=True) for i, s in enumerate(students)]
        except Exception:
            self.remove()
            raise

    def parameters(self, recurse: bool = True):
        """Every student's adapters (each KDHooks then warns about adapters created later, as on its own)."""
        for member in self.members:
            member.parameters()
        return super().parameters(recurse)

    def forward(self, images: torch.Tensor, targets: torch.Tensor,
                epoch: float | None = None) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        factor = schedule_factor(self.cfg["mutual"], epoch) if self.mutual else 0.0
        mutual = self._mutual_terms(images, targets) if factor else None
        teacher = self.members[0].run_teacher(images) if any(m.needs_teacher(epoch) for m in self.members) else None
        results = []
        for i, member in enumerate(self.members):
            loss, parts = member(images, targets, epoch=epoch, teacher_taps=teacher)
            if mutual is not None:
                det, ident = (factor * self.cfg["mutual"]["weight"] * t for t in mutual[i])
                loss = loss + det + ident
                parts = {**parts, "mutual_det": det.detach(), "mutual_id": ident.detach()}
            elif self.mutual:  # scheduled off: zeros, as KDHooks reports its losses, so the columns stay
                zero = images.new_zeros((), dtype=torch.float32)
                parts = {**parts, "mutual_det": zero, "mutual_id": zero}
            results.append((loss, parts))
        return results

    def _mutual_terms(self, images: torch.Tensor, targets: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per student (detection, ID) mutual terms of this step's training forwards."""
        targets = check_targets(targets, images.shape[0]).to(images.device)
        head = [g for g in self._groups if g != "embedding"]
        decoded, embeddings = [], []
        decoder = self.members[0].decoder
        with torch.autocast(device_type=images.device.type, enabled=False):
            for i, recorder in enumerate(self._recorders):
                taps = recorder.take([n for g in self._groups for n in self._labels[g]])
                try:
                    decoded.append(decoder.decode({g: [taps[n].float() for n in self._labels[g]] for g in head},
                                                  {g: self._labels[g] for g in head}, tuple(images.shape[2:])))
                except InputError as exc:
                    raise InputError(f"student {i} {exc}") from None
                embeddings.append(taps[self._labels["embedding"][0]].float())
            for i, d in enumerate(decoded[1:], 1):
                try:
                    check_pair(decoded[0], d, decoder.family)
                except InputError as exc:
                    raise InputError(f"mutual learning between students 0 and {i}: {exc}") from None
            keys = {k: v for k, v in self.cfg["mutual"].items() if k not in SCHEDULE_KEYS}
            erc = {k: v for k, v in self.cfg["losses"]["erc"].items() if k not in SCHEDULE_KEYS}
            return mutual_losses(decoded, embeddings, targets, erc=erc, **keys)

    def remove(self) -> None:
        """Remove every student's hooks (the teacher gets back its state as it was before the first KDHooks)."""
        for recorder in self._recorders:
            recorder.remove()
        for member in reversed(self.members):
            member.remove()
