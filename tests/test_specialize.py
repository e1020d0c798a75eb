"""Methods, ``self``, function-valued arguments and closures (issue 13, section 2): fmad
transforms a function once per function object (or class of ``self``) it is called with."""

from __future__ import annotations

import numpy as np
import pytest

import fmad
from tests.fdcheck import check_gradients, same_value


def line_of(fn, text):
    """The line of ``fn``'s file that holds ``text`` (inside ``fn``)."""
    import inspect

    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, s in enumerate(lines) if text in s)


class Model:
    def __init__(self, n=4):
        self.X = np.linspace(-1.0, 1.0, n)
        self.n = n
        self.w = 0.5

    def __eq__(self, other):  # check_gradients checks that fmad changed no argument
        return type(other) is type(self) and same_value(vars(self), vars(other))

    def helper(self, z):
        return np.tanh(z * self.X)

    def loss(self, w):
        return np.sum((w * self.X) ** 2) / self.n

    def loss_with_helper(self, w, b):
        return np.sum(self.helper(w) + b) / self.n

    def uses_self_w(self, b):
        return self.w * b


class Other(Model):
    def helper(self, z):
        return np.sin(z * self.X)


def test_a_bound_method_reads_attributes_of_self_as_data():
    m = Model()
    d = fmad.differentiate(m.loss)
    assert d.wrt == ("w",)
    check_gradients(d, {"w": 1.5})
    check_gradients(fmad.differentiate(m.loss, wrt=["w"]), {"w": np.array([0.5, 2.0, 1.0, -1.0])})


def test_an_unbound_method_takes_self_as_data():
    d = fmad.differentiate(Model.loss)
    assert d.wrt == ("w",)
    check_gradients(d, {"self": Model(), "w": 1.5})


@pytest.mark.parametrize("make", [Model, Other])
def test_methods_called_on_self(make):
    m = make()
    bound = fmad.differentiate(m.loss_with_helper)
    check_gradients(bound, {"w": 0.7, "b": 0.1})
    unbound = fmad.differentiate(Model.loss_with_helper)
    check_gradients(unbound, {"self": m, "w": 0.7, "b": 0.1})
    assert "helper_fwd" in unbound.source_for(m, 0.7, 0.1)


def test_each_class_of_self_gets_its_own_variant():
    d = fmad.differentiate(Model.loss_with_helper)
    for m in (Model(), Other(), Model(3), Other(5)):
        value, grads = d(m, 0.7, 0.1)
        assert value == m.loss_with_helper(0.7, 0.1)
        check_gradients(d, {"self": m, "w": 0.7, "b": 0.1})
    assert len(d.__fmad__._variants) == 2


def test_a_method_shadowed_by_the_instance_is_refused():
    m = Model()
    m.helper = lambda z: z
    d = fmad.differentiate(Model.loss_with_helper)
    with pytest.raises(fmad.UnsupportedError) as info:
        d(m, 0.7, 0.1)
    assert str(info.value).startswith(f"{__file__}:{line_of(Model.loss_with_helper, 'return')}:")


def caller(model, w):
    return model.loss(w) * 2.0


def test_a_method_of_an_argument_inside_a_differentiated_function():
    d = fmad.differentiate(caller, wrt=["w"])
    check_gradients(d, {"model": Model(), "w": 1.5})
    check_gradients(d, {"model": Other(2), "w": np.array([1.5, -0.5])})


def test_parameters_on_self_are_refused_with_advice():
    m = Model()
    with pytest.raises(fmad.WrtError) as info:
        fmad.differentiate(m.uses_self_w, wrt=["w"])
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line_of(Model.uses_self_w, 'def')}:")
    assert "self.w" in message and "pass w as an argument" in message


def square(z):
    return z * z


def net(x, nonlinearity=np.tanh):
    return nonlinearity(x) * 2.0 + x


def applies(x, w, act):
    h = act(w * x)
    return np.sum(act(h))


def test_a_function_argument_taken_from_the_default():
    d = fmad.differentiate(net)
    assert d.wrt == ("x",)
    check_gradients(d, {"x": 0.3})
    check_gradients(d, {"x": np.array([0.3, -1.2])})


@pytest.mark.parametrize("fn", [np.sin, np.exp, square, abs, np.tanh])
def test_a_function_argument_passed_by_position_or_keyword(fn):
    d = fmad.differentiate(net, wrt=["x"])
    check_gradients(d, {"x": 0.3, "nonlinearity": fn})
    value, grads = d(0.3, fn)
    assert (value, grads) == d(0.3, nonlinearity=fn)
    # the function made for the default is not taken for another function, nor the reverse
    assert d(0.3)[0] == net(0.3)
    check_gradients(d, {"x": 0.3})


def test_a_function_argument_with_no_default():
    d = fmad.differentiate(applies, wrt=["w"])
    X = np.array([0.5, -1.0, 2.0])
    for fn in (np.tanh, square, np.sin, square):
        check_gradients(d, {"x": X, "w": 0.4, "act": fn})
    assert len(d.__fmad__._variants) == 3
    assert "square_fwd" in d.source_for(X, 0.4, square)
    with pytest.raises(fmad.UnsupportedError, match="source_for"):
        d.show()


@pytest.mark.parametrize("bad", [None, 3.0, "tanh"])
def test_a_call_through_an_argument_that_is_not_a_function_is_refused(bad):
    d = fmad.differentiate(net, wrt=["x"])
    with pytest.raises(fmad.FmadError) as info:
        d(0.3, bad)
    assert str(info.value).startswith(f"{__file__}:{line_of(net, 'return')}:")


def nested_reads_argument(x, act=np.tanh):
    def inner(y):
        return act(y) * x

    return inner(x * 2.0)


def test_a_nested_function_calls_an_argument_of_its_owner():
    d = fmad.differentiate(nested_reads_argument)
    check_gradients(d, {"x": 0.3})
    check_gradients(d, {"x": 0.3, "act": square})


def make_closure():
    d_inner = fmad.differentiate(square)

    def outer(x):
        v, g = d_inner(x)
        return v * g["z"]

    return outer


def test_a_differentiated_function_in_a_closure():
    outer = make_closure()
    d = fmad.differentiate(outer)
    check_gradients(d, {"x": 0.7})
    assert d(0.7)[1]["x"] == pytest.approx(6 * 0.7**2 * 1.0)


d_square = fmad.differentiate(square)


def through_global(x):
    v, g = d_square(x)
    return v * g["z"]


def test_a_differentiated_function_in_a_global():
    check_gradients(fmad.differentiate(through_global), {"x": 0.7})


def layer(x, act=np.tanh):
    return act(x) * 2.0


def calls_layers(x):
    return layer(x) + layer(x, np.sin) + layer(x, act=square)


def passes_its_argument(x, act):
    return layer(x, act) + layer(x, act=act)


def test_a_helper_called_with_functions():
    check_gradients(fmad.differentiate(calls_layers), {"x": 0.3})
    d = fmad.differentiate(passes_its_argument, wrt=["x"])
    for fn in (square, np.cos, np.tanh):
        check_gradients(d, {"x": 0.3, "act": fn})
        check_gradients(d, {"x": np.array([0.3, -0.2]), "act": fn})


class Chain:
    def __init__(self):
        self.X = np.array([0.5, -1.0, 2.0])

    def __eq__(self, other):
        return type(other) is type(self) and same_value(vars(self), vars(other))

    def loss(self, w):
        return np.sum(self.predict(w) ** 2)

    def predict(self, w):
        return self.activation(w * self.X)

    def activation(self, z):
        return np.tanh(z)


def test_methods_calling_methods_on_self():
    m = Chain()
    d = fmad.differentiate(m.loss)
    check_gradients(d, {"w": 0.4})
    check_gradients(fmad.differentiate(Chain.loss), {"self": m, "w": 0.4})
    # a method replaced on the instance afterwards: not the code fmad transformed
    m.activation = np.sin
    with pytest.raises(fmad.UnsupportedError) as info:
        d(0.4)
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line_of(Chain.loss, 'return')}:")
    assert "self.predict(...)" in message and "stored on the instance" in message


d_net = fmad.differentiate(net)


def calls_d_net(x):
    v, g = d_net(x)
    return g["x"]


def test_a_differentiated_function_that_calls_its_parameter_is_refused_inside_another():
    with pytest.raises(fmad.UnsupportedError) as info:
        fmad.differentiate(calls_d_net)
    assert str(info.value).startswith(f"{__file__}:{line_of(net, 'def')}:")
    assert "call the plain function" in str(info.value)


def test_second_derivatives_of_a_function_that_calls_its_parameter_are_refused():
    with pytest.raises(fmad.UnsupportedError, match="second derivatives") as info:
        fmad.hessian(net, wrt=["x"])
    assert str(info.value).startswith(f"{__file__}:{line_of(net, 'def')}:")


def test_self_in_wrt_is_refused():
    with pytest.raises(fmad.WrtError, match="the object the method is called on") as info:
        fmad.differentiate(Model.loss, wrt=["self"])
    assert str(info.value).startswith(f"{__file__}:{line_of(Model.loss, 'def')}:")


def test_a_method_replaced_on_the_class_gets_a_new_variant():
    class Local(Model):
        def helper(self, z):
            return np.tanh(z * self.X)

    m = Local()
    d = fmad.differentiate(m.loss_with_helper)
    check_gradients(d, {"w": 0.7, "b": 0.1})
    Local.helper = lambda self, z: z * 3.0  # a lambda: refused, never the old code
    with pytest.raises(fmad.UnsupportedError, match="lambda"):
        d(0.7, 0.1)

    def helper(self, z):
        return np.sin(z * self.X)

    Local.helper = helper
    value, grads = d(0.7, 0.1)
    assert value == m.loss_with_helper(0.7, 0.1)
    check_gradients(d, {"w": 0.7, "b": 0.1})
