"""Training: YAML recipes (recipe), the loop with checkpoints and resume (loop), losses, optimisers and
schedules (losses, optim), and teacher -> student distillation (distill).

    from dfdetect.train import load_recipe, train
    result = train(load_recipe("configs/seed003_efficientnet_b0.yaml", ["data.manifest=crops.csv"]), "runs/b0")
"""

from .recipe import Recipe, load_recipe


def train(*args, **kwargs):
    """dfdetect.train.loop.train, imported on first use (it pulls in torch)."""
    from .loop import train as run

    return run(*args, **kwargs)


__all__ = ["Recipe", "load_recipe", "train"]
