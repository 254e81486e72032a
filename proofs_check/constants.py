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
