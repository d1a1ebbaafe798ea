"""Batches straight from an in-memory uint8 tensor: no per-item dataset indexing.

Each epoch draws one permutation from (seed, epoch), so an epoch's order is a pure function
of those two numbers: a resumed run sees exactly the batches it would have seen. Under DDP
every rank takes the same permutation and keeps the positions ≡ rank (mod world size) —
the union of the ranks' batches at a step is exactly the single-process batch at that step.
Dynamic binarisation draws a fresh Bernoulli sample per batch from a generator seeded by
(seed, epoch, rank), again reproducible after a resume.

With ``labels`` (N,) — for a model that trains on labels (a cond-vae) — each batch is the pair
(images, their labels), both indexed by the same positions: the labels take no random numbers,
so order, noise and resume are those of the images alone, and DDP's slicing keeps the pairs.
"""

from __future__ import annotations

from typing import Iterator

import torch


class BatchLoader:
    def __init__(self, images: torch.Tensor, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 binarize: bool = False, drop_last: bool = True, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu", labels: torch.Tensor | None = None):
        if batch_size % world_size:
            raise ValueError("the global batch size must be divisible by the number of processes")
        if labels is not None and labels.shape[:1] != images.shape[:1]:
            raise ValueError("one label per image is needed")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.local_batch = batch_size // world_size
        self.shuffle, self.seed, self.binarize, self.drop_last = shuffle, seed, binarize, drop_last
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> torch.Tensor:
        n = self.images.shape[0]
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=g)

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()

    def batches(self, start: int = 0) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """Float batches in [0, 1] of shape (B/world, C, H, W), from batch number ``start``; with
        ``labels``, pairs (images, their (B/world,) int64 labels)."""
        order = self._order()
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 4099 + self.rank)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size][self.rank::self.world_size]
            if b < start:
                if self.binarize:  # keep the noise stream aligned with an uninterrupted epoch
                    torch.rand((len(idx), *self.images.shape[1:]), generator=g)
                continue
            x = self.images[idx].to(self.device, non_blocking=True).float().div_(255.0)
            if self.binarize:
                noise = torch.rand(x.shape, generator=g).to(x.device)
                x = (noise < x).float()
            if self.labels is None:
                yield x
            else:
                yield x, self.labels[idx].to(self.device, torch.long, non_blocking=True)


def eval_batches(images: torch.Tensor, batch_size: int = 1000, device="cpu") -> Iterator[torch.Tensor]:
    """Deterministic float batches of an evaluation set (already binarised if it should be)."""
    for start in range(0, images.shape[0], batch_size):
        yield images[start:start + batch_size].to(device).float().div_(255.0)
