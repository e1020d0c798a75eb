"""Compile an fmad C export with the system compiler and call it through ctypes (tests)."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

FLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2", "-shared", "-fPIC"]


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


NO_COMPILER = "no C compiler (cc or gcc) on this machine: the C export's tests need one"


class Compiled:
    """The exported function, loaded: ``compiled(*args)`` -> ``(value, {"w": ...})``."""

    def __init__(self, files: dict[str, str], directory: Path) -> None:
        (name,) = [k[:-2] for k in files if k.endswith(".c")]
        for file, text in files.items():
            (directory / file).write_text(text)
        library = directory / f"lib{name}.so"
        command = [compiler(), *FLAGS, str(directory / f"{name}.c"), "-o", str(library), "-lm"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stderr}")
        header = files[f"{name}.h"]
        members = re.search(r"typedef struct \{(.*?)\} \w+_grad;", header, re.S).group(1)
        self.wrt = re.findall(r"double \*?(\w+);", members)
        # an array parameter's gradient: a buffer of the size the comment gives
        self.sizes = dict(
            (w, int(n)) for w, n in re.findall(r"double \*(\w+); /\* [^:]*: (\d+) doubles", members)
        )
        prototype = re.search(rf"^double {name}\((.*?)\);", header, re.S | re.M).group(1)
        self.params = [p.strip() for p in prototype.split(",")][:-1]

        class Grad(ctypes.Structure):
            _fields_ = [
                (w, ctypes.POINTER(ctypes.c_double) if w in self.sizes else ctypes.c_double)
                for w in self.wrt
            ]

        self.Grad = Grad
        self.fn = getattr(ctypes.CDLL(str(library)), name)
        self.fn.restype = ctypes.c_double

    def __call__(self, *args):
        values = list(args)
        c_args = []
        keep = []
        i = 0
        while i < len(self.params):
            decl = self.params[i]
            value = values.pop(0)
            if decl.startswith("const double *"):
                array = np.ascontiguousarray(value, dtype=np.float64)
                keep.append(array)
                c_args.append(array.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
                for n in array.shape:
                    i += 1
                    assert self.params[i].startswith("size_t "), self.params
                    c_args.append(ctypes.c_size_t(n))
            elif decl.startswith("long "):
                c_args.append(ctypes.c_long(value))
            elif decl.startswith("int "):
                c_args.append(ctypes.c_int(int(value)))
            else:
                c_args.append(ctypes.c_double(value))
            i += 1
        assert not values, "too many arguments"
        grad = self.Grad()
        buffers = {w: np.full(n, -12345.0) for w, n in self.sizes.items()}
        for w, buffer in buffers.items():
            setattr(grad, w, buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        value = self.fn(*c_args, ctypes.byref(grad))
        return value, {w: buffers[w] if w in buffers else getattr(grad, w) for w in self.wrt}
