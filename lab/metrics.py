"""Metrics of the bundled models: denoiser MSE, classifier accuracy, and FID in a classifier's feature space.

References:
    [1] Heusel et al., GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium, 2017 (FID).
"""

from __future__ import annotations

import torch


@torch.no_grad()
def predict(classifier, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N,), features (N, F)) of images (N, 1, 28, 28) in [0, 1]."""
    labels, feats = [], []
    for b in range(0, len(images), batch_size):
        f = classifier.features(images[b : b + batch_size].float())
        feats.append(f)
        labels.append(classifier.fc2(f).argmax(1))
    return torch.cat(labels), torch.cat(feats)


@torch.no_grad()
def confident_share(classifier, images: torch.Tensor, threshold: float = 0.9) -> float:
    """Fraction of images the classifier reads as some digit with probability above threshold: a model with no class to
    check (time-conditioned) is judged by it beside FID (blotches and half-digits fall below)."""
    probs = torch.softmax(classifier.fc2(classifier.features(images.float())), 1)
    return (probs.max(1).values > threshold).float().mean().item()


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of predicted labels equal to labels."""
    return (predicted == labels).float().mean().item()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets (N, F), Eq. (6) [1]."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((S_a S_b)^(1/2)) = sum of sqrt of the eigenvalues of S_a^(1/2) S_b S_a^(1/2), which is symmetric PSD
    w, v = torch.linalg.eigh(s_a)
    root_a = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + s_a.trace() + s_b.trace() - 2 * cross)


@torch.no_grad()
def denoiser_mse(unet, clean: torch.Tensor, sigmas, seed: int = 0) -> dict[float, float]:
    """Held-out MSE of a single-step denoiser at each noise level sigma: mean (unet(x + sigma eps) - x)^2."""
    out = {}
    for sigma in sigmas:
        g = torch.Generator().manual_seed(seed)
        z = clean + sigma * torch.randn(clean.shape, generator=g)
        out[float(sigma)] = torch.nn.functional.mse_loss(unet(z), clean).item()
    return out
