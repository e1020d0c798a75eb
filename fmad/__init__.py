"""fmad: forward-mode automatic differentiation by rewriting Python source.

>>> import fmad
>>> @fmad.differentiate(wrt=["w", "b"])
... def loss(X, y, w, b):
...     return (w * X + b - y) ** 2
>>> loss(3.0, 7.0, 0.5, 0.25)
(27.5625, {'w': -31.5, 'b': -10.5})
"""

from fmad.api import Differentiated
from fmad.errors import (
    DerivativeError,
    ExportError,
    FmadError,
    InternalError,
    ReverseModeError,
    ShapeError,
    SourceError,
    TrainingError,
    UnboundError,
    UnsupportedError,
    WrtError,
)
from fmad.export import export
from fmad.higher import hessian, hvp, jvp
from fmad.modes import differentiate, jacobian
from fmad.objective import Objective
from fmad.rules import register
from fmad.train import TrainResult, train
from fmad.variable import Variable

__all__ = [
    "DerivativeError",
    "Differentiated",
    "ExportError",
    "FmadError",
    "InternalError",
    "Objective",
    "ReverseModeError",
    "ShapeError",
    "SourceError",
    "TrainResult",
    "TrainingError",
    "UnboundError",
    "UnsupportedError",
    "Variable",
    "WrtError",
    "differentiate",
    "export",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "register",
    "train",
]
__version__ = "0.1.0"
