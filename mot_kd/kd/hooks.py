"""KDHooks: drop-in distillation for any one-shot tracker training loop, addressed by module names.

Recorders (which tensors), connectors (adapters to the teacher's channels) and losses (the three MOT
losses) are separate pieces wired by config, as in mmrazor's distiller; the models are never wrapped or
subclassed, so ``kd.remove()`` leaves them exactly as they were.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.kd.adapters import LazyConnectors, architecture
from mot_kd.kd.decoders import Decoded, build_decoder, check_pair
from mot_kd.kd.fused import HybridForward
from mot_kd.kd.losses.cwd import cwd_loss
from mot_kd.kd.losses.embedding import embedding_loss
from mot_kd.kd.losses.erc import erc_loss
from mot_kd.kd.losses.fgd import FGDLoss
from mot_kd.kd.losses.fitnet import fitnet_loss
from mot_kd.kd.losses.key_feature import key_feature_loss
from mot_kd.kd.losses.logit import logit_loss
from mot_kd.kd.losses.pred_diff import pred_diff_loss
from mot_kd.kd.masks import check_targets
from mot_kd.kd.recorder import TapRecorder, missing_modules, resolve_module
from mot_kd.kd.settings import HEAD_LOSSES, LOSS_NAMES, SCHEDULE_KEYS, load_kd_config, schedule_factor, tap_groups

from mot_kd.kd.tapspec import layout_error, parse_taps

ADAPTED_BASELINES = ("fitnet", "cwd", "fgd", "embedding")  # baselines with their own connectors


class KDHooks(nn.Module):
    """Distil ``teacher`` into ``student`` from their named taps.

    ``kd = KDHooks(teacher, student, cfg)`` freezes the teacher and hooks both models; after each training
    forward of the student, ``kd(images, targets, epoch=None) -> (loss, parts)`` runs the teacher (eval,
    no_grad, on the images' device) and returns the weighted KD loss (fp32) and its detached parts. Only the
    adapters are parameters of this module. A dry run at construction (``sample_input`` or a zero image of
    ``build_input_size``) creates the adapters and checks the taps' shapes, so ``kd.parameters()`` can go to
    the optimizer right away.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, cfg: str | Path | dict | None = None,
                 sample_input: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(teacher, nn.Module) or not isinstance(student, nn.Module):
            raise InputError("KDHooks(teacher, student): both must be torch.nn.Module instances")
        if teacher is student:
            raise InputError("KDHooks(teacher, student): teacher and student are the same object")
        student_params = {id(p) for p in student.parameters()}
        if any(id(p) in student_params for p in teacher.parameters()):
            raise InputError("KDHooks(teacher, student): the teacher shares parameters with the student")
        self.cfg = load_kd_config(cfg)
        self._models = (teacher, student)  # a tuple, so neither model becomes a submodule of KDHooks
        self.active = [n for n in LOSS_NAMES if self.cfg["losses"][n]["enabled"]]
        self.active += ["fused"] if self.cfg["fused"]["enabled"] else []
        self.decoder = build_decoder(self.cfg["head"])  # head taps -> decoded boxes/scores (pred_diff)
        groups = sorted({g for n in self.active for g in tap_groups(self.cfg, n)})
        self.student_specs = {g: parse_taps(self.cfg["taps"][g], f"taps.{g}") for g in groups}
        self.teacher_specs = {g: parse_taps(self.cfg["teacher_taps"][g], f"teacher_taps.{g}") for g in groups}
        self.student_taps = {g: [s.label for s in v] for g, v in self.student_specs.items()}  # record keys
        self.teacher_taps = {g: [s.label for s in v] for g, v in self.teacher_specs.items()}
        missing = [(role, g, s) for role, model, specs in (("student", student, self.student_specs),
                                                           ("teacher", teacher, self.teacher_specs))
                   for g, v in specs.items() for s in missing_modules(model, v)]
        if missing:
            from mot_kd.kd.taps import missing_taps_message  # here, so `python -m mot_kd.kd.taps` imports it once

            size = sample_input.shape[2:] if sample_input is not None else self.cfg["build_input_size"]
            raise InputError(missing_taps_message(missing, {"student": student, "teacher": teacher},
                                                  None if size is None else tuple(size)))
        self._teacher_state = ([(m, m.training) for m in teacher.modules()],
                               {n: p.requires_grad for n, p in teacher.named_parameters()},
                               next(teacher.parameters(), torch.empty(0)).device)
        self.student_recorder = TapRecorder(student, [s for v in self.student_specs.values() for s in v],
                                            "student", training_only=True)
        self.teacher_recorder = TapRecorder(teacher, [s for v in self.teacher_specs.values() for s in v],
                                            "teacher", training_only=False)
        teacher.eval().requires_grad_(False)
        self.connectors = LazyConnectors(self.cfg["adapter"], self._same_architecture_taps("neck"))
        self.baseline_connectors = nn.ModuleDict({  # one set per baseline, so no two losses share an adapter
            n: LazyConnectors(self.cfg["adapter"], self._same_architecture_taps(tap_groups(self.cfg, n)[0]))
            for n in ADAPTED_BASELINES if n in self.active})
        self.fgd = FGDLoss() if "fgd" in self.active else None  # FGD's learnable global blocks
        self.hybrid = None  # fused-model distillation: hybrid teacher forwards at the fuse points
        if "fused" in self.active:
            points = self.cfg["fused"]["points"]
            self.hybrid = HybridForward(teacher, {p: (self.student_specs[p], self.teacher_specs[p]) for p in points},
                                        {g: self.teacher_specs[g] for g in tap_groups(self.cfg, "fused")
                                         if g not in points},
                                        self.cfg["adapter"],
                                        {t for p in points for t in self._same_architecture_taps(p)})
        self._reentry_checked = False  # build() checks it; without a dry run, the first kd() call does
        size = self.cfg["build_input_size"]
        if sample_input is not None or size is not None:
            if sample_input is None:
                device = next(student.parameters(), torch.empty(0)).device
                sample_input = torch.zeros(1, 3, *size, device=device)
            try:
                self.build(sample_input)
            except Exception:
                self.remove()  # a failed construction leaves both models as they were
                raise

    @property
    def teacher(self) -> nn.Module:
        return self._models[0]

    @property
    def student(self) -> nn.Module:
        return self._models[1]

    def parameters(self, recurse: bool = True):
        """Adapter (and FGD global block) parameters (hand them to the optimizer)."""
        for module in self.modules():
            if isinstance(module, (LazyConnectors, FGDLoss)):
                module.handed_out = True
        return super().parameters(recurse)

    @torch.no_grad()
    def build(self, sample_input: torch.Tensor) -> None:
        """Dry-run both models on ``sample_input`` (student in eval mode, nothing updated) to create adapters."""
        student = self.student
        modes = [(m, m.training) for m in student.modules()]  # per module: frozen BN etc. stay as they were
        student.eval()
        self.student_recorder.forced = True
        try:
            student(sample_input)
            teacher_taps = self._run_teacher(sample_input)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"KDHooks dry run on a {tuple(sample_input.shape)} input failed ({exc}); pass "
                             "sample_input= with a valid batch or set build_input_size in the KD config") from exc
        finally:
            self.student_recorder.forced = False
            for module, training in modes:
                module.training = training
        student_taps = self.student_recorder.take(self._flat(self.student_taps))
        self._check_shapes(student_taps, teacher_taps, sample_input.shape[0], sample_input.shape[2:])
        if {*HEAD_LOSSES, "fused"} & set(self.active):
            groups = tap_groups(self.cfg, "pred_diff")
            self._decode_head({g: [student_taps[n] for n in self.student_taps[g]] for g in groups},
                              {g: [teacher_taps[n] for n in self.teacher_taps[g]] for g in groups},
                              sample_input.shape[2:])
        neck = zip(self.student_taps["neck"], self.teacher_taps["neck"]) if "key_feature" in self.active else ()
        for s_name, t_name in neck:  # key-feature adapters only where that loss is on (others share the taps)
            self.connectors.ensure(s_name, student_taps[s_name].shape[1], teacher_taps[t_name].shape[1],
                                   student_taps[s_name].device)
        for name, connectors in self.baseline_connectors.items():
            group = tap_groups(self.cfg, name)[0]
            for s_name, t_name in zip(self.student_taps[group], self.teacher_taps[group]):
                connectors.ensure(s_name, student_taps[s_name].shape[1], teacher_taps[t_name].shape[1],
                                  student_taps[s_name].device)
                if name == "fgd":
                    self.fgd.ensure(s_name, teacher_taps[t_name].shape[1], student_taps[s_name].device)
        for point in self.cfg["fused"]["points"] if self.hybrid is not None else ():
            for s_name, t_name in zip(self.student_taps[point], self.teacher_taps[point]):
                self.hybrid.connectors.ensure(s_name, student_taps[s_name].shape[1], teacher_taps[t_name].shape[1],
                                              student_taps[s_name].device)
            self.hybrid.check_reentry(sample_input, point, [teacher_taps[n] for n in self.teacher_taps[point]])
        self._reentry_checked = True

    def _same_architecture_taps(self, group: str) -> set[str]:
        """Student taps of ``group`` computed by the same architecture as their teacher tap (adapter: auto may
        use the identity there)."""
        teacher, student = dict(self.teacher.named_modules()), dict(self.student.named_modules())
        same = set()
        for s, t in zip(self.student_specs.get(group, []), self.teacher_specs.get(group, [])):
            if (s.index, s.input, s.call, s.layout) == (t.index, t.input, t.call, t.layout) and architecture(
                    self.student, resolve_module(student, s.module)) == architecture(
                    self.teacher, resolve_module(teacher, t.module)):
                same.add(s.label)
        return same

    @staticmethod
    def _flat(taps: dict[str, list[str]]) -> list[str]:
        return list(dict.fromkeys(n for v in taps.values() for n in v))

    def _run_teacher(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        teacher = self.teacher
        if next(teacher.parameters(), images).device != images.device:
            teacher.to(images.device)
        teacher.eval()
        self.teacher_recorder.armed = True
        try:
            with torch.no_grad():
                teacher(images)
        finally:
            self.teacher_recorder.armed = False
        return self.teacher_recorder.take(self._flat(self.teacher_taps))

    def _check_shapes(self, student: dict, teacher: dict, batch: int, image_size) -> None:
        """Feature taps: (B, C, H, W) on a shared grid; head taps are checked by their decoder (_decode_head).
        A 4-D tap of any group whose grid shows it is not in its declared layout is an error first."""
        head_groups = tap_groups(self.cfg, "pred_diff") if {*HEAD_LOSSES, "fused"} & set(self.active) else ()
        for group, s_specs in self.student_specs.items():
            for role, spec in [("student", s) for s in s_specs] + [("teacher", t) for t in self.teacher_specs[group]]:
                problem = layout_error(role, spec, (student if role == "student" else teacher)[spec.label],
                                       tuple(image_size))
                if problem:
                    raise InputError(problem)
        for group, s_names in self.student_taps.items():
            for s_name, t_name in zip(s_names, self.teacher_taps[group]):
                s, t = student[s_name], teacher[t_name]
                if s.dim() and s.shape[0] != batch:
                    raise InputError(f"student tap '{s_name}': batch {s.shape[0]} but kd() got {batch} images; "
                                     "call kd() with the images of the student's last training forward")
                if group in head_groups:
                    continue
                if s.dim() != 4 or t.dim() != 4:
                    raise InputError(f"tap '{s_name}'/'{t_name}': expected (B, C, H, W) outputs, got student "
                                     f"{tuple(s.shape)} and teacher {tuple(t.shape)}")
                if s.shape[2:] != t.shape[2:]:
                    raise InputError(f"tap '{s_name}' (student {tuple(s.shape[2:])}) and '{t_name}' (teacher "
                                     f"{tuple(t.shape[2:])}): spatial sizes differ (different strides?); "
                                     "teacher and student taps must share the grid")

    def _decode_head(self, student: dict, teacher: dict, image_size) -> tuple[Decoded, Decoded]:
        """Teacher and student head taps (group -> levels) decoded by the configured family, checked alike."""
        groups = tap_groups(self.cfg, "pred_diff")
        decoded = []
        for role, taps, names in (("teacher", teacher, self.teacher_taps), ("student", student, self.student_taps)):
            try:
                decoded.append(self.decoder.decode(taps, {g: names[g] for g in groups}, tuple(image_size)))
            except InputError as exc:
                raise InputError(f"{role} {exc}") from None
        check_pair(*decoded, self.decoder.family)
        return decoded[0], decoded[1]

    def section(self, name: str) -> dict:
        """The config section of a loss: ``losses.NAME``, or the ``fused`` section."""
        return self.cfg["fused"] if name == "fused" else self.cfg["losses"][name]

    def needs_teacher(self, epoch: float | None) -> bool:
        """Whether any loss is on at ``epoch`` (else kd() runs no teacher forward)."""
        return any(schedule_factor(self.section(n), epoch) for n in self.active)

    def run_teacher(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """One teacher forward's taps, to share between the KDHooks of several students (``teacher_taps=``)."""
        return self._run_teacher(images)

    def forward(self, images: torch.Tensor, targets: torch.Tensor, epoch: float | None = None,
                teacher_taps: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """KD loss for the student's last training forward on ``images`` (targets (M, 7), see ARCHITECTURE);
        ``teacher_taps`` from :meth:`run_teacher` on the same images skips the teacher forward."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise InputError("kd(images, targets): images must be a (B, 3, H, W) tensor")
        student = self.student_recorder.take(self._flat(self.student_taps))
        targets = check_targets(targets, images.shape[0]).to(images.device)
        factors = {n: schedule_factor(self.section(n), epoch) for n in self.active}
        if not any(factors.values()):
            zero = images.new_zeros((), dtype=torch.float32)
            return self._with_idle_adapters(zero, factors), {n: zero for n in self.active}
        teacher = self._run_teacher(images) if teacher_taps is None else teacher_taps
        self._check_shapes(student, teacher, images.shape[0], images.shape[2:])
        if self.hybrid is not None and not self._reentry_checked:  # no dry run: else a dead fuse point gives 0.0
            for point in self.cfg["fused"]["points"]:
                self.hybrid.check_reentry(images, point, [teacher[n] for n in self.teacher_taps[point]])
            self._reentry_checked = True
        parts = {}
        with torch.autocast(device_type=images.device.type, enabled=False):
            for name in self.active:
                if factors[name] == 0:
                    parts[name] = images.new_zeros((), dtype=torch.float32)
                    continue
                groups = tap_groups(self.cfg, name)
                s_taps = {g: [student[n].float() for n in self.student_taps[g]] for g in groups}
                t_taps = {g: [teacher[n].float() for n in self.teacher_taps[g]] for g in groups}
                parts[name] = factors[name] * self.section(name)["weight"] * self._loss(
                    name, s_taps, t_taps, targets, images)
        total = self._with_idle_adapters(torch.stack(list(parts.values())).sum(), factors)
        return total, {n: v.detach() for n, v in parts.items()}

    def _with_idle_adapters(self, total: torch.Tensor, factors: dict[str, float]) -> torch.Tensor:
        """Add 0 * adapters so they stay in the graph while their loss is scheduled off (DDP needs every
        registered parameter to receive a gradient each step)."""
        idle = [m for name, m in (("key_feature", self.connectors), ("fused", self.hybrid), ("fgd", self.fgd),
                                  *self.baseline_connectors.items())
                if m is not None and factors.get(name, 0) == 0]
        params = [p for m in idle for p in m.parameters()]
        return total + 0.0 * sum(p.sum() for p in params) if params else total

    def _loss(self, name: str, student: dict, teacher: dict, targets: torch.Tensor,
              images: torch.Tensor) -> torch.Tensor:
        image_size = images.shape[2:]
        if name == "fused":
            return self._fused_loss(student, teacher, targets, images)
        cfg = self._loss_keys(name)
        if name == "erc":
            return erc_loss(teacher["embedding"][0], student["embedding"][0], targets, **cfg)
        if name == "key_feature":
            return key_feature_loss(teacher["neck"], self._adapted(self.connectors, "neck", student, teacher),
                                    targets, **cfg)
        if name in ADAPTED_BASELINES:
            group = tap_groups(self.cfg, name)[0]
            adapted = self._adapted(self.baseline_connectors[name], group, student, teacher)
            if name == "fgd":
                return self.fgd(self.student_taps["neck"], teacher["neck"], adapted, targets, **cfg)
            if name == "embedding":
                return embedding_loss(teacher["embedding"][0], adapted[0], targets, **cfg)
            return (fitnet_loss if name == "fitnet" else cwd_loss)(teacher["neck"], adapted, **cfg)
        decoded = self._decode_head(student, teacher, image_size)
        if name == "logit":
            return logit_loss(*decoded, **cfg)
        loss, _ = pred_diff_loss(*decoded, **cfg)
        return loss

    def _adapted(self, connectors: LazyConnectors, group: str, student: dict, teacher: dict) -> list[torch.Tensor]:
        """The student's taps of ``group`` mapped to the teacher's channels by ``connectors``."""
        return [connectors(s_name, s, t.shape[1])
                for s_name, s, t in zip(self.student_taps[group], student[group], teacher[group])]

    def _loss_keys(self, name: str) -> dict:
        return {k: v for k, v in self.cfg["losses"][name].items() if k not in SCHEDULE_KEYS}

    def _fused_loss(self, student: dict, teacher: dict, targets: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Sum over fuse points of the hybrid's output gap to the teacher (see :mod:`mot_kd.kd.fused`)."""
        names = {g: self.teacher_taps[g] for g in tap_groups(self.cfg, "pred_diff")}

        def decode(taps: dict) -> Decoded:
            return self.decoder.decode(taps, names, tuple(images.shape[2:]))

        return torch.stack([self.hybrid.loss(images, p, student[p], teacher[p], teacher, decode, targets,
                                             self.cfg["fused"], self._loss_keys("pred_diff"), self._loss_keys("erc"))
                            for p in self.cfg["fused"]["points"]]).sum()

    def remove(self) -> None:
        """Remove all hooks and give the teacher back its training mode, requires_grad flags and device."""
        self.student_recorder.remove()
        self.teacher_recorder.remove()
        if self.hybrid is not None:
            self.hybrid.remove()
        modes, flags, device = self._teacher_state
        teacher = self.teacher
        for name, param in teacher.named_parameters():
            param.requires_grad_(flags.get(name, param.requires_grad))
        for module, training in modes:
            module.training = training
        if next(teacher.parameters(), torch.empty(0, device=device)).device != device:
            teacher.to(device)
