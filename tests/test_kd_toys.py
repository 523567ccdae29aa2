"""Small foreign detector-embedders for the KD tests (not mot_kd's model): only the module names matter."""
from __future__ import annotations

import torch
from torch import nn


def _conv(c1: int, c2: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c1, c2, 3, stride, 1, bias=False), nn.BatchNorm2d(c2), nn.SiLU())


class ToyTracker(nn.Module):
    """Taps under mot_kd's default names: neck.p3/p4/p5, embedding, head.box.pN, head.cls.pN."""

    def __init__(self, width: int = 8, id_dim: int = 16, nc: int = 1, reg_max: int = 4):
        super().__init__()
        self.stem = nn.Sequential(_conv(3, width, 2), _conv(width, width, 2), _conv(width, width, 2))
        self.neck = nn.ModuleDict({"p3": _conv(width, width), "p4": _conv(width, 2 * width, 2),
                                   "p5": _conv(2 * width, 2 * width, 2)})
        chans = {"p3": width, "p4": 2 * width, "p5": 2 * width}
        self.head = nn.ModuleDict({
            "box": nn.ModuleDict({k: nn.Conv2d(c, 4 * reg_max, 1) for k, c in chans.items()}),
            "cls": nn.ModuleDict({k: nn.Conv2d(c, nc, 1) for k, c in chans.items()}),
        })
        self.embedding = nn.Conv2d(width, id_dim, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p3 = self.neck["p3"](self.stem(x))
        p4 = self.neck["p4"](p3)
        p5 = self.neck["p5"](p4)
        feats = {"p3": p3, "p4": p4, "p5": p5}
        return {"box": [self.head["box"][k](f) for k, f in feats.items()],
                "cls": [self.head["cls"][k](f) for k, f in feats.items()],
                "embedding": self.embedding(p3)}


class OtherNames(nn.Module):
    """A second foreign layout: FairMOT-like names (fpn.*, reid, det.reg*/det.hm*) on a single level list."""

    def __init__(self, width: int = 8, id_dim: int = 16, nc: int = 1, reg_max: int = 4):
        super().__init__()
        self.backbone = nn.Sequential(_conv(3, width, 2), _conv(width, width, 2), _conv(width, width, 2))
        self.fpn = nn.ModuleList([_conv(width, width), _conv(width, width, 2)])
        self.reid = nn.Conv2d(width, id_dim, 1)
        self.det = nn.ModuleDict({"reg0": nn.Conv2d(width, 4 * reg_max, 1), "reg1": nn.Conv2d(width, 4 * reg_max, 1),
                                  "hm0": nn.Conv2d(width, nc, 1), "hm1": nn.Conv2d(width, nc, 1)})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = self.fpn[0](self.backbone(x))
        b = self.fpn[1](a)
        return [self.reid(a), self.det["reg0"](a), self.det["reg1"](b), self.det["hm0"](a), self.det["hm1"](b)]


OTHER_TAPS = {"taps": {"neck": ["fpn.0", "fpn.1"], "embedding": "reid", "box": ["det.reg0", "det.reg1"],
                       "cls": ["det.hm0", "det.hm1"]}, "head": {"reg_max": 4}}
TOY_CFG = {"head": {"reg_max": 4}}


def make_targets(batch: int = 2, per_image: int = 3, seed: int = 0) -> torch.Tensor:
    """Random (M, 7) targets [batch_idx, cls, identity, cx, cy, w, h], one unknown identity."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in range(batch):
        for k in range(per_image):
            cx, cy = 0.15 + 0.7 * torch.rand(2, generator=g)
            w, h = 0.05 + 0.2 * torch.rand(2, generator=g)
            rows.append([b, 0, b * per_image + k, cx, cy, w, h])
    targets = torch.tensor(rows, dtype=torch.float32)
    targets[-1, 2] = -1
    return targets


def test_toys_expose_the_documented_taps():
    names = dict(ToyTracker().named_modules())
    assert {"neck.p3", "neck.p4", "neck.p5", "embedding", "head.box.p3", "head.cls.p5"} <= set(names)
    out = ToyTracker(reg_max=4)(torch.zeros(1, 3, 64, 96))
    assert [tuple(x.shape[2:]) for x in out["box"]] == [(8, 12), (4, 6), (2, 3)] and out["box"][0].shape[1] == 16
    assert set(OTHER_TAPS["taps"]["neck"]) <= set(dict(OtherNames().named_modules()))
    targets = make_targets(batch=2, per_image=3)
    assert targets.shape == (6, 7) and targets[-1, 2] == -1 and ((targets[:, 3:] > 0) & (targets[:, 3:] < 1)).all()
