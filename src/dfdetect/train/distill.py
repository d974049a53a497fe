"""Teacher -> student distillation (seed 003, section 5.8).

    L_KD = alpha * soft loss + (1 - alpha) * hard loss

soft loss: binary cross-entropy between the student's prediction and the teacher's (frozen) prediction;
hard loss: the recipe's task loss against the labels. The paper's table 6.2.5.1.1 tries alpha in
{0, 0.25, 0.5, 0.75, 1}; 0.25 and 0.75 did best. `temperature` > 1 softens both sides (the paper uses 1).
Validation always uses the plain loss, as the paper does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import fake_logit


def soft_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0):
    student = fake_logit(student_logits).float() / temperature
    teacher = torch.sigmoid(fake_logit(teacher_logits).float() / temperature)
    # T^2 keeps the gradient scale comparable across temperatures (Hinton et al.); 1 at the paper's T=1.
    return F.binary_cross_entropy_with_logits(student, teacher) * temperature**2


class DistillationLoss(nn.Module):
    def __init__(self, hard_loss: nn.Module, alpha: float = 0.5, temperature: float = 1.0):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be between 0 and 1")
        self.hard_loss = hard_loss
        self.alpha = alpha
        self.temperature = temperature

    def forward(self, student_logits, labels, teacher_logits):
        soft = soft_label_loss(student_logits, teacher_logits, self.temperature)
        hard = self.hard_loss(student_logits, labels)
        return self.alpha * soft + (1.0 - self.alpha) * hard


class TeacherAdapter(nn.Module):
    """Runs a frozen teacher on the student's batch: a teacher may want another input size or
    normalisation (B0 with ImageNet mean/std teaching Lite0 with mean = std = 0.5)."""

    def __init__(self, teacher: nn.Module, teacher_size: int, teacher_mean, teacher_std,
                 student_mean, student_std):
        super().__init__()
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.size = teacher_size
        def channels(values):
            return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1)

        self.register_buffer("scale", channels(student_std) / channels(teacher_std))
        self.register_buffer("shift", (channels(student_mean) - channels(teacher_mean)) / channels(teacher_std))

    def train(self, mode: bool = True):
        # The teacher stays in eval mode (frozen batch-norm statistics, no dropout).
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def forward(self, student_batch: torch.Tensor) -> torch.Tensor:
        # x_teacher = ((x * s_std + s_mean) - t_mean) / t_std
        x = student_batch * self.scale + self.shift
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.teacher(x)
