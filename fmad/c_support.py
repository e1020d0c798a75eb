"""The small ``static`` C functions an exported C file may call (see :mod:`fmad.export_c`).

Each gives Python's result for one operation, bit for bit, where C's own operator differs:
``//`` and ``%`` (floored, the sign of the divisor), ``**`` (CPython's ``float_pow``),
``int()``, ``round()``, ``math.floor``; and each reports, through ``*fm_err``, where Python
raises (a division by zero, a math domain error, an overflow, an index out of range): the
exported function then returns NaN. Only the helpers the code calls are emitted, each after
those it calls.
"""

from __future__ import annotations

# name -> (the names it calls, its C text)
HELPERS: dict[str, tuple[tuple[str, ...], str]] = {
    "fm_div": (
        (),
        """/* a / b; Python raises ZeroDivisionError for b == 0 */
static double fm_div(double a, double b, int *fm_err)
{
    if (b == 0.0) { *fm_err = 1; return 0.0; }
    return a / b;
}""",
    ),
    "fm_floordiv": (
        (),
        """/* a // b for floats, as CPython's float_floor_div */
static double fm_floordiv(double a, double b, int *fm_err)
{
    double mod, div, floordiv;
    if (b == 0.0) { *fm_err = 1; return 0.0; }
    mod = fmod(a, b);
    div = (a - mod) / b;
    if (mod != 0.0) {
        if ((b < 0.0) != (mod < 0.0)) { div -= 1.0; }
    }
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) { floordiv += 1.0; }
    } else {
        floordiv = copysign(0.0, a / b);
    }
    return floordiv;
}""",
    ),
    "fm_mod": (
        (),
        """/* a % b for floats, as CPython's float_rem: the sign of b */
static double fm_mod(double a, double b, int *fm_err)
{
    double mod;
    if (b == 0.0) { *fm_err = 1; return 0.0; }
    mod = fmod(a, b);
    if (mod != 0.0) {
        if ((b < 0.0) != (mod < 0.0)) { mod += b; }
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}""",
    ),
    "fm_floordiv_l": (
        (),
        """/* a // b for integers: floored */
static long fm_floordiv_l(long a, long b, int *fm_err)
{
    long q;
    if (b == 0) { *fm_err = 1; return 0; }
    q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) { q -= 1; }
    return q;
}""",
    ),
    "fm_mod_l": (
        (),
        """/* a % b for integers: the sign of b */
static long fm_mod_l(long a, long b, int *fm_err)
{
    long r;
    if (b == 0) { *fm_err = 1; return 0; }
    r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) { r += b; }
    return r;
}""",
    ),
    "fm_pow": (
        (),
        """/* a ** b for floats, as CPython's float_pow (and math.pow): Python raises for 0.0 to a
   negative power and on overflow, and gives a complex number for a negative base and a
   fractional exponent */
static double fm_pow(double a, double b, int *fm_err)
{
    double r;
    if (b == 0.0) { return 1.0; }
    if (isnan(a)) { return a; }
    if (isnan(b)) { return a == 1.0 ? 1.0 : b; }
    if (isinf(a) || isinf(b)) { return pow(a, b); }
    if (a == 0.0 && b < 0.0) { *fm_err = 1; return 0.0; }
    if (a < 0.0 && b != floor(b)) { *fm_err = 1; return 0.0; }
    r = pow(a, b);
    if (isinf(r)) { *fm_err = 1; return 0.0; }
    return r;
}""",
    ),
    "fm_ipow": (
        (),
        """/* a ** b for integers, b >= 0 */
static long fm_ipow(long a, long b)
{
    long r = 1;
    while (b > 0) { r *= a; b -= 1; }
    return r;
}""",
    ),
    "fm_math": (
        (),
        """/* the result r of a math function of x: Python raises ValueError or OverflowError where
   libm gives NaN from a number or an infinity from a finite x */
static double fm_math(double r, double x, int *fm_err)
{
    if ((isnan(r) && !isnan(x)) || (isinf(r) && isfinite(x))) { *fm_err = 1; return 0.0; }
    return r;
}""",
    ),
    "fm_to_long": (
        (),
        """/* a float made an integer (int(), math.floor, math.ceil, round()): Python raises for
   NaN and infinities; a long holds it below 2**63 */
static long fm_to_long(double x, int *fm_err)
{
    if (!(x > -9223372036854775808.0 && x < 9223372036854775808.0)) {
        *fm_err = 1;
        return 0;
    }
    return (long)x;
}""",
    ),
    "fm_round": (
        (),
        """/* round(x): halves to even, as CPython's float___round__ */
static double fm_round(double x)
{
    double r = round(x);
    if (fabs(x - r) == 0.5) { r = 2.0 * round(x / 2.0); }
    return r;
}""",
    ),
    "fm_index": (
        (),
        """/* an index i of a sequence of n items, negative from the end; Python raises
   IndexError outside -n..n-1 */
static size_t fm_index(long i, size_t n, int *fm_err)
{
    if (i < 0) {
        if ((size_t)(-(i + 1)) >= n) { *fm_err = 1; return 0; }
        return n - (size_t)(-(i + 1)) - 1;
    }
    if ((size_t)i >= n) { *fm_err = 1; return 0; }
    return (size_t)i;
}""",
    ),
    "fm_sign": (
        (),
        """/* np.sign(x): -1.0, 0.0 or 1.0, NaN for NaN */
static double fm_sign(double x)
{
    if (x > 0.0) { return 1.0; }
    if (x < 0.0) { return -1.0; }
    return x == 0.0 ? 0.0 : x;
}""",
    ),
    "fm_maximum": (
        (),
        """/* np.maximum(a, b): NaN if either is NaN, b when they are equal */
static double fm_maximum(double a, double b)
{
    return (a > b || isnan(a)) ? a : b;
}""",
    ),
    "fm_minimum": (
        (),
        """/* np.minimum(a, b): NaN if either is NaN, b when they are equal */
static double fm_minimum(double a, double b)
{
    return (a < b || isnan(a)) ? a : b;
}""",
    ),
}


def helper_texts(used: set[str]) -> list[str]:
    """The C text of the helpers in ``used`` and of those they call, callees first."""
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for callee in HELPERS[name][0]:
            add(callee)
        order.append(name)

    for name in sorted(used):
        add(name)
    return [HELPERS[name][1] for name in order]
