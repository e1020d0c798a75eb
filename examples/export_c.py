"""Export the seed linear-regression loss (written as a loop over samples) to C, compile it,
and train with the compiled gradient through ctypes, next to fmad's own.

``fmad.export(fn, lang="c", shapes=...)`` returns a header and a C99 source file. The C
function takes the data as pointers and lengths and writes the gradient into a struct the
caller owns; compiled with ``-std=c99 -O2`` it computes the value and the gradient that fmad
computes in Python, bit for bit, so both trainings below print the same losses.

    python examples/export_c.py
    python -m fmad export examples/export_c.py:train_loop --lang c --shapes xs=N,ys=N -o loss.c
"""

import ctypes
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import fmad


@fmad.differentiate(wrt=["w", "b"])
def train_loop(xs, ys, w, b):
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        y_pred = w * x + b
        total += (y_pred - y) ** 2
    return total / len(xs)


class Grad(ctypes.Structure):  # typedef struct { double w; double b; } train_loop_grad;
    _fields_ = [("w", ctypes.c_double), ("b", ctypes.c_double)]


def load(directory: Path, compiler: str):
    files = fmad.export(train_loop, lang="c", shapes={"xs": (None,), "ys": (None,)})
    for name, text in files.items():
        (directory / name).write_text(text)
    library = directory / "libtrain_loop.so"
    flags = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2", "-shared", "-fPIC"]
    subprocess.run(
        [compiler, *flags, str(directory / "train_loop.c"), "-o", str(library), "-lm"],
        check=True,
    )
    c_loss = ctypes.CDLL(str(library)).train_loop
    pointer = ctypes.POINTER(ctypes.c_double)
    # double train_loop(const double *xs, size_t xs_len, const double *ys, size_t ys_len,
    #                   double w, double b, train_loop_grad *grad);
    c_loss.argtypes = [pointer, ctypes.c_size_t, pointer, ctypes.c_size_t]
    c_loss.argtypes += [ctypes.c_double, ctypes.c_double, ctypes.POINTER(Grad)]
    c_loss.restype = ctypes.c_double
    return files, c_loss


def main() -> int:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("No C compiler (cc or gcc) found: install one to run this example.")
        return 0
    rng = np.random.default_rng(0)
    xs = rng.uniform(-2.0, 2.0, size=50)
    ys = 3.0 * xs - 1.0 + rng.normal(0.0, 0.1, size=50)
    with tempfile.TemporaryDirectory() as tmp:
        files, c_loss = load(Path(tmp), compiler)
        print("train_loop.h and train_loop.c, written by fmad.export(lang='c'):\n")
        print(files["train_loop.h"])
        print(files["train_loop.c"])

        pointer = ctypes.POINTER(ctypes.c_double)
        xs_c, ys_c = xs.ctypes.data_as(pointer), ys.ctypes.data_as(pointer)
        lr, epochs = 0.1, 60
        w_c = b_c = w_py = b_py = 0.0
        grad = Grad()
        print(f"gradient descent, lr={lr}: the compiled C next to fmad in Python")
        print("epoch  loss (C)                loss (fmad)             same")
        identical = True
        for epoch in range(epochs):
            loss_c = c_loss(xs_c, len(xs), ys_c, len(ys), w_c, b_c, ctypes.byref(grad))
            w_c, b_c = w_c - lr * grad.w, b_c - lr * grad.b
            loss_py, g = train_loop(xs, ys, w_py, b_py)
            w_py, b_py = w_py - lr * g["w"], b_py - lr * g["b"]
            identical = identical and loss_c == loss_py and (w_c, b_c) == (w_py, b_py)
            if epoch % 10 == 0 or epoch == epochs - 1:
                same = loss_c == loss_py
                print(f"{epoch:5d}  {loss_c:<22.17g}  {float(loss_py):<22.17g}  {same}")
        print(f"fitted: w={w_c:.6f}, b={b_c:.6f} (data: y = 3 x - 1 + noise)")
        print("C and fmad agree bit for bit at every step:", identical)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
