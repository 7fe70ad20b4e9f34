"""Numeric precision and time keeping of a training run: autocast, loss scaling, training seconds."""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from ..device import cpu_has_native_bf16


class Precision:
    """Mixed precision on a device: the autocast context, loss scaling, the optimiser step."""

    def __init__(self, device: torch.device, amp: bool | None):
        self.device_type = device.type
        self.dtype = None
        if device.type == "cuda" and amp is not False:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif device.type == "cpu" and (amp or (amp is None and cpu_has_native_bf16())):
            self.dtype = torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self.label = {None: "float32", torch.bfloat16: "bfloat16 autocast",
                      torch.float16: "float16 autocast"}[self.dtype]

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype else nullcontext()

    def step(self, loss: torch.Tensor, optimizer, parameters: list, grad_clip: float) -> bool:
        """Backpropagate ``loss``, clip, update; False (and no update) if the loss is not finite."""
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            return False
        if self.scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
            self.scaler.step(optimizer)
            self.scaler.update()
        return True

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


class Clock:
    """Training seconds: those of a resumed run plus the time since this run started."""

    def __init__(self, offset_s: float):
        self.offset_s = offset_s
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return self.offset_s + time.monotonic() - self.start
