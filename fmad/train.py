"""Plain gradient descent on a differentiated function: :func:`train`.

>>> import fmad
>>> def loss(X, y, w, b):
...     return ((w * X + b) - y) ** 2
>>> w, b = fmad.Variable("w", 0.5), fmad.Variable("b", 0.25)
>>> result = fmad.train(loss, [w, b], {"X": -50.0, "y": -148.0}, lr=1e-4, epochs=100)
>>> result.losses[-1] < 1e-10
True

Epochs are counted from 0: ``result.losses[epoch]`` is the loss at that epoch, computed
before that epoch's update.

An epoch must cost little more than the hand-written loop
``v, g = f(X, y, w, b); w = w - lr * g["w"]; b = b - lr * g["b"]``, even when ``f`` takes
a microsecond. So the loop itself is generated for the function's signature (see
:func:`_epoch_loop`): the call has its arguments spelled out, the parameters are local
variables, and a single ``isfinite`` checks the loss and every float gradient.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmad import pytree
from fmad.api import Differentiated
from fmad.errors import TrainingError
from fmad.modes import differentiate
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
    if not (hasattr(fn, "wrt") and hasattr(fn, "__wrapped__")):  # not differentiated yet
        fn = differentiate(fn, wrt=[v.name for v in variables], mode="auto")
    _check_wrt(fn, variables)
    arguments, keywords, indices = _bind(fn, variables, data)
    names = [v.name for v in variables]
    # a Variable whose value is a container (a dict or list of arrays) steps every leaf
    trees = [_is_tree(v.value) for v in variables]
    run = _epoch_loop(len(arguments), keywords, tuple(zip(indices, names, trees, strict=True)))

    def check(epoch: int, value: Any, grads: dict[str, Any]) -> float:
        """The slow path: a loss or gradient that is not a float, or a sum that overflowed."""
        loss = _loss_as_float(value)
        problem = _not_finite(loss, grads, names)
        if problem:
            raise TrainingError(_diverged(problem, epoch, lr))
        return loss

    def diverged(error: BaseException, epoch: int) -> TrainingError:
        return TrainingError(_diverged(f"{_describe(error)} was raised", epoch, lr))

    previous = math.nan
    next_report = 0

    def after_epoch(epoch: int, loss: float, values: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Progress, callback and tol: the new parameter values, or None to stop."""
        nonlocal previous, next_report
        if every and epoch == next_report:
            _report(epoch, epochs, loss)
            next_report += every
        if callback is not None:
            for variable, value in zip(variables, values, strict=True):
                variable.value = value
            if callback(epoch, loss, dict(zip(names, values, strict=True))):
                return None
            values = tuple(v.value for v in variables)  # the callback may have set new ones
        if tol is not None and abs(loss - previous) < tol:
            return None
        previous = loss
        return values

    watching = bool(every) or callback is not None or tol is not None
    losses: list[float] = []
    final = [v.value for v in variables]
    after = after_epoch if watching else None
    try:
        run(fn, lr, epochs, losses.append, final, after, check, diverged, *arguments)
    finally:  # the values the last epoch reached, or those that failed
        for variable, value in zip(variables, final, strict=True):
            variable.value = value

    if every and losses and len(losses) - 1 != next_report - every:
        _report(len(losses) - 1, epochs, losses[-1])  # always show where training ended
    return TrainResult(
        losses=losses,
        params={v.name: v.value for v in variables},
        epochs=len(losses),
        stopped_early=len(losses) < epochs,
    )


@functools.lru_cache(maxsize=64)
def _epoch_loop(
    count: int, keywords: tuple[str, ...], params: tuple[tuple[int, str, bool], ...]
) -> Callable:
    """The training loop for a function of ``count`` arguments, generated and compiled.

    The last ``len(keywords)`` arguments are passed by keyword; ``params`` holds the position
    and name of each parameter to train. For ``f(X, y, w, b)`` trained on ``w`` and
    ``b``, the loop reads::

        def run(fn, lr, epochs, append_loss, final, after_epoch, check, diverged, a0, a1, a2, a3):
            try:
                for epoch in range(epochs):
                    try:
                        value, grads = fn(a0, a1, a2, a3)
                    except (OverflowError, FloatingPointError) as error:
                        raise diverged(error, epoch) from error
                    g2 = grads['w']
                    g3 = grads['b']
                    if not (type(value) is float and type(g2) is float and type(g3) is float
                            and isfinite(value + g2 + g3)):
                        value = check(epoch, value, grads)
                    a2 = a2 - lr * g2
                    a3 = a3 - lr * g3
                    append_loss(value)
                    if after_epoch is not None:
                        params = after_epoch(epoch, value, (a2, a3))
                        if params is None:
                            break
                        a2, a3 = params
            finally:
                final[:] = (a2, a3)

    A parameter whose value is a container (``True`` in ``params``) is stepped leaf by leaf,
    ``a2 = step(a2, g2, lr)`` (:func:`fmad.pytree.step`); its gradient is never a float, so
    ``check`` looks at every epoch's loss and gradients.

    Every name in it is fmad's own (``a0``...), so the user's parameter names cannot clash.
    A NaN or infinity anywhere in the sum makes it NaN or infinite; ``check`` then finds the
    culprit (or, when finite terms merely overflowed, lets training go on).
    """
    arguments = [f"a{i}" for i in range(count)]
    positional = count - len(keywords)
    by_keyword = [f"{k}=a{positional + i}" for i, k in enumerate(keywords)]
    call = ", ".join([*arguments[:positional], *by_keyword])
    grads = [f"g{i}" for i, *_ in params]
    values = "".join(f"a{i}, " for i, *_ in params)
    floats = " and ".join(f"type({g}) is float" for g in grads)
    lines = [
        f"def run(fn, lr, epochs, append_loss, final, after_epoch, check, diverged, "
        f"{', '.join(arguments)}):",
        "    try:",
        "        for epoch in range(epochs):",
        "            try:",
        f"                value, grads = fn({call})",
        "            except (OverflowError, FloatingPointError) as error:",
        "                raise diverged(error, epoch) from error",
        *(f"            g{i} = grads[{name!r}]" for i, name, _ in params),
        f"            if not (type(value) is float and {floats}",
        f"                    and isfinite(value + {' + '.join(grads)})):",
        "                value = check(epoch, value, grads)",
        *(
            f"            a{i} = step(a{i}, g{i}, lr)"
            if tree
            else f"            a{i} = a{i} - lr * g{i}"
            for i, _, tree in params
        ),
        "            append_loss(value)",
        "            if after_epoch is not None:",
        f"                params = after_epoch(epoch, value, ({values}))",
        "                if params is None:",
        "                    break",
        f"                {values}= params",
        "    finally:",
        f"        final[:] = ({values})",
    ]
    source = "\n".join(lines) + "\n"
    filename = f"<fmad.train loop {count} {keywords} {params}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"isfinite": math.isfinite, "step": pytree.step}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["run"]


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
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list | tuple):
        return all(_finite(v) for v in x)
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
) -> tuple[list[Any], tuple[str, ...], list[int]]:
    """Every argument of the call in order, the names of the last ones that are keyword-only,
    and the position of each param among the arguments."""
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
    keywords = tuple(
        name for name in values if parameters[name].kind is parameters[name].KEYWORD_ONLY
    )
    order = list(values)  # keyword-only parameters come last, as in the signature
    return list(values.values()), keywords, [order.index(v.name) for v in variables]


def _name(fn: Differentiated) -> str:
    return getattr(fn.__wrapped__, "__qualname__", "the function")


def _listing(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _is_tree(value: Any) -> bool:
    return isinstance(value, dict | list | tuple) and pytree.is_tree(value)
