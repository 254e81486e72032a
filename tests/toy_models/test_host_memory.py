"""Returning freed memory to the operating system: glibc's malloc_trim where it exists, nothing elsewhere."""

import os
import platform

import numpy as np

from toy_models import host_memory


def _resident_bytes() -> int:
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * 4096


def test_freed_heap_memory_goes_back_to_the_system_on_glibc():
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    assert host_memory.release_freed_memory() in (True, False)
    return
  np.empty(2**21).fill(1.0)  # a 16 MiB block (mmapped) freed: glibc raises its mmap threshold to 16 MiB
  blocks = [np.ones(2**17) for _ in range(400)]  # so these 400 blocks of 1 MiB come from the heap
  keep = blocks[-1]
  del blocks  # freed, but resident: the kept block sits above them
  before = _resident_bytes()
  assert host_memory.release_freed_memory() is True
  assert before - _resident_bytes() > 300 * 2**20 and keep.sum() == 2**17


def test_without_malloc_trim_nothing_happens(monkeypatch):
  monkeypatch.setattr(host_memory, "_malloc_trim", lambda: None)
  assert host_memory.release_freed_memory() is False


def test_the_ceiling_is_the_machines_memory_on_a_cpu():
  pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  assert host_memory.memory_ceiling() == pages > 2**28
