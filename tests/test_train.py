"""fmad.train: convergence, divergence errors, callback, tol, progress, validation."""

import re

import numpy as np
import pytest

import fmad
from fmad import TrainingError, TrainResult, Variable


def seed_loss(X, y, w, b):
    return ((w * X + b) - y) ** 2


def sqrt_loss(w):
    return np.sqrt(w)


def sum_loss(w, target):
    return np.sum((w - target) ** 2)


def vector_loss(X, w):
    return w * X


def keyword_loss(X, w, *, b, scale=1.0, y=1.0):
    return scale * ((w * X + b) - y) ** 2


def default_loss(X, w, c=3.0, y=1.0):
    return (w * X * c - y) ** 2


def clashing_names(fn, lr, epochs, value, grads, a0):
    return (lr * fn - value) ** 2 + 0.0 * epochs * grads * a0


def data_for(X: float) -> dict[str, float]:
    return {"X": X, "y": 3.0 * X + 2.0}


def two() -> list[Variable]:
    return [Variable("w", 0.5), Variable("b", 0.25)]


SEED_DATA = data_for(-50.0)


@pytest.mark.parametrize("X", [-95.0, -70.0, -50.0, -30.0])
def test_converges_on_the_seed_function(X: float) -> None:
    w, b = Variable("w", 0.5), Variable("b", 0.25)
    result = fmad.train(seed_loss, [w, b], data_for(X), lr=1e-4, epochs=100)
    assert isinstance(result, TrainResult)
    assert result.epochs == 100
    assert not result.stopped_early
    assert len(result.losses) == 100
    assert all(type(loss) is float for loss in result.losses)
    assert result.losses[0] == seed_loss(X, 3.0 * X + 2.0, 0.5, 0.25)
    assert result.losses[-1] <= 1e-10
    assert result.params == {"w": w.value, "b": b.value}
    assert seed_loss(X, 3.0 * X + 2.0, w.value, b.value) <= 1e-10


def test_matches_the_hand_written_loop() -> None:
    f = fmad.differentiate(seed_loss, wrt=["w", "b"])
    X, y, lr = -50.0, -148.0, 1e-4
    w, b = 0.5, 0.25
    expected = []
    for _ in range(20):
        value, grads = f(X, y, w, b)
        expected.append(value)
        w, b = w - lr * grads["w"], b - lr * grads["b"]
    # params in another order than wrt, and a differentiated function: same steps
    result = fmad.train(f, [Variable("b", 0.25), Variable("w", 0.5)], data_for(X), lr=lr, epochs=20)
    assert result.losses == expected
    assert result.params == {"b": b, "w": w}


def test_shape_1_params_keep_their_shape() -> None:
    w0, b0 = np.array([0.5]), np.array([0.25])
    w, b = Variable("w", w0), Variable("b", b0)
    result = fmad.train(seed_loss, [w, b], data_for(-50.0), lr=1e-4, epochs=100)
    assert np.shape(w.value) == (1,) and np.shape(b.value) == (1,)
    assert all(type(loss) is float for loss in result.losses)
    assert result.losses[-1] <= 1e-10
    # the user's arrays are replaced, never changed in place
    np.testing.assert_array_equal(w0, [0.5])
    np.testing.assert_array_equal(b0, [0.25])


def test_array_params() -> None:
    start = np.array([1.0, -2.0, 4.0])
    target = np.array([0.5, 0.5, -1.0])
    w = Variable("w", start)
    result = fmad.train(sum_loss, [w], {"target": target}, lr=0.25, epochs=60)
    assert w.value.shape == (3,)
    np.testing.assert_allclose(w.value, target, atol=1e-12)
    np.testing.assert_allclose(result.params["w"], target, atol=1e-12)
    np.testing.assert_array_equal(start, [1.0, -2.0, 4.0])
    assert result.losses[0] == pytest.approx(np.sum((start - target) ** 2))


def test_single_variable_and_variables_in_data() -> None:
    w = Variable("w", 0.5)
    data = {"X": Variable("X", -50.0), "y": -148.0, "b": 0.0}
    f = fmad.differentiate(seed_loss, wrt=["w"])
    result = fmad.train(f, w, data, lr=1e-4, epochs=50)
    assert result.losses[-1] <= 1e-10
    assert w.value == pytest.approx(-148.0 / -50.0)


def test_keyword_only_parameters_and_defaults() -> None:
    w, b = Variable("w", 0.5), Variable("b", 0.25)
    result = fmad.train(keyword_loss, [w, b], {"X": 2.0, "y": 3.0}, lr=0.05, epochs=200)
    assert result.losses[0] == keyword_loss(2.0, 0.5, b=0.25, y=3.0)
    assert result.losses[-1] <= 1e-20
    assert keyword_loss(2.0, w.value, b=b.value, y=3.0) <= 1e-20
    # c and y keep their defaults: the fit solves w * 2 * 3 == 1
    result = fmad.train(default_loss, [Variable("w", 0.5)], {"X": 2.0}, lr=0.01, epochs=100)
    assert result.params["w"] == pytest.approx(1 / 6)


def test_parameter_names_like_the_loops_own() -> None:
    lr = Variable("lr", 1.0)
    data = {"fn": 2.0, "epochs": 1.0, "value": 3.0, "grads": 1.0, "a0": 1.0}
    result = fmad.train(clashing_names, [lr], data, lr=0.05, epochs=100)
    assert result.params["lr"] == pytest.approx(1.5)


def test_the_callback_may_set_new_values() -> None:
    w = Variable("w", np.array([3.0, -3.0]))

    def clip(epoch: int, loss: float, params: dict) -> None:
        w.value = np.clip(w.value, -1.0, 1.0)

    target = np.array([2.0, -0.5])
    result = fmad.train(sum_loss, [w], {"target": target}, lr=0.1, epochs=200, callback=clip)
    np.testing.assert_allclose(result.params["w"], [1.0, -0.5])
    assert result.losses[1] == pytest.approx(1.0**2 + 0.5**2)  # w was clipped to [1, -1]


def test_nan_loss_names_the_epoch() -> None:
    # w: 1.0 -> 0.5 -> -0.207...: sqrt is NaN at epoch 2
    w = Variable("w", 1.0)
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 2\b.*smaller learning rate"):
        fmad.train(sqrt_loss, [w], lr=1.0, epochs=10)
    assert w.value == pytest.approx(0.5 - 1.0 / (2 * np.sqrt(0.5)))  # the values that gave NaN


def test_infinite_gradient_names_the_parameter_and_epoch() -> None:
    with pytest.raises(TrainingError, match=r"gradient for 'w' is not finite at epoch 0\b"):
        fmad.train(sqrt_loss, [Variable("w", 0.0)], lr=0.1, epochs=10)


def test_divergence_with_python_floats_is_a_training_error() -> None:
    # with lr=1 each step multiplies the residual by about -5000 until the float overflows
    seen: list[int] = []
    with pytest.raises(TrainingError, match="smaller learning rate") as caught:
        fmad.train(
            seed_loss,
            [Variable("w", 0.5), Variable("b", 0.25)],
            data_for(-50.0),
            lr=1.0,
            epochs=1000,
            callback=lambda epoch, loss, params: seen.append(epoch),
        )
    assert f"at epoch {seen[-1] + 1}:" in str(caught.value)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_divergence_with_arrays_is_a_training_error() -> None:
    seen: list[int] = []
    with pytest.raises(TrainingError, match="smaller learning rate") as caught:
        fmad.train(
            seed_loss,
            [Variable("w", np.array([0.5])), Variable("b", np.array([0.25]))],
            data_for(-50.0),
            lr=1.0,
            epochs=1000,
            callback=lambda epoch, loss, params: seen.append(epoch),
        )
    assert f"at epoch {seen[-1] + 1}:" in str(caught.value)


def test_callback_sees_each_epoch_and_can_stop() -> None:
    calls = []

    def callback(epoch: int, loss: float, params: dict) -> bool:
        calls.append((epoch, loss, dict(params)))
        return epoch == 4

    w, b = Variable("w", 0.5), Variable("b", 0.25)
    result = fmad.train(seed_loss, [w, b], data_for(-50.0), lr=1e-4, epochs=100, callback=callback)
    assert [epoch for epoch, _, _ in calls] == [0, 1, 2, 3, 4]
    assert [loss for _, loss, _ in calls] == result.losses
    assert calls[-1][2] == {"w": w.value, "b": b.value}  # the values after that epoch's step
    assert calls[0][2]["w"] != 0.5
    assert result.epochs == 5
    assert result.stopped_early


def test_tol_stops_when_the_loss_settles() -> None:
    result = fmad.train(
        sum_loss, [Variable("w", np.array([3.0]))], {"target": 0.0}, lr=0.1, epochs=1000, tol=1e-6
    )
    assert result.stopped_early
    assert result.epochs < 1000
    changes = np.abs(np.diff(result.losses))
    assert changes[-1] < 1e-6
    assert (changes[:-1] >= 1e-6).all()


def test_progress_prints_about_ten_lines(capsys: pytest.CaptureFixture[str]) -> None:
    fmad.train(seed_loss, two(), SEED_DATA, lr=1e-4, epochs=25, progress=True)
    lines = capsys.readouterr().out.splitlines()
    epochs = [int(re.match(r"epoch\s+(\d+)\s+loss \S+$", line).group(1)) for line in lines]
    assert epochs == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]


def test_progress_every_k_epochs_and_the_last(capsys: pytest.CaptureFixture[str]) -> None:
    fmad.train(seed_loss, two(), SEED_DATA, lr=1e-4, epochs=12, progress=5)
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[1]) for line in lines] == [0, 5, 10, 11]


def test_no_progress_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    fmad.train(seed_loss, two(), SEED_DATA, lr=1e-4, epochs=3)
    assert capsys.readouterr().out == ""


def test_zero_epochs() -> None:
    w = Variable("w", 0.5)
    result = fmad.train(seed_loss, [w, Variable("b", 0.25)], data_for(-50.0), lr=1e-4, epochs=0)
    assert result == TrainResult(
        losses=[], params={"w": 0.5, "b": 0.25}, epochs=0, stopped_early=False
    )
    assert w.value == 0.5


def test_a_loss_with_many_elements_must_be_reduced() -> None:
    with pytest.raises(TrainingError, match=r"shape \(3,\).*np\.mean"):
        fmad.train(vector_loss, [Variable("w", 0.5)], {"X": np.ones(3)}, lr=0.1, epochs=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": [0.5]}, r"params\[0\] is a float, not an fmad.Variable"),
        ({"params": []}, "params is empty"),
        ({"params": [Variable("w", 1.0), Variable("w", 2.0)]}, "two params are named 'w'"),
        (
            {"fn": fmad.differentiate(seed_loss, wrt=["w", "b"]), "params": [Variable("w", 1.0)]},
            r"with respect to 'w', 'b'; params has no Variable named 'b'",
        ),
        ({"fn": fmad.differentiate(seed_loss, wrt=["w"])}, "no gradient for 'b'"),
        ({"data": {"X": 1.0}}, "no value for 'y'"),
        ({"data": {**SEED_DATA, "Z": 1.0}}, "data names 'Z', not parameters of seed_loss"),
        ({"data": {**SEED_DATA, "w": 1.0}}, "'w' is both in params and in data"),
        ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
        ({"lr": -1e-3}, "lr must be a positive number"),
        ({"lr": float("nan")}, "lr must be a positive number"),
        ({"epochs": -1}, "epochs must be a whole number >= 0, got -1"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"tol": -1.0}, "tol must be a number >= 0"),
        ({"callback": 3}, "callback must be callable"),
        ({"progress": -2}, "progress must be"),
    ],
)
def test_setup_errors(changes: dict, message: str) -> None:
    arguments = {"fn": seed_loss, "params": two(), "data": SEED_DATA, "lr": 0.1, "epochs": 1}
    with pytest.raises(TrainingError, match=message):
        fmad.train(**{**arguments, **changes})


def test_setup_errors_change_nothing() -> None:
    w, b = two()
    with pytest.raises(TrainingError):
        fmad.train(seed_loss, [w, b], {"X": 1.0}, lr=0.1, epochs=1)
    assert (w.value, b.value) == (0.5, 0.25)


def test_training_error_is_an_fmad_error() -> None:
    assert issubclass(TrainingError, fmad.FmadError)
