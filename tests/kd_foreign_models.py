"""Small, faithful stand-ins for three public MOT codebases (not written for mot-kd): the module names, tensor
layouts, output structures and losses that distillation meets there, at toy widths.

* CSTrack (SOTS): YOLOv5 layers in ``model`` (nn.Sequential run by ``from`` indices), neck P3/P4/P5 at
  ``model.17/20/23``, CCN at 24-26 returning two tensors each, SAAN at 27 returning a channels-last
  embedding, anchor ``Detect`` at 28 (per-level 1x1 convs ``m.i``; training output ``[levels, k]`` with
  levels (B, 3, H, W, 6)); its JDELoss on (M, 6) ``[image, id, cx, cy, w, h]`` targets, times batch size.
* JDE (Towards-Realtime-MOT): darknet ``module_list`` with YOLOv3-1088-style indices; per level a 24-channel
  conv (4 anchors x (4 deltas + 2 conf)), an embedding conv, a route concatenating both and a ``YOLOLayer``
  that computes the loss inside the model's forward from padded (B, N, 6) targets and their lengths.
* FairMOT: DLA-style ``base``/``dla_up``/``ida_up`` (ida_up rewrites its input list in place) and heads as
  attributes ``hm``/``wh``/``reg``/``id`` at stride 4, forward returning ``[dict]``; MotLoss calls
  ``sigmoid_()`` in place on the heatmap, then focal/L1/ID losses with uncertainty weighting.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.utils.metrics import bbox_iou

CSTRACK_ANCHORS = [[8, 24, 11, 34, 16, 48], [32, 96, 45, 135, 64, 192], [128, 384, 180, 540, 256, 640]]
JDE_ANCHORS = [[6, 16, 8, 23, 11, 32, 16, 45], [21, 64, 30, 90, 43, 128, 60, 180],
               [85, 255, 120, 360, 170, 420, 340, 320]]


def conv(c1: int, c2: int, s: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c1, c2, k, s, k // 2, bias=False), nn.BatchNorm2d(c2), nn.LeakyReLU(0.1))


# ---------------------------------------------------------------- CSTrack
class Concat(nn.Module):
    def forward(self, x):
        return torch.cat(x, 1)


class CCN(nn.Module):
    """Two attention branches, returned as a list [detection branch, identity branch]."""

    def __init__(self, c: int):
        super().__init__()
        self.a1, self.a2 = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        return [self.a1(x).sigmoid() * x + x, self.a2(x).sigmoid() * x + x]


class SAAN(nn.Module):
    """Identity branches of the three levels, brought to stride 8, fused; output permuted to (B, H, W, C)."""

    def __init__(self, id_dim: int, ch: tuple[int, int, int]):
        super().__init__()
        self.proj = nn.ModuleList([nn.Conv2d(c, 8, 3, 1, 1) for c in ch])
        self.node = nn.Conv2d(24, id_dim, 1)

    def forward(self, layers):
        for i, scale in enumerate((1, 2, 4)):
            layers[i] = F.interpolate(self.proj[i](layers[i][1]), scale_factor=scale) if scale > 1 else \
                self.proj[i](layers[i][1])
        return self.node(torch.cat(layers, 1)).permute(0, 2, 3, 1).contiguous()


class Detect(nn.Module):
    def __init__(self, nc: int, anchors: list, ch: tuple[int, int, int]):
        super().__init__()
        self.nc, self.no, self.nl, self.na = nc, nc + 5, len(anchors), len(anchors[0]) // 2
        self.register_buffer("anchor_grid", torch.tensor(anchors).float().view(self.nl, 1, -1, 1, 1, 2))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.k = nn.Parameter(torch.ones(1) * 10)
        self.stride = torch.tensor([8.0, 16.0, 32.0])
        for mi, s in zip(self.m, self.stride):  # YOLOv5's bias init: few objects per image
            with torch.no_grad():
                mi.bias.view(self.na, -1)[:, 4] += math.log(8 / (640 / float(s)) ** 2)

    def forward(self, x):
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i][0])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if not self.training:
                yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
                grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
                y = x[i].sigmoid()
                xy = (y[..., 0:2] * 2 - 0.5 + grid) * self.stride[i]
                wh = (y[..., 2:4] * 2) ** 2 * self.anchor_grid[i]
                z.append(torch.cat((xy, wh, y[..., 4:]), -1).view(bs, -1, self.no))
        return [x, self.k] if self.training else (torch.cat(z, 1), [x, self.k])


class CSTrackLike(nn.Module):
    def __init__(self, width: int = 4, id_dim: int = 16, nc: int = 1):
        super().__init__()
        w = width
        spec = [(-1, conv(3, w, 2)), (-1, conv(w, w, 2)), (-1, conv(w, w)), (-1, conv(w, 2 * w, 2)),
                (-1, conv(2 * w, 2 * w)), (-1, conv(2 * w, 4 * w, 2)), (-1, conv(4 * w, 4 * w)),
                (-1, conv(4 * w, 8 * w, 2)), (-1, conv(8 * w, 8 * w)), (-1, conv(8 * w, 8 * w)),
                (-1, conv(8 * w, 4 * w, k=1)), (-1, nn.Upsample(None, 2, "nearest")), ([-1, 6], Concat()),
                (-1, conv(8 * w, 4 * w)), (-1, conv(4 * w, 2 * w, k=1)), (-1, nn.Upsample(None, 2, "nearest")),
                ([-1, 4], Concat()), (-1, conv(4 * w, 2 * w)),  # 17: P3/8
                (-1, conv(2 * w, 2 * w, 2)), ([-1, 14], Concat()), (-1, conv(4 * w, 4 * w)),  # 20: P4/16
                (-1, conv(4 * w, 4 * w, 2)), ([-1, 10], Concat()), (-1, conv(8 * w, 8 * w)),  # 23: P5/32
                (17, CCN(2 * w)), (20, CCN(4 * w)), (23, CCN(8 * w)),
                ([24, 25, 26], SAAN(id_dim, (2 * w, 4 * w, 8 * w))),
                ([24, 25, 26], Detect(nc, CSTRACK_ANCHORS, (2 * w, 4 * w, 8 * w)))]
        for i, (f, m) in enumerate(spec):
            m.f, m.i = f, i
        self.model = nn.Sequential(*[m for _, m in spec])
        self.nc, self.out = nc, (27, 28)

    def forward(self, x):
        y, output = [], []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            if m.i in self.out:
                output.append(x)
            y.append(x)
        return output  # [embedding (B, H/8, W/8, id_dim), [levels, k]] in training


class CSTrackLoss(nn.Module):
    """YOLOv5 objectness + CIoU box loss on matched anchors, ID cross-entropy (id 0 ignored), times batch size."""

    def __init__(self, num_ids: int, id_dim: int):
        super().__init__()
        self.classifier = nn.Linear(id_dim, num_ids)

    def forward(self, output, targets, model):
        embedding, levels = output[0], output[1][0]
        det = model.model[-1]
        lbox, lobj = torch.zeros(()), torch.zeros(())
        for i, p in enumerate(levels):
            h, w = p.shape[2:4]
            tobj = torch.zeros_like(p[..., 4])
            anchors = det.anchor_grid[i].view(-1, 2) / det.stride[i]
            gxy, gwh = targets[:, 2:4] * torch.tensor([w, h]), targets[:, 4:6] * torch.tensor([w, h])
            ratio = gwh[None] / anchors[:, None]
            a, t = (torch.max(ratio, 1 / ratio).max(2)[0] < 4.0).nonzero(as_tuple=True)
            if len(t):
                b, gij = targets[t, 0].long(), gxy[t].long()
                ps = p[b, a, gij[:, 1].clamp(0, h - 1), gij[:, 0].clamp(0, w - 1)]
                pbox = torch.cat((ps[:, :2].sigmoid() * 2 - 0.5, (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors[a]), 1)
                iou = bbox_iou(pbox, torch.cat((gxy[t] - gij, gwh[t]), 1), CIoU=True).squeeze(-1)
                lbox = lbox + (1 - iou).mean()
                tobj[b, a, gij[:, 1].clamp(0, h - 1), gij[:, 0].clamp(0, w - 1)] = iou.detach().clamp(0)
            lobj = lobj + F.binary_cross_entropy_with_logits(p[..., 4], tobj) * (4.0, 1.0, 0.4)[i]
        h, w = embedding.shape[1:3]
        cells = (targets[:, 3] * h).long().clamp(0, h - 1), (targets[:, 2] * w).long().clamp(0, w - 1)
        logits = self.classifier(F.normalize(embedding[targets[:, 0].long(), cells[0], cells[1]]))
        lid = F.cross_entropy(logits, targets[:, 1].long(), ignore_index=0)
        loss = 0.05 * lbox + lobj + 0.02 * lid
        return loss * levels[0].shape[0], torch.stack((lbox, lid, lobj, loss)).detach()


# ---------------------------------------------------------------- JDE
class EmptyLayer(nn.Module):
    def forward(self, x):
        return x


class YOLOLayer(nn.Module):
    """JDE's layer: (B, 24 + emb, H, W) in; in training the uncertainty-weighted loss, else decoded boxes."""

    def __init__(self, anchors: list, num_ids: int, emb_dim: int):
        super().__init__()
        self.anchors = torch.tensor(anchors).float().view(-1, 2)
        self.na, self.emb_dim = len(self.anchors), emb_dim
        self.s_c, self.s_r, self.s_id = (nn.Parameter(v * torch.ones(1)) for v in (-4.15, -4.85, -2.3))

    def forward(self, p_cat, img_size, targets=None, classifier=None):
        p, emb = p_cat[:, :24], p_cat[:, 24:]
        nb, h, w = p.shape[0], p.shape[-2], p.shape[-1]
        stride = img_size[0] / w
        p = p.view(nb, self.na, 6, h, w).permute(0, 1, 3, 4, 2).contiguous()
        anchor = (self.anchors / stride).view(1, self.na, 1, 1, 2)
        yv, xv = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        cell = torch.stack((xv, yv), -1).float()
        if targets is None:
            xy, wh = (cell + p[..., :2] * anchor) * stride, anchor * p[..., 2:4].exp() * stride
            conf = p[..., 4:6].softmax(-1)[..., 1:]
            return torch.cat((xy, wh, conf), -1).view(nb, -1, 5)
        tconf = torch.zeros(nb, self.na, h, w, dtype=torch.long)
        tbox, tid = torch.zeros(nb, self.na, h, w, 4), torch.full((nb, self.na, h, w), -1)
        for b, t in enumerate(targets):
            if len(t) == 0:
                continue
            gxy, gwh = t[:, 2:4] * torch.tensor([w, h]), t[:, 4:6] * torch.tensor([w, h])
            inter = torch.min(gwh[None], anchor.view(-1, 1, 2)).prod(2)
            a = (inter / (gwh.prod(1)[None] + anchor.view(-1, 1, 2).prod(2) - inter)).argmax(0)
            gi, gj = gxy[:, 0].long().clamp(0, w - 1), gxy[:, 1].long().clamp(0, h - 1)
            tconf[b, a, gj, gi] = 1
            aw = anchor.view(-1, 2)[a]
            tbox[b, a, gj, gi] = torch.cat(((gxy - torch.stack((gi, gj), 1)) / aw, (gwh / aw).log()), 1)
            tid[b, a, gj, gi] = t[:, 1].long()
        mask = tconf > 0
        lbox = F.smooth_l1_loss(p[..., :4][mask], tbox[mask]) if mask.any() else p.sum() * 0
        lconf = F.cross_entropy(p[..., 4:6].permute(0, 4, 1, 2, 3), tconf)
        emb_mask = mask.any(1)
        ids = tid.max(1)[0][emb_mask]
        lid = p.sum() * 0
        if emb_mask.sum() > 1:
            emb = F.normalize(emb.permute(0, 2, 3, 1)[emb_mask])
            lid = F.cross_entropy(classifier(emb), ids, ignore_index=-1)
        loss = torch.exp(-self.s_r) * lbox + torch.exp(-self.s_c) * lconf + torch.exp(-self.s_id) * lid
        return 0.5 * (loss + self.s_r + self.s_c + self.s_id)


def _jde_defs(w: int) -> list[tuple]:
    """(type, args) per layer, with the module indices of JDE's yolov3 cfg (darknet-53, three JDE heads)."""
    defs = [("conv", (3, w, 1, 3))]
    c = w
    for blocks in (1, 2, 8, 8, 4):
        defs.append(("conv", (c, 2 * c, 2, 3)))
        c *= 2
        for _ in range(blocks):
            defs += [("conv", (c, c // 2, 1, 1)), ("conv", (c // 2, c, 1, 3)), ("shortcut", -3)]
    c_in = c  # 75 layers so far; the P4 and P3 features the heads route from are layers 61 and 36
    for level, anchors in enumerate(reversed(JDE_ANCHORS)):  # stride 32 first, as in the cfg
        mid = 16 * w >> level
        if level:
            defs += [("route", (-7,)), ("conv", (2 * mid, mid, 1, 1)), ("upsample", 2),
                     ("route", (-1, (61, 36)[level - 1]))]
            c_in = mid + (16 * w, 8 * w)[level - 1]
        for j in range(6):
            defs.append(("conv", (c_in, mid, 1, 1)) if j % 2 == 0 else ("conv", (mid, 2 * mid, 1, 3)))
            c_in = mid if j % 2 == 0 else 2 * mid
        defs += [("det", (2 * mid, 24)), ("route", (-3,)), ("emb", (mid, 16)), ("route", (-3, -1)), ("yolo", anchors)]
    return defs


class JDELike(nn.Module):
    def __init__(self, width: int = 2, num_ids: int = 20, img_size: tuple[int, int] = (96, 64)):
        super().__init__()
        self.module_defs, self.module_list, self.img_size = _jde_defs(width), nn.ModuleList(), img_size
        for i, (kind, args) in enumerate(self.module_defs):
            seq = nn.Sequential()
            if kind == "conv":
                c1, c2, s, k = args
                seq.add_module(f"conv_{i}", nn.Conv2d(c1, c2, k, s, k // 2, bias=False))
                seq.add_module(f"batch_norm_{i}", nn.BatchNorm2d(c2))
                seq.add_module(f"leaky_{i}", nn.LeakyReLU(0.1))
            elif kind in ("det", "emb"):
                seq.add_module(f"conv_{i}", nn.Conv2d(args[0], args[1], 1 if kind == "det" else 3, 1,
                                                      0 if kind == "det" else 1))
            elif kind == "upsample":
                seq.add_module(f"upsample_{i}", nn.Upsample(scale_factor=args))
            elif kind == "yolo":
                seq.add_module(f"yolo_{i}", YOLOLayer(args, num_ids, 16))
            else:
                seq.add_module(f"{kind}_{i}", EmptyLayer())
            self.module_list.append(seq)
        self.classifier = nn.Linear(16, num_ids)

    def forward(self, x, targets=None, targets_len=None):
        layer_outputs, output = [], []
        for (kind, args), module in zip(self.module_defs, self.module_list):
            if kind == "route":
                x = torch.cat([layer_outputs[j] for j in args], 1)
            elif kind == "shortcut":
                x = layer_outputs[-1] + layer_outputs[args]
            elif kind == "yolo":
                if targets is not None:
                    per_image = [targets[b][:int(n)] for b, n in enumerate(targets_len.view(-1))]
                    x = module[0](x, self.img_size, per_image, self.classifier)
                else:
                    x = module[0](x, self.img_size)
                output.append(x)
            else:
                x = module(x)
            layer_outputs.append(x)
        return sum(output) if targets is not None else torch.cat(output, 1)


# ---------------------------------------------------------------- FairMOT
class DLAUp(nn.Module):
    """Pyramid levels at strides 4, 8, 16, fused top-down; returns the list (high resolution first)."""

    def __init__(self, w: int):
        super().__init__()
        self.lat = nn.ModuleList([conv(w, w, k=1), conv(2 * w, w, k=1), conv(4 * w, w, k=1)])

    def forward(self, layers):
        out = [lat(x) for lat, x in zip(self.lat, layers)]
        for i in (1, 0):
            out[i] = out[i] + F.interpolate(out[i + 1], scale_factor=2)
        return out


class IDAUp(nn.Module):
    """Rewrites its input list in place, as DLA's IDAUp does: layers[-1] becomes the fused stride-4 map."""

    def __init__(self, w: int):
        super().__init__()
        self.node = conv(w, w)

    def forward(self, layers, start, end):
        for i in range(start + 1, end):
            layers[i] = self.node(F.interpolate(layers[i], size=layers[start].shape[2:]) + layers[i - 1])


class FairMOTLike(nn.Module):
    def __init__(self, width: int = 8, id_dim: int = 16, ltrb: bool = True, head_conv: int = 16):
        super().__init__()
        w = width
        self.base = nn.ModuleList([nn.Sequential(conv(3, w, 2), conv(w, w, 2)), conv(w, 2 * w, 2),
                                   conv(2 * w, 4 * w, 2)])
        self.dla_up, self.ida_up = DLAUp(w), IDAUp(w)
        self.heads = {"hm": 1, "wh": 4 if ltrb else 2, "reg": 2, "id": id_dim}
        for head, classes in self.heads.items():
            fc = nn.Sequential(nn.Conv2d(w, head_conv, 3, padding=1), nn.ReLU(inplace=True),
                               nn.Conv2d(head_conv, classes, 1))
            if head == "hm":
                fc[-1].bias.data.fill_(-2.19)
            self.__setattr__(head, fc)

    def forward(self, x):
        feats = []
        for stage in self.base:
            x = stage(x)
            feats.append(x)
        x = self.dla_up(feats)
        y = [x[i].clone() for i in range(3)]
        self.ida_up(y, 0, len(y))
        return [{head: self.__getattr__(head)(y[-1]) for head in self.heads}]


class MotLoss(nn.Module):
    """FairMOT's criterion: in-place sigmoid on the heatmap, focal + L1 + ID, uncertainty weighting."""

    def __init__(self, num_ids: int, id_dim: int):
        super().__init__()
        self.classifier = nn.Linear(id_dim, num_ids)
        self.s_det, self.s_id = nn.Parameter(-1.85 * torch.ones(1)), nn.Parameter(-1.05 * torch.ones(1))

    @staticmethod
    def _gather(feat, ind):
        return feat.flatten(2).transpose(1, 2).gather(1, ind[..., None].expand(-1, -1, feat.shape[1]))

    def forward(self, outputs, batch):
        output = outputs[0]
        output["hm"] = torch.clamp(output["hm"].sigmoid_(), min=1e-4, max=1 - 1e-4)  # FairMOT's _sigmoid
        pred, gt = output["hm"], batch["hm"]
        pos = gt.eq(1).float()
        focal = -(torch.log(pred) * (1 - pred) ** 2 * pos + torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4
                  * (1 - pos)).sum() / pos.sum().clamp(min=1)
        mask = batch["reg_mask"].float()[..., None]
        l1 = [(self._gather(output[k], batch["ind"]) * mask - batch[k] * mask).abs().sum() / (mask.sum() * 2 + 1e-4)
              for k in ("wh", "reg")]
        keep = batch["reg_mask"] > 0
        emb = F.normalize(self._gather(output["id"], batch["ind"])[keep])
        lid = F.cross_entropy(self.classifier(emb), batch["ids"][keep], ignore_index=-1)
        det = focal + 0.1 * l1[0] + l1[1]
        loss = 0.5 * (torch.exp(-self.s_det) * det + torch.exp(-self.s_id) * lid + (self.s_det + self.s_id))
        return loss, {"loss": loss.detach(), "hm_loss": focal.detach(), "id_loss": lid.detach()}
