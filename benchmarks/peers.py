"""One small adapter per peer: how it gets ready for a problem, and what one call is.

Every adapter returns a :class:`Prepared`: ``func(*args)`` is the timed value+gradient call
(value only for the peers marked so), ``setup_s`` the one-time cost paid before the first
result, and ``convert`` turns the call's output into numpy values for the correctness check.
Optional peers (SymPy, JAX, autograd, PyTorch) report why they are unavailable instead of
failing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import types
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
from problems import Args, Grads, Problem

EXACT_TOLERANCE = 1e-9
# Central differences with a relative step of 6e-6 (about eps ** (1/3)) are good to
# roughly 1e-10 relative on these problems; the bound leaves room for cancellation.
FD_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Result:
    value: Any
    grads: Grads | None  # None: the peer computes the value only


@dataclass
class Prepared:
    func: Callable[..., Any]
    args: Args
    setup_s: float | None  # None: nothing to set up
    convert: Callable[[Any], Result]


def value_and_grads(problem: Problem) -> Callable[[Any], Result]:
    """``convert`` for peers returning ``(value, {name: grad})`` or ``(value, (grads...))``."""

    def convert(out: Any) -> Result:
        value, grads = out
        if not isinstance(grads, dict):
            grads = dict(zip(problem.wrt, grads, strict=True))
        return Result(_to_numpy(value), {k: _to_numpy(g) for k, g in grads.items()})

    return convert


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):  # torch tensors
        x = x.detach()
    return np.asarray(x)


def with_numpy(fn: Callable[..., Any], module: Any) -> Callable[..., Any]:
    """The same function code run with ``np`` bound to another array library."""
    namespace = {**fn.__globals__, "np": module}
    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)


def timed_first_call(func: Callable[..., Any], args: Args) -> float:
    start = perf_counter()
    func(*args)
    return perf_counter() - start


class Peer:
    key = "peer"  # short id for --peers
    name = "peer"
    gradient = True  # False: value only, the gradient is reported as n/a
    tolerance = EXACT_TOLERANCE
    module: str | None = None  # optional dependency, checked by ``unavailable``

    def unavailable(self) -> str | None:
        """Why this peer cannot run here, or None."""
        if self.module is None:
            return None
        try:
            importlib.import_module(self.module)
        except Exception as exc:  # an optional peer may fail to import in many ways
            return f"not importable ({type(exc).__name__}: {exc})"
        return None

    def version(self) -> str | None:
        if self.module is None:
            return None
        try:  # the installed distribution's version (autograd has no __version__)
            return importlib.metadata.version(self.module)
        except importlib.metadata.PackageNotFoundError:
            return getattr(importlib.import_module(self.module), "__version__", "?")

    def not_for(self, problem: Problem) -> str | None:
        """Why this peer does not apply to ``problem``, or None."""
        return None

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        raise NotImplementedError


class HandWritten(Peer):
    key = "hand"
    name = "hand-written (reference)"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        return Prepared(problem.hand, args, None, value_and_grads(problem))


class PlainFunction(Peer):
    """The user's function alone: what the value costs before any derivative."""

    key = "plain"
    name = "plain function (value only)"
    gradient = False

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        return Prepared(problem.fn, args, None, lambda out: Result(_to_numpy(out), None))


class Fmad(Peer):
    key = "fmad"
    name = "fmad"
    module = "fmad"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import fmad

        start = perf_counter()
        differentiated = fmad.differentiate(problem.fn, wrt=list(problem.wrt))
        differentiated(*args)
        setup = perf_counter() - start
        return Prepared(differentiated, args, setup, value_and_grads(problem))


class SkipPeer(Exception):
    """Raised by ``prepare``: this peer does not apply to the problem (the reason)."""


class FmadReverse(Peer):
    """fmad in reverse mode: the same function, the adjoint code (issue 12). Where reverse
    mode refuses the function, the row says so and is skipped."""

    key = "fmad-rev"
    name = "fmad mode='reverse'"
    module = "fmad"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import fmad

        start = perf_counter()
        try:
            differentiated = fmad.differentiate(problem.fn, wrt=list(problem.wrt), mode="reverse")
            differentiated(*args)
        except fmad.ReverseModeError as exc:
            raise SkipPeer(f"reverse mode refuses it ({one_line_of(exc)})") from None
        setup = perf_counter() - start
        return Prepared(differentiated, args, setup, value_and_grads(problem))


def one_line_of(exc: Exception) -> str:
    text = str(exc).splitlines()[0]
    return text if len(text) <= 120 else text[:117] + "..."


class FmadGeneratedCode(Peer):
    """Diagnostic: the function fmad generated, run without fmad's call wrapper.

    It is the compiled variant the arguments run (its flat tuple is shaped into the
    gradients' dict outside the timing), so the difference between this row and the fmad
    row is what the public wrapper (argument inspection, variant lookup, gradient shaping)
    costs per call.
    """

    key = "fmad-code"
    name = "fmad generated code alone (diagnostic)"
    module = "fmad"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import fmad
        import fmad.runtime

        # the compiled variant these arguments run: the generated code, without the public
        # dispatcher; its flat tuple (value, *tangents) is shaped outside the timing
        transformed = fmad.differentiate(problem.fn, wrt=list(problem.wrt)).__fmad__
        variant = transformed._variant(transformed._spec(tuple(args), {}))
        generated = variant.function

        def convert(out: Any) -> Result:
            value, *tangents = out
            return value_and_grads(problem)((value, transformed.shaped(variant, value, tangents)))

        return Prepared(generated, args, None, convert)


def _shifted(param: Any, index: int, delta: float) -> Any:
    """``param`` with element ``index`` moved by ``delta`` (a new object)."""
    if np.ndim(param) == 0:
        return param + delta
    moved = np.array(param, dtype=float)
    moved.flat[index] += delta
    return moved


def central_differences(problem: Problem, args: Args, rel_step: float = 6e-6) -> Any:
    """Value and central-difference gradient: two calls of ``fn`` per parameter element."""
    fn = problem.fn
    grads: Grads = {}
    for name, position in zip(problem.wrt, problem.wrt_positions, strict=True):
        param = args[position]
        grad = np.empty(np.shape(param))
        for j, element in enumerate(np.ravel(param)):
            step = rel_step * max(1.0, abs(element))
            up, down = list(args), list(args)
            up[position] = _shifted(param, j, step)
            down[position] = _shifted(param, j, -step)
            grad.flat[j] = (fn(*up) - fn(*down)) / (2.0 * step)
        grads[name] = grad if np.ndim(param) else float(grad)
    return fn(*args), grads


class FiniteDifferences(Peer):
    key = "fd"
    name = "central finite differences"
    tolerance = FD_TOLERANCE

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        def func(*call_args: Any) -> Any:
            return central_differences(problem, call_args)

        return Prepared(func, args, None, value_and_grads(problem))


class NamedVariables(Peer):
    """Operator overloading on fmad.Variable: the forward pass of that approach only."""

    key = "variable"
    name = "fmad.Variable operators (value only)"
    gradient = False
    module = "fmad"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import fmad

        wrapped = list(args)
        for name, position in zip(problem.wrt, problem.wrt_positions, strict=True):
            wrapped[position] = fmad.Variable(name, args[position])

        def convert(out: Any) -> Result:
            return Result(_to_numpy(getattr(out, "value", out)), None)

        return Prepared(problem.fn, tuple(wrapped), None, convert)


class SymPy(Peer):
    """sympy.diff of the expression, then one lambdified numpy function for all outputs."""

    key = "sympy"
    name = "SymPy (diff + lambdify, cse)"
    module = "sympy"

    def not_for(self, problem: Problem) -> str | None:
        return "no symbolic form (matrix parameters)" if problem.symbolic is None else None

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import sympy as sp

        start = perf_counter()
        form = problem.symbolic(sp, args)
        outputs = [form.expr, *(sp.diff(form.expr, p) for p in form.params)]
        numeric = sp.lambdify([*form.data, *form.params], outputs, modules="numpy", cse=True)
        data = form.data_values
        mean = form.mean_over_samples

        def func(*call_args: Any) -> Any:
            value, *derivs = numeric(*data, *form.param_values(call_args))
            if mean:  # per-sample results: the loss is their mean, and so is its gradient
                value, derivs = np.mean(value), [np.mean(d) for d in derivs]
            return value, form.pack(derivs)

        setup = perf_counter() - start + timed_first_call(func, args)
        return Prepared(func, args, setup, value_and_grads(problem))


def _jax() -> Any:
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax


class _JaxPeer(Peer):
    module = "jax"

    def build(self, jax: Any, g: Callable[..., Any], argnums: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        jax = _jax()
        jnp = jax.numpy
        compiled = self.build(jax, with_numpy(problem.fn, jnp), problem.wrt_positions)
        # A JAX user keeps data as device arrays (lists too: indexing a traced list of
        # 150 floats would make 150 inputs); Python floats stay floats.
        jax_args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray | list) else a for a in args)

        def func(*call_args: Any) -> Any:
            return jax.block_until_ready(compiled(*call_args))

        setup = timed_first_call(func, jax_args)  # tracing + XLA compilation
        return Prepared(func, jax_args, setup, value_and_grads(problem))


class JaxValueAndGrad(_JaxPeer):
    key = "jax"
    name = "JAX jit(value_and_grad)"

    def build(self, jax: Any, g: Callable[..., Any], argnums: tuple[int, ...]) -> Any:
        return jax.jit(jax.value_and_grad(g, argnums=argnums))


class JaxJacfwd(_JaxPeer):
    key = "jacfwd"
    name = "JAX jit(jacfwd) + value"

    def build(self, jax: Any, g: Callable[..., Any], argnums: tuple[int, ...]) -> Any:
        jacobian = jax.jacfwd(g, argnums=argnums)
        return jax.jit(lambda *a: (g(*a), jacobian(*a)))


class Autograd(Peer):
    key = "autograd"
    name = "autograd value_and_grad"
    module = "autograd"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import autograd
        import autograd.numpy as anp

        g = with_numpy(problem.fn, anp)
        func = autograd.value_and_grad(g, argnum=problem.wrt_positions)
        return Prepared(func, args, None, value_and_grads(problem))


class Torch(Peer):
    key = "torch"
    name = "PyTorch CPU float64 autograd.grad"
    module = "torch"

    def prepare(self, problem: Problem, args: Args) -> Prepared:
        import torch

        torch.set_num_threads(1)
        g = with_numpy(problem.fn, torch)
        torch_args = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        params = []
        for position in problem.wrt_positions:
            param = torch.tensor(args[position], dtype=torch.float64, requires_grad=True)
            torch_args[position] = param
            params.append(param)

        def func(*call_args: Any) -> Any:
            loss = g(*call_args)
            return loss, torch.autograd.grad(loss, params)

        return Prepared(func, tuple(torch_args), None, value_and_grads(problem))


PEERS: tuple[Peer, ...] = (
    HandWritten(),
    PlainFunction(),
    Fmad(),
    FmadReverse(),
    FmadGeneratedCode(),
    FiniteDifferences(),
    NamedVariables(),
    SymPy(),
    JaxValueAndGrad(),
    JaxJacfwd(),
    Autograd(),
    Torch(),
)
