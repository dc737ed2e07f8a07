"""Time-bucketed state for sliding windows: a fixed ring of slots, never a list of events.

A window of W seconds in slots of S seconds keeps ceil(W / S) + 1 slots; a slot is reset lazily
when the clock reaches it again, so there is no background thread. The running slot and the
span of time it covers are remembered (``running``, ``running_from``, ``running_until``), so the
common call (``now`` still in that slot) costs two comparisons; a hot path may make them itself
and use ``running`` without calling ``slot``. A query covers the running slot plus the whole slots before it that fit in W
(rounded up to whole slots when W is not a multiple of S) and reports the time those slots
actually cover, never less than one slot, so a rate is honest about its denominator.
"""

from __future__ import annotations

import math
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Ring(Generic[T]):
    """A sliding window as a fixed ring of time slots, reset lazily when time reaches them: rates
    over the last N seconds in bounded memory, with no timer thread."""

    def __init__(self, window_seconds: float, slot_seconds: float, factory: Callable[[], T]) -> None:
        if not (window_seconds > 0 and slot_seconds > 0):
            raise ValueError("window_seconds and slot_seconds must be > 0")
        self.window = float(window_seconds)
        self.width = float(slot_seconds)
        self._factory = factory
        n = math.ceil(self.window / self.width) + 1
        self._epochs = [-1] * n
        self._slots: list[T] = [factory() for _ in range(n)]
        self._forget_running()

    def _forget_running(self) -> None:
        self.running: T = self._slots[0]
        self.running_from = self.running_until = 0.0  # an empty span: no now is in it

    def slot(self, now: float) -> T:
        """The slot holding ``now``, emptied first if it last held an older period."""
        if self.running_from <= now < self.running_until:
            return self.running
        epoch = int(now // self.width)
        i = epoch % len(self._slots)
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._slots[i] = self._factory()
        # epoch * width <= now < (epoch + 1) * width, exactly for whole-second widths
        self.running = self._slots[i]
        self.running_from, self.running_until = epoch * self.width, (epoch + 1) * self.width
        return self.running

    def recent(self, now: float, seconds: float | None = None) -> tuple[list[T], float]:
        """Slots of the last ``seconds`` (default: the window) and the seconds they cover."""
        oldest, current = self.epochs(now, seconds)
        whole = current - oldest
        covered = max(self.width, whole * self.width + (now - current * self.width))
        slots = [s for e, s in zip(self._epochs, self._slots) if oldest <= e <= current]
        return slots, covered

    def epochs(self, now: float, seconds: float | None = None) -> tuple[int, int]:
        """(oldest, current) slot numbers (``now // width``) that ``recent`` covers."""
        seconds = self.window if seconds is None else min(seconds, self.window)
        current = int(now // self.width)
        return current - max(0, math.ceil(seconds / self.width) - 1), current

    def held(self) -> list[tuple[int, T]]:
        """(slot number, slot) of every slot in use, for a copy of the state."""
        return [(e, s) for e, s in zip(self._epochs, self._slots) if e >= 0]

    def clear(self) -> None:
        self._epochs = [-1] * len(self._slots)
        self._slots = [self._factory() for _ in self._slots]
        self._forget_running()
