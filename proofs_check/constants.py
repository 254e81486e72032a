"""Tolerances, step sizes and sample counts of the claims check, kept in one place."""

DEFAULT_EXAMPLES = 300  # hypothesis examples per claim part in a default `elasticity check`.
DEFAULT_SEED = 0  # hypothesis seed of a default run; the same seed gives the same numbers.

FD_STEP_FRACTION = 1e-2  # finite-difference step, as a fraction of the smallest curvature scale in l.
FD_RTOL = 1e-6  # |finite difference - analytic| allowed, relative to the derivative's scale (see below).
FD_ROUNDING_FACTOR = 64.0  # rounding allowance added to the tolerance: this many eps * |rate| / step.
FD_MAX_ROUNDING = 1e-4  # a finite difference whose rounding allowance exceeds this * scale tests nothing.
IDENTITY_RTOL = 1e-10  # |sum_i n_i d gamma_i / dl| allowed, relative to sum_i n_i (scale of d gamma_i / dl).
RATIO_RTOL = 1e-12  # |ratio - formula| / |formula| allowed, divided by the ratio's condition number.
LIMIT_L = 1e-9  # the small l at which n_t d gamma_t / dl is compared with its l -> 0+ limit.
LIMIT_RTOL = 1e-6  # relative tolerance of that comparison (the gap is O(l)).
SIGN_RTOL = 1e-9  # |1 - E_{P_t}[P_a / q]| below this counts as a tie, where signs are not compared.
DEGENERATE_RTOL = 1e-9  # |d gamma_p / dl| at or below this * its scale: the ratio is undefined (skipped).
BITS_ATOL = 1e-9  # absolute tolerance on code lengths and entropies, in bits.
MIXTURE_RTOL = 1e-12  # weighted code length of the mixture may exceed a competitor's by this much (relative).
BRUTE_FORCE_MAX_SYMBOLS = 6  # alphabets up to this size are also coded by exhaustive search over lengths.
OPTIMIZER_MAX_LEAVES = 31  # mixtures with at most this many leaves are also minimised by scipy.optimize.
STATIONARY_GTOL = 1e-13  # claim 10: fits stop at ||grad (J / N)|| <= this (nats per response per unit theta).
STATIONARY_MAX_ITERATIONS = 100  # claim 10: trust-region Newton iterations at most per fit.
STATIONARY_HESSIAN_RCOND = 1e-8  # claim 10: smallest / largest |Hessian eigenvalue| at or below this: skipped.
STATIONARY_RTOL = 1e-9  # claim 10: |sum_i n_i d gamma_i/dl| allowed, relative to its scale (stationary_checks).
STATIONARY_FD_STEP = 1e-4  # claim 10: finite-difference step in l, as a fraction of k + 1 + l (the distance to the
# mixture's pole in l); small because a nearly flat fitted Hessian bends theta*(l) on a much shorter scale, and
# affordable because the fits end near rounding level (Newton steps), far below what this step resolves.
STATIONARY_FD_RTOL = 1e-6  # claim 10: ||finite difference - implicit d theta/dl|| allowed, relative to its scale.
STATIONARY_NEWTON_STEPS = 8  # claim 10: Newton steps after scipy stops, kept while they shrink the gradient.
STATIONARY_SCOPE_GTOL = 1e-10  # claim 10: a fit that ends above this ||grad (J / N)|| reached no stationary point.
STATIONARY_MIN_IN_SCOPE = 0.25  # claim 10: share of configurations that must reach a stationary point (else FAILED).
STATIONARY_GRADIENT_ROUNDING = 16.0  # claim 10: gradients below this * eps * their terms' size are rounding noise.
STATIONARY_FD_ROUNDING_SHARE = 1e-2  # claim 10: steps grow until the fits' error is this share of the tolerance.
STATIONARY_FD_MAX_STEP = 1e-2  # claim 10: largest finite-difference step, as a fraction of k + 1 + l.
STATIONARY_FD_MAX_ROUNDING = 1e-4  # claim 10: a finite difference whose allowance (fit errors, truncation)
# exceeds this * scale tests nothing (it is reported, not counted).
