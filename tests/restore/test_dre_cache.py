"""DreCache: warmup mean, EMA, restarts, frame mode, and independence from batching."""

from __future__ import annotations

import pytest
import torch

from panini_video.restore.dre_cache import CodeTicket, DreCache


def codes_for(n: int, seed: int = 0, c: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g)


def feed(
    cache: DreCache, tracks_per_frame: list[list[int]], raw: torch.Tensor, chunk: int, cuts: set[int] = frozenset()
):
    """Frames in order; DRE outputs supplied ``chunk`` faces at a time, as batches would."""
    tickets: list[CodeTicket] = []
    queue: list[CodeTicket] = []
    k = 0
    for f, tracks in enumerate(tracks_per_frame):
        for t in cache.begin_frame(f, tracks, scene_cut=f in cuts):
            tickets.append(t)
            if t.needs_dre:
                queue.append(t)
        while len(queue) >= chunk:
            batch, queue = queue[:chunk], queue[chunk:]
            idx = [tickets.index(t) for t in batch]
            cache.supply(batch, raw[idx])
            k += 1
    cache.flush()
    if queue:
        cache.supply(queue, raw[[tickets.index(t) for t in queue]])
    return tickets


def test_warmup_mean_then_frozen_with_ema_zero() -> None:
    raw = codes_for(12)
    cache = DreCache("track", warmup=4, ema=0.0)
    tickets = feed(cache, [[7]] * 12, raw, chunk=3)
    assert all(t.ready for t in tickets)
    expected = raw[:4].mean(0)
    for t in tickets:
        torch.testing.assert_close(t.code, expected)
    # Only the warmup faces needed the DRE.
    assert [t.needs_dre for t in tickets] == [True] * 4 + [False] * 8
    (rec,) = cache.records()
    assert (rec.track, rec.length, rec.warmup_frames) == (7, 12, 4)
    assert rec.code_step_max == 0.0 and rec.code_drift == 0.0


def test_ema_follows_later_frames() -> None:
    raw = codes_for(8)
    cache = DreCache("track", warmup=3, ema=0.5)
    tickets = feed(cache, [[1]] * 8, raw, chunk=2)
    code = raw[:3].mean(0)
    for i in range(3):
        torch.testing.assert_close(tickets[i].code, code)
    for i in range(3, 8):
        code = code + 0.5 * (raw[i] - code)
        torch.testing.assert_close(tickets[i].code, code)
    (rec,) = cache.records()
    assert rec.code_step_max > 0 and rec.code_drift > 0


@pytest.mark.parametrize("chunk", [1, 2, 5, 8])
def test_codes_do_not_depend_on_batching(chunk: int) -> None:
    tracks = [[1, 2], [1, 2], [2], [1, 2], [1, 2, 3], [1, 3], [3], [1, 2, 3]] * 2
    n = sum(len(t) for t in tracks)
    raw = codes_for(n, seed=3)
    reference = feed(DreCache("track", warmup=3, ema=0.1), tracks, raw, chunk=1)
    got = feed(DreCache("track", warmup=3, ema=0.1), tracks, raw, chunk=chunk)
    for a, b in zip(reference, got, strict=True):
        torch.testing.assert_close(a.code, b.code)


def test_warmup_closes_when_the_track_is_missing() -> None:
    raw = codes_for(5)
    cache = DreCache("track", warmup=5, ema=0.0)
    tickets = feed(cache, [[4], [4], [], [4], [4], [4]], raw, chunk=1)
    # Frames 0 and 1 form the warmup: the track was missing from frame 2.
    for t in tickets:
        torch.testing.assert_close(t.code, raw[:2].mean(0))
    assert cache.records()[0].warmup_frames == 2


def test_scene_cut_restarts_the_track() -> None:
    raw = codes_for(10)
    cache = DreCache("track", warmup=2, ema=0.0)
    tickets = feed(cache, [[9]] * 10, raw, chunk=4, cuts={6})
    for t in tickets[:6]:
        torch.testing.assert_close(t.code, raw[:2].mean(0))
    for t in tickets[6:]:
        torch.testing.assert_close(t.code, raw[6:8].mean(0))
    runs = cache.records()
    assert [(r.track, r.run, r.first_frame, r.last_frame, r.length) for r in runs] == [(9, 0, 0, 5, 6), (9, 1, 6, 9, 4)]


def test_frame_mode_uses_each_faces_code() -> None:
    raw = codes_for(6)
    cache = DreCache("frame", warmup=3, ema=0.0)
    tickets = feed(cache, [[1]] * 6, raw, chunk=4)
    for i, t in enumerate(tickets):
        torch.testing.assert_close(t.code, raw[i])
    (rec,) = cache.records()
    steps = (raw[1:] - raw[:-1]).norm(dim=1)
    assert rec.code_step_mean == pytest.approx(float(steps.mean()), rel=1e-5)
    assert rec.code_step_max == pytest.approx(float(steps.max()), rel=1e-5)


def test_untracked_faces_get_their_own_code() -> None:
    raw = codes_for(2)
    cache = DreCache("track", warmup=3, ema=0.0)
    tickets = feed(cache, [[-1], [-1]], raw, chunk=1)
    torch.testing.assert_close(tickets[0].code, raw[0])
    torch.testing.assert_close(tickets[1].code, raw[1])
    assert cache.records() == []


def test_constant_code_model_needs_no_dre() -> None:
    cache = DreCache("track", warmup=3, ema=0.1, uses_dre=False)
    tickets = cache.begin_frame(0, [1, 2])
    assert all(t.ready and t.code is None and not t.needs_dre for t in tickets)


def test_mask_motion_is_recorded() -> None:
    raw = codes_for(6)
    cache = DreCache("frame", warmup=1, ema=0.0, masks=lambda c: (c[:, None, :] * 2, c[:, None, :]))
    feed(cache, [[1]] * 6, raw, chunk=6)
    expected = (2 * (raw[1:] - raw[:-1])).abs().mean(1).mean()
    assert cache.records()[0].mask_step_mean == pytest.approx(float(expected), rel=1e-5)


def test_frames_must_arrive_in_order() -> None:
    cache = DreCache()
    cache.begin_frame(3, [1])
    with pytest.raises(ValueError, match="increasing"):
        cache.begin_frame(2, [1])
