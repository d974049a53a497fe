"""Layer widths that differ from an architecture's standard ones (a pruned or converted model).

A checkpoint's card names a registered architecture; when channels were removed, the card also lists
the layers whose shapes changed, `{module name: [out, in, groups]}` for convolutions, `[out, in]` for
linear layers and `[features]` for batch norms. Loading builds the standard model, resizes those layers
(empty tensors) and then loads the weights strictly, so a pruned model keeps the one checkpoint contract.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError

_NORMS = (nn.modules.batchnorm._BatchNorm,)


def module_shapes(model: nn.Module) -> dict[str, list[int]]:
    """The width of every convolution, linear layer and batch norm, by module name."""
    shapes = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            shapes[name] = [module.out_channels, module.in_channels, module.groups]
        elif isinstance(module, nn.Linear):
            shapes[name] = [module.out_features, module.in_features]
        elif isinstance(module, _NORMS):
            shapes[name] = [module.num_features]
    return shapes


def changed_shapes(model: nn.Module, standard: nn.Module) -> dict[str, list[int]]:
    """The layers of `model` whose widths differ from those of the same architecture built as standard."""
    base = module_shapes(standard)
    return {name: shape for name, shape in module_shapes(model).items() if base.get(name) != shape}


def apply_shapes(model: nn.Module, shapes: dict[str, list[int]]) -> nn.Module:
    """Resize the named layers in place (their values are left uninitialised: load weights next)."""
    modules = dict(model.named_modules())
    for name, shape in shapes.items():
        module = modules.get(name)
        if module is None:
            raise CheckpointError(f"the card resizes layer {name!r}, which this architecture does not have")
        try:
            _resize(module, shape)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"the card's shape {shape} does not fit layer {name!r} ({exc})") from None
    return model


def _resize(module: nn.Module, shape: list[int]) -> None:
    if isinstance(module, nn.Conv2d):
        out, inp, groups = shape
        if inp % groups or out % groups:
            raise ValueError(f"{inp} in and {out} out channels in {groups} groups")
        module.out_channels, module.in_channels, module.groups = out, inp, groups
        module.weight = _empty_like(module.weight, (out, inp // groups, *module.kernel_size))
        if module.bias is not None:
            module.bias = _empty_like(module.bias, (out,))
    elif isinstance(module, nn.Linear):
        out, inp = shape
        module.out_features, module.in_features = out, inp
        module.weight = _empty_like(module.weight, (out, inp))
        if module.bias is not None:
            module.bias = _empty_like(module.bias, (out,))
    elif isinstance(module, _NORMS):
        (features,) = shape
        module.num_features = features
        for attr in ("weight", "bias"):
            if getattr(module, attr) is not None:
                setattr(module, attr, _empty_like(getattr(module, attr), (features,)))
        for attr in ("running_mean", "running_var"):
            if getattr(module, attr) is not None:
                setattr(module, attr, torch.empty(features, dtype=getattr(module, attr).dtype))
    else:
        raise TypeError(f"cannot resize a {type(module).__name__}")


def _empty_like(param: nn.Parameter, shape: tuple[int, ...]) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape, dtype=param.dtype, device=param.device),
                        requires_grad=param.requires_grad)
