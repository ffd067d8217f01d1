"""A small CNN that labels 28x28 digits or clothes: the independent judge of the class-conditional generators.

Trained on the training split only (never on held-out data or generated images); its accuracy on the held-out
split is stated in its card. Its 128-d penultimate features give the FID of lab.metrics.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Classifier(nn.Module):
    """conv32-pool-conv64-pool-fc128-fc10 on images in [0, 1], (B, 1, 28, 28) -> logits (B, 10); the emoji judge is
    the same network on (B, 3, 32, 32) with a logit per name."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, size: int = 28):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(in_channels, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(64 * (size // 4) ** 2, 128), nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d penultimate features, (B, 128)."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 32, H/2, W/2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 64, H/4, W/4)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    shift: int = 2,
    num_classes: int = 10,
    augment=None,
) -> Classifier:
    """Adam on cross-entropy, with random shifts of up to shift pixels (and augment(x, g), if given, on each batch);
    images (N, C, S, S) in [0, 1]."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Classifier(images.shape[1], num_classes, images.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for b in range(0, len(images), batch_size):
            idx = order[b : b + batch_size]
            x = images[idx]
            if shift:
                dx, dy = torch.randint(-shift, shift + 1, (2,), generator=g).tolist()
                x = torch.roll(x, (dy, dx), dims=(2, 3))
            if augment is not None:
                x = augment(x, g)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
