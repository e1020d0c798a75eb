"""Plain gradient descent on a differentiated function: :func:`train`.

>>> import fmad
>>> def loss(X, y, w, b):
...     return ((w * X + b) - y) ** 2
>>> w, b = fmad.Variable("w", 0.5), fmad.Variable("b", 0.25)
>>> result = fmad.train(loss, [w, b], {"X": -50.0, "y": -148.0}, lr=1e-4, epochs=100)
>>> result.losses[-1] < 1e-10
True

The call is bound once (data in its argument slots, parameters updated in theirs), so an
epoch costs little more than the hand-written loop
``v, g = f(X, y, w, b); w = w - lr * g["w"]; b = b - lr * g["b"]``.
Epochs are counted from 0: ``result.losses[epoch]`` is the loss at that epoch, computed
before that epoch's update.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmad.api import Differentiated, differentiate
from fmad.errors import TrainingError
from fmad.variable import Variable

Callback = Callable[[int, float, dict[str, Any]], Any]


@dataclass
class TrainResult:
    """What :func:`train` did."""

    losses: list[float]
    """The loss at each epoch run, before that epoch's update."""
    params: dict[str, Any]
    """Each parameter's final value, by name (also in the Variables' ``.value``)."""
    epochs: int
    """How many epochs ran."""
    stopped_early: bool
    """True when the callback or ``tol`` ended training before ``epochs``."""


def train(
    fn: Callable[..., Any],
    params: Variable | Iterable[Variable],
    data: Mapping[str, Any] | None = None,
    *,
    lr: float,
    epochs: int,
    callback: Callback | None = None,
    tol: float | None = None,
    progress: bool | int = False,
) -> TrainResult:
    """Run ``epochs`` steps of gradient descent, ``p.value = p.value - lr * grad``, on ``params``.

    ``fn`` is a differentiated function, or a plain one (then it is differentiated with
    respect to the params' names). ``params`` are :class:`fmad.Variable` objects named after
    ``fn.wrt``; ``data`` maps fn's other parameters to their values. The loss must be a
    scalar (or a size-1 array). The Variables hold the latest values whenever other code can
    look: in the callback, and once train returns or raises. Arrays are never changed in
    place: each step assigns new ones.

    ``callback(epoch, loss, params)`` runs after each update with the new values by name;
    returning True stops training. ``tol`` stops training once the loss changes by less than
    ``tol`` from one epoch to the next. ``progress=True`` prints the loss about ten times,
    ``progress=k`` every ``k`` epochs.

    Raises :class:`fmad.TrainingError` for a wrong setup and when the loss or a gradient
    stops being finite, naming the epoch.
    """
    variables = _check_params(params)
    _check_settings(lr, epochs, callback, tol)
    every = _report_interval(progress, epochs)
    if not isinstance(fn, Differentiated):
        fn = differentiate(fn, wrt=[v.name for v in variables])
    _check_wrt(fn, variables)
    call, values, indices = _bind(fn, variables, data)
    names = [v.name for v in variables]
    slots = list(zip(names, indices, strict=True))
    by_slot = list(zip(variables, indices, strict=True))
    # Each epoch writes the new parameter values into `spare`, then swaps it with `values`:
    # `values` always holds one consistent state, even when an epoch fails half way.
    spare = list(values)

    losses: list[float] = []
    append_loss = losses.append
    isfinite = math.isfinite
    watching = bool(every) or callback is not None or tol is not None
    next_report = 0 if every else -1
    previous = math.nan
    epoch = -1
    try:
        for epoch in range(epochs):
            try:
                value, grads = call(*values)
            except (OverflowError, FloatingPointError) as error:  # Python floats overflow loudly
                raise TrainingError(
                    _diverged(f"{_describe(error)} was raised", epoch, lr)
                ) from error
            loss = value if type(value) is float else _loss_as_float(value)
            # One isfinite for the loss and all float gradients: a NaN or infinite term makes
            # the sum NaN or infinite. (A sum that overflows is looked at term by term.)
            total = loss
            for name, index in slots:
                grad = grads[name]
                if type(grad) is float:
                    total += grad
                elif not _finite(grad):
                    total = math.nan
                spare[index] = values[index] - lr * grad
            if not isfinite(total) and (problem := _not_finite(loss, grads, names)):
                raise TrainingError(_diverged(problem, epoch, lr))
            values, spare = spare, values
            append_loss(loss)

            if not watching:
                continue
            if epoch == next_report:
                _report(epoch, epochs, loss)
                next_report += every
            if callback is not None:
                for variable, index in by_slot:
                    variable.value = values[index]
                stop = callback(epoch, loss, {v.name: v.value for v in variables})
                for variable, index in by_slot:  # the callback may have set new values
                    values[index] = variable.value
                if stop:
                    break
            if tol is not None and abs(loss - previous) < tol:
                break
            previous = loss
    finally:
        for variable, index in by_slot:
            variable.value = values[index]

    if every and epoch >= 0 and epoch != next_report - every:
        _report(epoch, epochs, losses[-1])  # always show where training ended
    return TrainResult(
        losses=losses,
        params={v.name: v.value for v in variables},
        epochs=len(losses),
        stopped_early=len(losses) < epochs,
    )


def _loss_as_float(value: Any) -> float:
    """The loss ``value`` as a float; a loss with more than one element is an error."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise TrainingError(
                f"the loss has shape {value.shape}, but train needs a single number; "
                "reduce it in the function, e.g. return np.mean(loss)"
            )
        return float(value.item())
    if isinstance(value, numbers.Real):
        return float(value)
    raise TrainingError(f"the loss must be a number, got {type(value).__name__}")


def _not_finite(loss: float, grads: dict[str, Any], names: list[str]) -> str | None:
    """What is NaN or infinite: the loss or which gradient (None if nothing is)."""
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    for name in names:
        if not _finite(grads[name]):
            return f"the gradient for {name!r} is not finite"
    return None


def _finite(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        # .item() is much cheaper than a reduction for the common one-element case
        return math.isfinite(x.item()) if x.size == 1 else bool(np.isfinite(x).all())
    return math.isfinite(x)


def _diverged(what: str, epoch: int, lr: float) -> str:
    return f"{what} at epoch {epoch}: training diverged; try a smaller learning rate than {lr}"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}({error})"


def _report(epoch: int, epochs: int, loss: float) -> None:
    width = len(str(max(epochs - 1, 0)))
    print(f"epoch {epoch:>{width}}  loss {loss:.6g}", flush=True)


def _check_params(params: Variable | Iterable[Variable]) -> list[Variable]:
    variables = [params] if isinstance(params, Variable) else list(params)
    names: set[str] = set()
    for position, variable in enumerate(variables):
        if not isinstance(variable, Variable):
            raise TrainingError(
                f"params[{position}] is a {type(variable).__name__}, not an fmad.Variable; "
                "wrap it, e.g. fmad.Variable('w', 0.5)"
            )
        if variable.name in names:
            raise TrainingError(f"two params are named {variable.name!r}")
        names.add(variable.name)
    if not variables:
        raise TrainingError("params is empty: give the Variables to train")
    return variables


def _check_settings(lr: Any, epochs: Any, callback: Any, tol: Any) -> None:
    if not (_is_real(lr) and math.isfinite(lr) and lr > 0):
        raise TrainingError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool) and epochs >= 0):
        raise TrainingError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if callback is not None and not callable(callback):
        raise TrainingError(f"callback must be callable, got {type(callback).__name__}")
    if tol is not None and not (_is_real(tol) and tol >= 0):
        raise TrainingError(f"tol must be a number >= 0 or None, got {tol!r}")


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _report_interval(progress: bool | int, epochs: int) -> int:
    """Print every this many epochs; 0 means never."""
    if isinstance(progress, bool):
        return max(1, epochs // 10) if progress else 0
    if isinstance(progress, numbers.Integral) and progress >= 0:
        return int(progress)
    raise TrainingError(f"progress must be True, False or a number of epochs, got {progress!r}")


def _check_wrt(fn: Differentiated, variables: list[Variable]) -> None:
    names = [v.name for v in variables]
    missing = [name for name in fn.wrt if name not in names]
    if missing:
        raise TrainingError(
            f"{_name(fn)} is differentiated with respect to {_listing(fn.wrt)}; "
            f"params has no Variable named {_listing(missing)}"
        )
    extra = [name for name in names if name not in fn.wrt]
    if extra:
        raise TrainingError(
            f"{_name(fn)} is differentiated with respect to {_listing(fn.wrt)} only; "
            f"it gives no gradient for {_listing(extra)}"
        )


def _bind(
    fn: Differentiated, variables: list[Variable], data: Mapping[str, Any] | None
) -> tuple[Callable[..., Any], list[Any], list[int]]:
    """``call(*values)`` calls ``fn`` with every argument; each param's index in ``values``."""
    data = dict(data or {})
    by_name = {v.name: v for v in variables}
    signature = inspect.signature(fn.__wrapped__)
    parameters = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    for name in by_name:
        if name in data:
            raise TrainingError(f"{name!r} is both in params and in data; give it once")
        if name not in parameters:
            raise TrainingError(
                f"{name!r} is not a parameter of {_name(fn)}; train updates only parameters"
            )
    unknown = [name for name in data if name not in parameters]
    if unknown:
        raise TrainingError(f"data names {_listing(unknown)}, not parameters of {_name(fn)}")

    values: dict[str, Any] = {}
    missing = []
    for name, p in parameters.items():
        if name in by_name:
            values[name] = by_name[name].value
        elif name in data:
            value = data[name]
            values[name] = value.value if isinstance(value, Variable) else value
        elif p.default is not p.empty:
            if p.kind is not p.KEYWORD_ONLY:
                values[name] = p.default  # a later positional argument needs this slot filled
        else:
            missing.append(name)
    if missing:
        raise TrainingError(
            f"no value for {_listing(missing)}: pass data={{{', '.join(map(repr, missing))}: ...}}"
        )
    order = list(values)
    keywords = tuple(
        name for name in order if parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    )
    call: Callable[..., Any] = fn
    if keywords:  # keyword-only arguments come last in `values`
        positional = len(order) - len(keywords)

        def call(*values: Any) -> Any:
            return fn(*values[:positional], **dict(zip(keywords, values[positional:], strict=True)))

    return call, list(values.values()), [order.index(v.name) for v in variables]


def _name(fn: Differentiated) -> str:
    return getattr(fn.__wrapped__, "__qualname__", "the function")


def _listing(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)
