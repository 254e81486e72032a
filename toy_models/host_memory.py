"""The memory calls run in: what no call may exceed (the machine's or the device's), and freed memory given back."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import jax


@functools.lru_cache(maxsize=1)
def _malloc_trim():
  """glibc's malloc_trim, or None where the C library has none (macOS, musl, Windows)."""
  try:
    library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return library.malloc_trim
  except (OSError, AttributeError):
    return None


def release_freed_memory() -> bool:
  """Returns the C heap's free memory to the operating system; True if it could (glibc), False elsewhere.

  Large arrays freed by numpy and XLA's CPU runtime stay with the process's allocator after a first large free
  (glibc raises its mmap threshold), so resident memory only grows: at the paper scale `elasticity simulate
  mitigations` held 4.7 GB resident at its last unit, 4.2 GB when the heap was trimmed every 2 s (2-core CPU,
  2026-11-27). Calling this between units keeps one unit's peak from adding to the next's.

  References:
    The GNU C Library manual and malloc_trim(3) (releasing free memory from the top of the heap and, since glibc
    2.8, from every arena); mallopt(3) (M_MMAP_THRESHOLD's dynamic adjustment).
  """
  trim = _malloc_trim()
  if trim is None:
    return False
  trim(0)
  return True


def memory_ceiling() -> int | None:
  """Bytes one call can never exceed: the machine's physical memory on a CPU, the device's memory on an accelerator
  (JAX's memory_stats bytes_limit); None where it is not known.

  The memory bounds of training (toy_models.training.training_memory_limit) are soft: a run that alone needs more
  is trained alone; only a run above this ceiling is refused, with a one-line error, before it is allocated.

  References:
    POSIX sysconf (_SC_PHYS_PAGES, _SC_PAGE_SIZE); JAX documentation, jax.Device.memory_stats.
  """
  device = jax.devices()[0]
  if device.platform != "cpu":
    stats = device.memory_stats() or {}
    return stats.get("bytes_limit") or None
  try:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (AttributeError, ValueError, OSError):
    return None
