"""The D and G objectives of one training step (docs/model.md#training-step, docs/model.md#losses, docs/model.md#ablation-ladder): each returns (total, named terms).

Which terms exist follows the ablation toggles (step (a) = StarGAN v2 exactly); a term whose weight is 0
is not computed and reported as exactly 0. Terms are unweighted in the dict; totals are weighted (Eq. 8).
Term names are those of the logs: ``d/adv_real``, ``g/cyc``, ... (the loop adds the guidance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import nn

from dtgan.config.loss import LossConfig
from dtgan.config.model import Toggles
from dtgan.losses.adversarial import adversarial_loss, r1_penalty
from dtgan.losses.classification import bg_classification_loss, fg_classification_loss
from dtgan.losses.diversity import diversity_loss_mixed, diversity_loss_pair
from dtgan.losses.reconstruction import (
    content_consistency_loss,
    content_reconstruction_loss,
    cycle_loss,
    self_reconstruction_loss,
    style_reconstruction_loss,
)

Guidance = Literal["latent", "reference"]
Terms = dict[str, torch.Tensor]


class NetsLike(Protocol):
    """The four networks, as ``dtgan.models.Nets`` provides them."""

    generator: nn.Module
    mapping_network: nn.Module
    style_encoder: nn.Module
    discriminator: nn.Module


@dataclass(frozen=True)
class Batch:
    """The inputs of one iteration, already on the device (StarGAN's InputFetcher output)."""

    x_real: torch.Tensor  # (N, 3, H, W) sources in [-1, 1]
    y_org: torch.Tensor  # (N,) source defect (FG) indices
    p_org: torch.Tensor  # (N,) source product (BG) indices
    x_ref: torch.Tensor  # (N, 3, H, W) references of domain y_trg
    x_ref2: torch.Tensor  # (N, 3, H, W) second references of domain y_trg
    y_trg: torch.Tensor  # (N,) target defect indices
    z_trg: torch.Tensor  # (N, latent_dim)
    z_trg2: torch.Tensor  # (N, latent_dim)


@dataclass(frozen=True)
class Sources:
    """G's encoding h of the sources x_real and its BG decoder's share (None with a unified decoder), made
    without gradients: the two D steps of an iteration make their fakes from the same x_real with the same G."""

    h: torch.Tensor
    background: torch.Tensor | None


@torch.no_grad()
def encode_sources(generator: nn.Module, x_real: torch.Tensor) -> Sources:
    h = generator.encode(x_real)
    return Sources(h, generator.decode_background(h))


def content_consistency_enabled(loss_cfg: LossConfig, toggles: Toggles) -> bool:
    """docs/model.md#a8: L_con enters with style_content (b) or with anchor_normal (f)."""
    return bool(getattr(toggles, loss_cfg.content_consistency_with))


def target_codes(nets: NetsLike, batch: Batch, guidance: Guidance, which: int):
    """(s~_i, c~_i) for i = ``which``: M(z_i, y~) or E(x_ref_i, y~); c is None without style_content."""
    if guidance == "latent":
        z = batch.z_trg if which == 1 else batch.z_trg2
        return nets.mapping_network(z, batch.y_trg)
    x_ref = batch.x_ref if which == 1 else batch.x_ref2
    return nets.style_encoder(x_ref, batch.y_trg)


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(())


def eager_module(module: nn.Module) -> nn.Module:
    """The eager module behind a ``torch.compile`` wrapper (compiled graphs cannot be differentiated twice)."""
    inner = getattr(module, "_orig_mod", None)
    return inner if isinstance(inner, nn.Module) else module


def joint_pass(discriminator, x_real, y_real, x_fake, y_fake):
    """D on reals and fakes in one batch of 2N (D has no batch-coupled layer: each half equals its own pass)."""
    out = discriminator(torch.cat([x_real, x_fake.to(x_real.dtype)]), torch.cat([y_real, y_fake]))
    n = x_real.size(0)
    halves = [(None, None) if t is None else (t[:n], t[n:]) for t in out]
    return type(out)(*(h[0] for h in halves)), type(out)(*(h[1] for h in halves))


def discriminator_loss(
    nets: NetsLike,
    batch: Batch,
    guidance: Guidance,
    loss_cfg: LossConfig,
    toggles: Toggles,
    with_r1: bool = True,
    sources: Sources | None = None,
) -> tuple[torch.Tensor, Terms]:
    """D side of Eq. 8: adversarial real/fake + lambda_reg R1 + FG/BG CE on reals (docs/model.md#a3 acgan: also fakes).

    Lazy R1 (``loss.r1_every`` = k, StyleGAN2): the penalty enters only where ``with_r1``, weighted by
    lambda_reg * k, so that its expected gradient per step is the paper's; elsewhere there is no ``d/r1`` term,
    the real images need no gradient and D sees reals and fakes in one batch of 2N (:func:`joint_pass`, compilable;
    the same losses and gradients as two passes, and under bf16 autocast the real half runs in bf16 too: only the
    R1 steps' real pass is kept in fp32). The penalty is part of the
    D step's single update, so Adam's hyper-parameters need none of StyleGAN2's correction for an extra step.

    ``sources`` (:func:`encode_sources` of ``batch.x_real``) skips G's encoder and BG decoder in making the fake;
    the fake then equals G(x, s, c) within float tolerance (see ``Generator.decode_background``).
    """
    x_real = batch.x_real
    r1 = with_r1 and loss_cfg.lambda_reg > 0
    with torch.no_grad():  # the fake is a constant for D (docs/model.md#training-step, step 1)
        s_trg, c_trg = target_codes(nets, batch, guidance, 1)
        if sources is None:
            x_fake = nets.generator(batch.x_real, s_trg, c_trg)
        else:
            x_fake = nets.generator.decode(sources.h, s_trg, c_trg, background=sources.background)
    terms: Terms = {}
    if with_r1:  # the real pass apart, in fp32 under bf16 autocast (R1 is differentiated twice)
        if r1:
            x_real = x_real.detach().requires_grad_(True)
        real_discriminator = eager_module(nets.discriminator) if r1 else nets.discriminator
        with torch.autocast(x_real.device.type, enabled=False):
            out_real = real_discriminator(x_real, batch.y_org)
            terms["d/adv_real"] = adversarial_loss(out_real.logits, 1.0)
            terms["d/r1"] = r1_penalty(out_real.logits, x_real) if r1 else _zero(out_real.logits)
        out_fake = nets.discriminator(x_fake, batch.y_trg)
    else:  # a lazy-R1 step without the penalty: reals and fakes in one pass of D (bf16 both under autocast)
        out_real, out_fake = joint_pass(nets.discriminator, x_real, batch.y_org, x_fake, batch.y_trg)
        terms["d/adv_real"] = adversarial_loss(out_real.logits, 1.0)
    terms["d/adv_fake"] = adversarial_loss(out_fake.logits, 0.0)
    total = terms["d/adv_real"] + terms["d/adv_fake"]
    if "d/r1" in terms:
        total = total + (loss_cfg.lambda_reg * loss_cfg.r1_every) * terms["d/r1"]

    acgan = loss_cfg.classifier_losses == "acgan"
    heads = (
        (
            "fg",
            toggles.fg_classifier,
            loss_cfg.lambda_fg,
            fg_classification_loss,
            "fg_logits",
            batch.y_org,
            batch.y_trg,
        ),
        (
            "bg",
            toggles.bg_classifier,
            loss_cfg.lambda_bg,
            bg_classification_loss,
            "bg_logits",
            batch.p_org,
            batch.p_org,
        ),
    )
    for name, enabled, weight, loss_fn, attr, label_real, label_fake in heads:
        if not enabled:
            continue
        real_logits, fake_logits = getattr(out_real, attr), getattr(out_fake, attr)
        terms[f"d/{name}_cls"] = loss_fn(real_logits, label_real) if weight > 0 else _zero(real_logits)
        total = total + weight * terms[f"d/{name}_cls"]
        # docs/model.md#a3 alternative: D also learns the classes of fakes (target FG label, source product)
        if acgan:
            terms[f"d/{name}_cls_fake"] = (
                loss_fn(fake_logits, label_fake) if weight > 0 else _zero(fake_logits)
            )
            total = total + weight * terms[f"d/{name}_cls_fake"]
    terms["d/total"] = total
    return total, terms


def generator_loss(
    nets: NetsLike,
    batch: Batch,
    guidance: Guidance,
    loss_cfg: LossConfig,
    toggles: Toggles,
    ds_weight: float,
) -> tuple[torch.Tensor, Terms]:
    """G side of Eq. 8 for one guidance; ``ds_weight`` is the diversity weight at this step (``loss.lambda_ds``
    decayed by ``training.schedules.lambda_ds``), 0 once it has decayed.

    No network pass is repeated, and passes of one network whose inputs are all known at once share one batch:
    G's encoding of x and its BG decoding serve all four mixes of Eq. 3 and the self-reconstruction, decoded in
    one pass; with reference guidance E encodes x_ref, x_ref2 and x (its own codes) in one pass (M's two calls
    stay apart: its content noise keeps its order); the encoding of G_11 serves Eq. 4 and Eq. 5. The values
    equal the one-call-per-term reading within float tolerance.
    """
    generator = nets.generator
    mixed = toggles.style_content  # (b)+: content codes, 6-pair Eq. 3, content terms
    use_con = mixed and content_consistency_enabled(loss_cfg, toggles)
    need_cyc, need_con = loss_cfg.lambda_cyc > 0, use_con and loss_cfg.lambda_con > 0
    need_self = loss_cfg.lambda_self_rec > 0
    need_own = need_cyc or need_con or need_self
    two_codes = mixed and ds_weight > 0
    codes1, codes2, own = _style_codes(nets, batch, guidance, two_codes, need_own)
    s_trg, c_trg = codes1
    h_real = generator.encode(batch.x_real)  # (N, max_conv_dim, B, B), shared by all mixes
    background = generator.decode_background(h_real)  # (N, 3, H, W) with separate decoders, else None
    extra = [own] if need_self else []  # x with its own codes (Eq. self-rec), decoded with the fakes
    mixes = None  # G_12, G_21, G_22 of Eq. 3
    if two_codes:
        x_fake, mixes, decoded_extra = _decode_mixes(
            generator, h_real, background, codes1, codes2, loss_cfg, extra
        )
    else:
        x_fake, *decoded_extra = _decode_batched(generator, h_real, background, [codes1, *extra])  # G_11
    out_fake = nets.discriminator(x_fake, batch.y_trg)
    terms: Terms = {"g/adv": adversarial_loss(out_fake.logits, 1.0)}
    zero = _zero(terms["g/adv"])

    # Eq. 2: style (and content) of G_11 under the target domain.
    if loss_cfg.lambda_sty > 0:
        s_pred, c_pred = nets.style_encoder(x_fake, batch.y_trg)
        terms["g/sty"] = style_reconstruction_loss(s_pred, s_trg)
        if mixed:
            terms["g/con_sty"] = content_reconstruction_loss(c_pred, c_trg)
    else:
        terms["g/sty"] = zero
        if mixed:
            terms["g/con_sty"] = zero

    # Eq. 3: diversity, skipped once its weight has decayed to 0.
    if ds_weight <= 0:
        terms["g/ds"] = zero
    elif mixed:
        terms["g/ds"] = diversity_loss_mixed(x_fake, *mixes, reduction=loss_cfg.ds_reduction)
    else:
        terms["g/ds"] = _diversity_pair(nets, batch, guidance, h_real, x_fake)

    # Eq. 4-5: cycle with the source's own (s^, c^); L_con reuses G's encoder pass of G_11.
    terms["g/cyc"] = zero
    if use_con:
        terms["g/con"] = zero
    if need_self:
        terms["g/self_rec"] = self_reconstruction_loss(decoded_extra[0], batch.x_real)
    if need_cyc or need_con:
        s_org, c_org = own
        h_fake = generator.encode(x_fake)
        if need_cyc:
            terms["g/cyc"] = cycle_loss(generator.decode(h_fake, s_org, c_org), batch.x_real)
        if need_con:
            terms["g/con"] = content_consistency_loss(
                generator.fg_content(h_real), c_org, generator.fg_content(h_fake), c_trg
            )

    # Eq. 6-7 on the fake: target defect, source product (the background must be kept).
    if toggles.fg_classifier:
        terms["g/fg_cls"] = (
            fg_classification_loss(out_fake.fg_logits, batch.y_trg) if loss_cfg.lambda_fg > 0 else zero
        )
    if toggles.bg_classifier:
        terms["g/bg_cls"] = (
            bg_classification_loss(out_fake.bg_logits, batch.p_org) if loss_cfg.lambda_bg > 0 else zero
        )

    weights = {
        "g/adv": 1.0,
        "g/sty": loss_cfg.lambda_sty,
        "g/con_sty": loss_cfg.lambda_sty,
        "g/ds": -ds_weight,
        "g/cyc": loss_cfg.lambda_cyc,
        "g/con": loss_cfg.lambda_con,
        "g/self_rec": loss_cfg.lambda_self_rec,
        "g/fg_cls": loss_cfg.lambda_fg,
        "g/bg_cls": loss_cfg.lambda_bg,
    }
    total = sum((weights[name] * value for name, value in terms.items()), start=zero)
    terms["g/total"] = total
    return total, terms


def _diversity_pair(nets, batch, guidance, h_real, x_fake) -> torch.Tensor:
    """StarGAN's one detached pair (step a, no content codes)."""
    with torch.no_grad():  # StarGAN detaches the second image
        s_trg2, _ = target_codes(nets, batch, guidance, 2)
        x_fake2 = nets.generator.decode(h_real, s_trg2)
    return diversity_loss_pair(x_fake, x_fake2)


def _style_codes(nets, batch: Batch, guidance: Guidance, second: bool, own: bool):
    """(s~1, c~1), (s~2, c~2) if ``second`` else None, the source's own (s^, c^) = E(x, y) if ``own`` else None.

    Latent guidance: M(z1), then M(z2) (M's content noise is drawn in that order, as by :func:`target_codes`), and
    E(x). Reference guidance: E on x_ref, x_ref2 and x in one pass (E has no batch-coupled layer and no noise).
    """
    if guidance == "latent":
        codes1 = target_codes(nets, batch, guidance, 1)
        codes2 = target_codes(nets, batch, guidance, 2) if second else None
        return codes1, codes2, nets.style_encoder(batch.x_real, batch.y_org) if own else None
    images, domains = [batch.x_ref], [batch.y_trg]
    if second:
        images, domains = images + [batch.x_ref2], domains + [batch.y_trg]
    if own:
        images, domains = images + [batch.x_real], domains + [batch.y_org]
    s, c = nets.style_encoder(torch.cat(images), torch.cat(domains))
    k = len(images)
    codes = list(zip(s.chunk(k), c.chunk(k) if c is not None else [None] * k))
    return codes[0], codes[1] if second else None, codes[-1] if own else None


def _decode_mixes(generator, h_real, background, codes1, codes2, loss_cfg: LossConfig, extra=()):
    """G_11, (G_12, G_21, G_22) and [G(x, s, c) for (s, c) in ``extra``], G_ij = G(x, s_i, c_j), from G's shared
    encoding (and BG part) of x.

    All go through the decoder as one batch (k*N rows); docs/model.md#a2 ``all_but_first`` decodes G_11 and
    ``extra`` in one pass and the three other mixes in another, without gradients.
    """
    (s1, c1), (s2, c2) = codes1, codes2
    mixes = [(s1, c2), (s2, c1), (s2, c2)]
    if loss_cfg.ds_detach == "all_but_first":
        x_11, *decoded_extra = _decode_batched(generator, h_real, background, [codes1, *extra])
        with torch.no_grad():
            return x_11, tuple(_decode_batched(generator, h_real, background, mixes)), decoded_extra
    x_11, *rest = _decode_batched(generator, h_real, background, [codes1, *mixes, *extra])
    return x_11, tuple(rest[:3]), rest[3:]


def _decode_batched(generator, h_real, background, codes) -> list[torch.Tensor]:
    """[G(x, s_k, c_k) for k] of the same N sources in one decoder pass of len(codes) * N rows (c None without
    content codes)."""
    k = len(codes)
    if k == 1:
        s, c = codes[0]
        return [generator.decode(h_real, s, c, background=background)]
    s = torch.cat([s for s, _ in codes])  # (k*N, S)
    c = None if codes[0][1] is None else torch.cat([c for _, c in codes])  # (k*N, C, B, B)
    bg = background.repeat(k, 1, 1, 1) if background is not None else None  # (k*N, 3, H, W)
    return list(generator.decode(h_real.repeat(k, 1, 1, 1), s, c, background=bg).chunk(k))
