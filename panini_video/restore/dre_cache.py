"""Per-track degradation codes: one steady code per track instead of one per frame.

Panini-Net's DAFI masks come from a degradation code (the DRE's output for MFR). Computed per
frame, the code follows compression noise and motion blur frame to frame, the masks move, and the
restored face flickers. Here a track's code is the mean of the DRE outputs of its first K frames
(``dre_warmup``) and then follows later frames slowly (EMA with rate ``dre_ema``; 0 freezes it);
it restarts when a track starts or a scene cuts. ``dre_mode="frame"`` keeps per-frame codes.

Decisions:
- Which code a face gets is decided when its frame arrives (``begin_frame``), from the sequence of
  frames alone; the values arrive later (``supply``) as DRE batches finish. So the result for a
  face never depends on how faces were batched.
- The warmup mean is not causal: every face of the first K frames uses the mean of all K (the
  restorer holds those faces until their codes are known), so with ``dre_ema=0`` a whole track
  uses one code. The warmup closes early, with fewer frames, when the track is missing from a
  frame, at a scene cut, or at end of stream.
- Values stay on the model's device; nothing here synchronises with the device until
  ``records()`` reads the figures.
- A variant without a DRE (SR: a learned constant code) makes the cache trivial: every ticket is
  ready at once with ``code=None`` (the model uses its constant).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

log = logging.getLogger(__name__)

MaskFn = Callable[[Tensor], tuple[Tensor, Tensor]]
TicketKind = Literal["warmup", "follow", "frame", "constant"]


class CodeTicket:
    """The code one face will be restored with: filled in by the cache, read by the restorer.

    needs_dre: the restorer must ``supply`` this face's DRE output; ready: ``code`` is final
    (None for a model with a constant code).
    """

    __slots__ = ("track", "frame_index", "kind", "needs_dre", "raw", "code", "ready", "_run")

    def __init__(self, track: int, frame_index: int, kind: TicketKind, needs_dre: bool, run: _TrackRun | None) -> None:
        self.track = track
        self.frame_index = frame_index
        self.kind = kind
        self.needs_dre = needs_dre
        self.raw: Tensor | None = None
        self.code: Tensor | None = None
        self.ready = kind == "constant"
        self._run = run

    def __repr__(self) -> str:
        return f"CodeTicket(track={self.track}, frame={self.frame_index}, kind={self.kind}, ready={self.ready})"


@dataclass(frozen=True)
class TrackRecord:
    """How steady one track's code was, from its start (or a scene cut) to its end.

    length: faces restored with this run's codes; warmup_frames: frames averaged into the first
    code; code_step_*: L2 norm of the code's change from one face of the track to the next;
    code_drift: L2 distance between the first and the last code; mask_step_mean: mean absolute
    change of the DAFI mask m1 from one face to the next (0 when the masks were not computed).
    """

    track: int
    run: int  # 0 for the track's first run, +1 after each scene cut that restarted it
    first_frame: int
    last_frame: int
    length: int
    warmup_frames: int
    code_step_mean: float
    code_step_max: float
    code_drift: float
    mask_step_mean: float


class _TrackRun:
    """One track between restarts: its warmup, its current code and the figures of its codes."""

    def __init__(self, track: int, run: int, first_frame: int) -> None:
        self.track = track
        self.run = run
        self.first_frame = first_frame
        self.last_frame = first_frame
        self.last_seen = first_frame
        self.warmup = 0  # faces assigned to the warmup
        self.received = 0  # warmup raw codes supplied
        self.closed = False  # no more faces join the warmup
        self.total: Tensor | None = None  # sum of the warmup raw codes
        self.code: Tensor | None = None  # current code (the last one handed out)
        self.pending: deque[CodeTicket] = deque()  # not yet resolved, in frame order
        # Figures (tensors on the device, read only by records()).
        self.length = 0
        self.resolved = 0
        self.first_code: Tensor | None = None
        self.prev_code: Tensor | None = None
        self.step_sum: Tensor | None = None
        self.step_max: Tensor | None = None
        self.mask_step_sum: Tensor | None = None
        self.prev_m1: Tensor | None = None

    @property
    def done(self) -> bool:
        return self.closed and not self.pending


class DreCache:
    """Hands out degradation codes per face, steady per track (see the module docstring).

    Args:
        mode: "track" (steady codes) or "frame" (each face its own DRE output).
        warmup: K, the frames whose mean starts a track's code.
        ema: rate at which the code follows later frames; 0 freezes it after the warmup.
        uses_dre: False for a model with a constant code (SR): every ticket is ready at once.
        masks: the model's ``dafi_masks``, to record how much the masks moved (optional).
        forget_after: frames after which an absent track's run is finished and recorded.
    """

    def __init__(
        self,
        mode: Literal["track", "frame"] = "track",
        warmup: int = 5,
        ema: float = 0.02,
        uses_dre: bool = True,
        masks: MaskFn | None = None,
        forget_after: int = 300,
    ) -> None:
        if mode not in ("track", "frame"):
            raise ValueError(f"dre mode must be 'track' or 'frame', got {mode!r}")
        if warmup < 1:
            raise ValueError(f"dre warmup must be at least 1 frame, got {warmup}")
        if not 0.0 <= ema <= 1.0:
            raise ValueError(f"dre ema must be in [0, 1], got {ema}")
        self.mode = mode
        self.warmup = warmup
        self.ema = float(ema)
        self.uses_dre = uses_dre
        self.masks = masks
        self.forget_after = forget_after
        self._active: dict[int, _TrackRun] = {}
        self._runs_started: dict[int, int] = {}
        self._finished: list[_TrackRun] = []
        self._last_frame = -1

    # Structure: decided when a frame arrives --------------------------------------------------

    def begin_frame(self, frame_index: int, tracks: Sequence[int], scene_cut: bool = False) -> list[CodeTicket]:
        """One ticket per face of a frame (in the order of ``tracks``); call once per frame, in order."""
        if frame_index <= self._last_frame:
            raise ValueError(f"frames must arrive in increasing order: {frame_index} after {self._last_frame}")
        self._last_frame = frame_index
        if scene_cut:
            for run in self._active.values():
                run.closed = True
                self._resolve(run)
                self._finished.append(run)
            self._active.clear()
        present = set(tracks)
        for track, run in list(self._active.items()):
            if track in present:
                continue
            if not run.closed:  # the warmup ends with the frames it has
                run.closed = True
                self._resolve(run)
            if frame_index - run.last_seen > self.forget_after and run.done:
                self._finished.append(self._active.pop(track))
        return [self._ticket(frame_index, t) for t in tracks]

    def _ticket(self, frame_index: int, track: int) -> CodeTicket:
        if track < 0:  # an untracked face: its own code, nothing to hold steady
            kind: TicketKind = "frame" if self.uses_dre else "constant"
            ticket = CodeTicket(track, frame_index, kind, self.uses_dre, None)
            return ticket
        run = self._active.get(track)
        if run is None:
            n = self._runs_started.get(track, 0)
            self._runs_started[track] = n + 1
            run = self._active[track] = _TrackRun(track, n, frame_index)
        run.last_seen = run.last_frame = frame_index
        run.length += 1
        if not self.uses_dre:
            run.closed = True
            return CodeTicket(track, frame_index, "constant", False, run)
        if self.mode == "frame":
            run.closed = True
            ticket = CodeTicket(track, frame_index, "frame", True, run)
        elif not run.closed:
            run.warmup += 1
            run.closed = run.warmup >= self.warmup
            ticket = CodeTicket(track, frame_index, "warmup", True, run)
        else:
            ticket = CodeTicket(track, frame_index, "follow", self.ema > 0.0, run)
        run.pending.append(ticket)
        if not ticket.needs_dre or run.closed:  # its code may be known already
            self._resolve(run)
        return ticket

    def flush(self) -> None:
        """End of stream: every open warmup closes with the frames it has."""
        for run in self._active.values():
            if not run.closed:
                run.closed = True
                self._resolve(run)

    # Values: supplied as DRE batches finish ------------------------------------------------------

    def supply(self, tickets: Sequence[CodeTicket], raw: Tensor) -> None:
        """Give the DRE outputs (n, C) of ``tickets`` (those with ``needs_dre``) and resolve what can be."""
        if raw.ndim != 2 or raw.shape[0] != len(tickets):
            raise ValueError(f"expected ({len(tickets)}, C) codes, got {tuple(raw.shape)}")
        raw = raw.detach().float()
        touched: dict[int, _TrackRun] = {}
        for i, ticket in enumerate(tickets):
            if not ticket.needs_dre or ticket.raw is not None:
                raise ValueError(f"{ticket} did not ask for a DRE output or already has one")
            ticket.raw = raw[i]
            run = ticket._run
            if run is None:
                ticket.code = ticket.raw
                ticket.ready = True
                continue
            if ticket.kind == "warmup":
                run.total = ticket.raw.clone() if run.total is None else run.total + ticket.raw
                run.received += 1
            touched[id(run)] = run
        for run in touched.values():
            self._resolve(run)

    def _resolve(self, run: _TrackRun) -> None:
        """Hand out every code of ``run`` that is known now, in frame order."""
        if run.code is None and run.closed and run.warmup and run.received == run.warmup:
            assert run.total is not None
            run.code = run.total / run.warmup
        done: list[CodeTicket] = []
        while run.pending:
            ticket = run.pending[0]
            if ticket.kind == "frame":
                if ticket.raw is None:
                    break
                run.code = ticket.raw
            elif ticket.kind == "warmup":
                if run.code is None:
                    break
            else:  # follow
                if run.code is None or (self.ema > 0.0 and ticket.raw is None):
                    break
                if self.ema > 0.0:
                    assert ticket.raw is not None
                    run.code = torch.lerp(run.code, ticket.raw, self.ema)
            ticket.code = run.code
            ticket.ready = True
            ticket.raw = None  # not needed any more; frees device memory early
            done.append(run.pending.popleft())
        if done:
            run.resolved += len(done)
            self._record(run, done)

    def _record(self, run: _TrackRun, done: list[CodeTicket]) -> None:
        codes = torch.stack([t.code for t in done if t.code is not None])
        if run.first_code is None:
            run.first_code = codes[0]
            prev = codes[:1]
        else:
            assert run.prev_code is not None
            prev = run.prev_code[None]
        chain = torch.cat([prev, codes])
        steps = (chain[1:] - chain[:-1]).norm(dim=1)
        run.step_sum = steps.sum() if run.step_sum is None else run.step_sum + steps.sum()
        m = steps.max()
        run.step_max = m if run.step_max is None else torch.maximum(run.step_max, m)
        run.prev_code = codes[-1]
        if self.masks is not None:
            with torch.no_grad():
                m1 = self.masks(codes)[0].float().flatten(1)
            mchain = m1 if run.prev_m1 is None else torch.cat([run.prev_m1[None], m1])
            mstep = (mchain[1:] - mchain[:-1]).abs().mean(dim=1).sum()
            run.mask_step_sum = mstep if run.mask_step_sum is None else run.mask_step_sum + mstep
            run.prev_m1 = m1[-1]

    # Figures ----------------------------------------------------------------------------------

    def records(self) -> list[TrackRecord]:
        """One record per track run so far (finished runs first), for ``--stats-json``."""
        out = []
        for run in [*self._finished, *self._active.values()]:
            steps = max(run.resolved - 1, 0)
            step_sum = _item(run.step_sum)
            drift = 0.0
            if run.first_code is not None and run.prev_code is not None:
                drift = float((run.prev_code - run.first_code).norm().item())
            out.append(
                TrackRecord(
                    track=run.track,
                    run=run.run,
                    first_frame=run.first_frame,
                    last_frame=run.last_frame,
                    length=run.length,
                    warmup_frames=run.warmup,
                    code_step_mean=step_sum / steps if steps else 0.0,
                    code_step_max=_item(run.step_max),
                    code_drift=drift,
                    mask_step_mean=_item(run.mask_step_sum) / steps if steps else 0.0,
                )
            )
        return out

    def pending(self) -> int:
        """Tickets handed out and not yet ready (held faces)."""
        return sum(len(r.pending) for r in self._active.values()) + sum(len(r.pending) for r in self._finished)


def _item(t: Tensor | None) -> float:
    return 0.0 if t is None else float(t.item())
