"""Check an output against its input: frames, timestamps, audio packets, and the samples outside the faces.

The promise ``verify`` checks: a restored file holds every frame of its input at its input's
time, every audio packet copied as it was, and, when its codec is lossless and its pixel format
the input's, every sample outside the paste regions the run recorded (``--stats-json``,
``stage_stats.restore.paste_regions``) equal to the input's decoded sample, bit for bit.

Both files are decoded in their own pixel formats (``VideoReader`` gives ``Picture`` planes;
nothing goes through RGB, which would hide or invent differences) and compared plane by plane,
frame ``i`` of the output against frame ``i`` of the input (the tool never reorders or skips
frames of a file). Chroma planes are checked outside the regions brought to their size
(``restore.planes.chroma_mask``): the regions are aligned to the chroma grid, so a chroma
sample is either wholly inside or wholly outside.

What cannot be compared is said, with the reason, rather than passed or failed: a deinterlaced
run (other frames than the input's), an output in another pixel format or size, a run without
stats (no regions known). A lossy output's samples outside the faces differ by design; their
count and PSNR are reported as information. Only ``failed`` checks make ``ok`` False.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from panini_video.errors import InputError, ProcessingError, UsageError
from panini_video.io.picture import Picture, PlaneFormat
from panini_video.io.probe import VideoInfo, open_input, probe
from panini_video.io.reader import VideoReader
from panini_video.restore.planes import chroma_mask, region_mask

log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "not comparable", "info"]
# encoders whose decoded samples are the samples they were given, whatever their settings
LOSSLESS_CODECS = frozenset({"ffv1", "ffvhuff", "huffyuv", "utvideo", "magicyuv", "rawvideo", "png", "qtrle"})
# h264 is lossless only at crf 0 (x264's --qp 0); the stats' config says whether the run used it
CRF_LOSSLESS_CODECS = frozenset({"h264"})
MAX_EXAMPLES = 10  # differing timestamps listed by frame; the count covers them all


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """Frames decoded from the input and the output; a lost or extra frame fails."""

    status: Status
    input: int
    output: int
    detail: str


@dataclass(frozen=True, slots=True)
class TimestampCheck:
    """Each output frame's time against its input frame's, within half the input's frame gap there.

    differ: frames whose times differ by more; examples: the first of them as
    (frame, input seconds, output seconds).
    """

    status: Status
    compared: int
    differ: int
    max_offset_s: float
    examples: tuple[tuple[int, float, float], ...]
    detail: str


@dataclass(frozen=True, slots=True)
class AudioStreamCheck:
    """One audio stream: packets and their total duration in and out; a copied stream must match exactly."""

    status: Status
    index_in: int
    index_out: int | None
    codec_in: str
    codec_out: str | None
    packets_in: int
    packets_out: int
    duration_in_s: float
    duration_out_s: float
    copied: bool
    same_bytes: bool | None
    detail: str


@dataclass(frozen=True, slots=True)
class PlaneCheck:
    """One plane outside the paste regions: samples compared, samples that differ, PSNR (dB) of those samples."""

    plane: str
    compared: int
    changed: int
    psnr_db: float | None


@dataclass(frozen=True, slots=True)
class SampleCheck:
    """The samples outside the paste regions (see the module doc)."""

    status: Status
    lossless: bool | None
    codec: str
    pix_fmt_in: str | None
    pix_fmt_out: str | None
    regions: int
    frames: int
    planes: tuple[PlaneCheck, ...]
    detail: str

    @property
    def changed(self) -> int:
        return sum(p.changed for p in self.planes)


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify_files`` found; ``ok`` is False when any check failed."""

    input: str
    output: str
    frames: FrameCheck
    timestamps: TimestampCheck
    audio: tuple[AudioStreamCheck, ...]
    samples: SampleCheck
    stats_given: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def checks(self) -> tuple[tuple[str, Status], ...]:
        return (
            ("frames", self.frames.status),
            ("timestamps", self.timestamps.status),
            *((f"audio {a.index_in}", a.status) for a in self.audio),
            ("samples", self.samples.status),
        )

    @property
    def ok(self) -> bool:
        return all(status != "failed" for _, status in self.checks)

    @property
    def failures(self) -> list[str]:
        """One line per failed check, saying what differs."""
        out = []
        if self.frames.status == "failed":
            out.append(f"frames: {self.frames.detail}")
        if self.timestamps.status == "failed":
            out.append(f"timestamps: {self.timestamps.detail}")
        out += [f"audio stream {a.index_in}: {a.detail}" for a in self.audio if a.status == "failed"]
        if self.samples.status == "failed":
            out.append(f"samples: {self.samples.detail}")
        return out

    def to_dict(self) -> dict[str, Any]:
        s = self.samples
        return {
            "input": self.input,
            "output": self.output,
            "ok": self.ok,
            "stats_given": self.stats_given,
            "frames": _plain(self.frames),
            "timestamps": {**_plain(self.timestamps), "examples": [list(e) for e in self.timestamps.examples]},
            "audio": [_plain(a) for a in self.audio],
            "samples": {**_plain(s), "changed": s.changed, "planes": [_plain(p) for p in s.planes]},
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """A few lines for people: one per check."""
        lines = [f"{self.output} against {self.input}: {'ok' if self.ok else 'FAILED'}"]
        lines.append(f"  frames: {self.frames.status}: {self.frames.detail}")
        lines.append(f"  timestamps: {self.timestamps.status}: {self.timestamps.detail}")
        if not self.audio:
            lines.append("  audio: none in the input")
        for a in self.audio:
            lines.append(f"  audio stream {a.index_in}: {a.status}: {a.detail}")
        lines.append(f"  samples outside the faces: {self.samples.status}: {self.samples.detail}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _plain(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


# -- the stats of the run ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What verify needs from the stats JSON of the run that made the output."""

    regions: dict[int, list[tuple[int, int, int, int]]]
    region_count: int
    deinterlace: str | None  # the filter chain the source ran; None: frames as decoded
    crf: int | None
    upscale: int
    output: str | None
    annotate: bool = False  # the run drew the faces found (a preview) instead of restoring them


def load_stats(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The stats JSON (``--stats-json``) at ``path``; InputError when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--stats {p}: no such file; give the --stats-json file of the run that made OUT") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"--stats {p}: not a JSON file ({e})") from e
    if not isinstance(data, dict):
        raise InputError(f"--stats {p}: not the --stats-json of a run (a JSON object with stage_stats)")
    return data


def run_facts(stats: dict[str, Any]) -> RunFacts:
    """The paste regions, deinterlacing, crf and upscale the run recorded; UsageError when they are missing."""
    if "stage_stats" not in stats and isinstance(stats.get("stats"), dict):
        stats = stats["stats"]  # a report that holds the run's stats
    stage = stats.get("stage_stats")
    if not isinstance(stage, dict):
        raise UsageError("the stats have no stage_stats: give the --stats-json file of the run that made OUT")
    restore = stage.get("restore") or {}
    table = restore.get("paste_regions")
    regions: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    count = 0
    if table is None and restore:
        raise UsageError("the stats have no stage_stats.restore.paste_regions: they come from an older version")
    if table is not None:
        columns = list(table.get("columns", ()))
        want = ["frame", "x0", "y0", "x1", "y1"]
        if columns != want:
            raise UsageError(f"stage_stats.restore.paste_regions has columns {columns}; expected {want}")
        for frame, x0, y0, x1, y1 in table.get("rows", ()):
            regions[int(frame)].append((int(x0), int(y0), int(x1), int(y1)))
            count += 1
    source = stage.get("source") or {}
    deint = (source.get("deinterlace") or {}).get("filter")
    config = stats.get("config") or {}
    crf = (config.get("io") or {}).get("crf")
    upscale = int((config.get("restore") or {}).get("upscale") or 1)
    annotate = bool(config.get("annotate")) or ("restore" not in stage and "annotate" in stage)
    return RunFacts(dict(regions), count, deint, crf, upscale, stats.get("output"), annotate)


# -- the checks ------------------------------------------------------------------------------------


def verify_files(
    input: str | os.PathLike[str], output: str | os.PathLike[str], stats: dict[str, Any] | None = None
) -> Verification:
    """Compare ``output`` with the ``input`` it was made from (see the module doc).

    stats: the ``--stats-json`` data of the run that made ``output`` (paste regions,
    deinterlacing, crf); without it the samples are not compared.
    """
    info_in, info_out = probe(input), probe(output)
    facts = run_facts(stats) if stats is not None else None
    notes: list[str] = []
    if facts is not None and facts.output and Path(facts.output).name != info_out.path.name:
        notes.append(f"the stats name {facts.output} as their output, not {info_out.path.name}")
    reason = _sample_reason(info_in, info_out, facts)
    lossless = _lossless(info_out, facts)
    compare = reason is None and facts is not None
    times_in: list[float] = []
    times_out: list[float] = []
    planes: _PlaneTally | None = None
    with VideoReader(info_in.path, info=info_in) as rin, VideoReader(info_out.path, info=info_out) as rout:
        frames_in, frames_out = iter(rin), iter(rout)
        for index, (a, b) in enumerate(_pairs(frames_in, frames_out, times_in, times_out)):
            if not compare or a is None or b is None:
                continue
            assert isinstance(a.image, Picture) and isinstance(b.image, Picture)
            if planes is None:
                if a.image.format.name != b.image.format.name:
                    reason = f"the output is {b.image.format.name}, the input {a.image.format.name}"
                    compare = False
                    continue
                planes = _PlaneTally(a.image.format)
            assert facts is not None
            planes.add(a.image, b.image, facts.regions.get(index, ()))
    frames = _frame_check(len(times_in), len(times_out), facts)
    log.info("verify frames: %s: %s", frames.status, frames.detail)
    if frames.status == "failed" and reason is None:
        reason = "the frame counts differ"
    starts_at = None
    if "mxf" in info_out.format.split(",") and times_in and times_out:
        # MXF counts edit units from 0: no start offset is stored, so times are compared from the first frame
        shift = times_out[0] - times_in[0]
        if shift:
            notes.append(f"MXF starts at 0: output times compared from the first frame ({shift:+.3f} s apart)")
            times_out = [t - shift for t in times_out]
            starts_at = times_in[0]  # the writer cut the audio before it, to keep it in sync
    timestamps = _timestamp_check(times_in, times_out, facts)
    log.info("verify timestamps: %s: %s", timestamps.status, timestamps.detail)
    audio = audio_checks(info_in, info_out, starts_at)
    for a in audio:
        log.info("verify audio stream %d: %s: %s", a.index_in, a.status, a.detail)
    samples = _sample_check(info_in, info_out, facts, planes, lossless, reason)
    log.info("verify samples: %s: %s", samples.status, samples.detail)
    return Verification(
        str(info_in.path), str(info_out.path), frames, timestamps, audio, samples, facts is not None, tuple(notes)
    )


def _pairs(
    frames_in: Iterator[Any], frames_out: Iterator[Any], times_in: list[float], times_out: list[float]
) -> Iterator[tuple[Any, Any]]:
    """Frames of both files side by side (None past the end of the shorter), their times recorded."""
    while True:
        a = next(frames_in, None)
        b = next(frames_out, None)
        if a is None and b is None:
            return
        if a is not None:
            times_in.append(float(Fraction(a.pts) * a.time_base))
        if b is not None:
            times_out.append(float(Fraction(b.pts) * b.time_base))
        yield a, b


def _sample_reason(info_in: VideoInfo, info_out: VideoInfo, facts: RunFacts | None) -> str | None:
    """Why the samples cannot be compared, known before decoding; None when they can."""
    if facts is None:
        return "no stats given (--stats: the --stats-json of the run), so the paste regions are unknown"
    if facts.deinterlace:
        return f"the run deinterlaced ({facts.deinterlace}): the output's frames are not the input's"
    if facts.annotate:
        return "the run annotated (drew boxes and landmarks over the frames): there are no paste regions"
    if facts.upscale != 1 or info_in.size != info_out.size:
        return f"the output is {info_out.width}x{info_out.height}, the input {info_in.width}x{info_in.height}"
    if info_in.pix_fmt and info_out.pix_fmt and info_in.pix_fmt != info_out.pix_fmt:
        from panini_video.io.picture import native_format

        if native_format(info_in.pix_fmt) != native_format(info_out.pix_fmt):
            return f"the output is {info_out.pix_fmt}, the input {info_in.pix_fmt}"
    return None


def _lossless(info_out: VideoInfo, facts: RunFacts | None) -> bool | None:
    """Whether the output's codec gives back the samples it was given (None: cannot tell without stats)."""
    if info_out.codec in LOSSLESS_CODECS:
        return True
    if info_out.codec in CRF_LOSSLESS_CODECS:
        return None if facts is None else facts.crf == 0
    return False


def _frame_check(n_in: int, n_out: int, facts: RunFacts | None) -> FrameCheck:
    if facts is not None and facts.deinterlace:
        detail = f"{n_out} out of {n_in} decoded; not comparable: the run deinterlaced ({facts.deinterlace})"
        return FrameCheck("not comparable", n_in, n_out, detail)
    if n_in == n_out:
        return FrameCheck("ok", n_in, n_out, f"{n_out} frames, as in the input")
    what = f"{n_in - n_out} lost" if n_out < n_in else f"{n_out - n_in} extra"
    return FrameCheck("failed", n_in, n_out, f"the input has {n_in} frames, the output {n_out} ({what})")


def _timestamp_check(times_in: list[float], times_out: list[float], facts: RunFacts | None) -> TimestampCheck:
    n = min(len(times_in), len(times_out))
    if facts is not None and facts.deinterlace:
        return TimestampCheck("not comparable", 0, 0, 0.0, (), f"the run deinterlaced ({facts.deinterlace})")
    if n == 0:
        return TimestampCheck("failed", 0, 0, 0.0, (), "no frame to compare")
    a = np.asarray(times_in, np.float64)
    gaps = np.diff(a)
    gaps = np.where(gaps > 0, gaps, np.inf)
    # each frame's tolerance: half the shorter of its gaps to the frames around it
    left = np.concatenate([[np.inf], gaps])
    right = np.concatenate([gaps, [np.inf]])
    half = 0.5 * np.minimum(left, right)
    half = np.where(np.isfinite(half), half, 0.02)  # a one-frame input: 20 ms
    offsets = np.abs(np.asarray(times_out[:n]) - a[:n])
    bad = np.flatnonzero(offsets > half[:n] + 1e-9)
    examples = tuple((int(i), round(times_in[i], 6), round(times_out[i], 6)) for i in bad[:MAX_EXAMPLES])
    worst = float(offsets.max()) if n else 0.0
    extra = "" if len(times_in) == len(times_out) else f" (the first {n}: the counts differ)"
    if len(bad):
        listed = ", ".join(f"frame {i}: {t_in:.4f} s -> {t_out:.4f} s" for i, t_in, t_out in examples)
        detail = f"{len(bad)} of {n} frames are off by more than half a frame{extra}: {listed}"
        return TimestampCheck("failed", n, len(bad), worst, examples, detail)
    detail = f"{n} frames compared{extra}, each within half a frame (largest offset {worst * 1000:.3f} ms)"
    return TimestampCheck("ok", n, 0, worst, (), detail)


# -- audio -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _AudioTally:
    """One audio stream's packets: count, times (seconds), the span they cover, a hash of their bytes."""

    codec: str
    tick: Fraction  # the stream's time base: the finest time it stores
    packets: int = 0
    times: list[float] = field(default_factory=list)
    start: Fraction | None = None
    end: Fraction | None = None
    digest: Any = field(default_factory=hashlib.sha256)

    @property
    def span(self) -> float:
        """Seconds from the first packet's start to the last one's end."""
        return 0.0 if self.start is None or self.end is None else float(self.end - self.start)

    def add(self, pkt: Any) -> None:
        self.packets += 1
        self.digest.update(bytes(pkt))
        ts = pkt.pts if pkt.pts is not None else pkt.dts
        if ts is None or pkt.time_base is None:
            return
        t = ts * Fraction(pkt.time_base)
        end = t + (pkt.duration or 0) * Fraction(pkt.time_base)
        self.times.append(float(t))
        self.start = t if self.start is None else min(self.start, t)
        self.end = end if self.end is None else max(self.end, end)


def _audio_tallies(path: Path) -> dict[int, _AudioTally]:
    with open_input(path) as container:
        streams = list(container.streams.audio)
        tallies = {
            s.index: _AudioTally(s.codec_context.name, Fraction(s.time_base or Fraction(1, 1000))) for s in streams
        }
        if not streams:
            return tallies
        for pkt in container.demux(*streams):
            if pkt.size:
                tallies[pkt.stream.index].add(pkt)
    return tallies


def audio_checks(
    info_in: VideoInfo, info_out: VideoInfo, starts_at: float | None = None
) -> tuple[AudioStreamCheck, ...]:
    """Each input audio stream against the output's stream in the same place (the writer keeps their order).

    A copied stream must have the same packets (count and bytes) at the same times, each within
    the coarser of the two time bases (Matroska stores milliseconds), so the same span; a
    transcoded one must cover the same span within 0.1 s and 1 %. starts_at: the input time the
    output's 0 stands for (MXF: its first frame's), before which the writer cut the audio off.
    """
    t_in, t_out = _audio_tallies(info_in.path), _audio_tallies(info_out.path)
    outs = list(t_out.items())
    checks = []
    for k, (index, a) in enumerate(t_in.items()):
        if k >= len(outs):
            detail = f"{a.codec}, {a.packets} packets: missing from the output"
            checks.append(
                AudioStreamCheck("failed", index, None, a.codec, None, a.packets, 0, a.span, 0.0, False, None, detail)
            )
            continue
        out_index, b = outs[k]
        copied = a.codec == b.codec
        same = a.digest.digest() == b.digest.digest() if copied else None
        counts = f"{a.packets} packets over {a.span:.3f} s in, {b.packets} over {b.span:.3f} s out"
        status: Status = "ok"
        if copied:
            tick = float(max(a.tick, b.tick))
            off = _largest_offset(a.times, b.times)
            problems = []
            if a.packets != b.packets:
                problems.append("other packet counts")
            elif not same:
                problems.append("other bytes")
            if off is None or off > tick + 1e-9:
                problems.append("packets at other times" + ("" if off is None else f" (up to {off * 1000:.3f} ms)"))
            if abs(a.span - b.span) > 2 * tick + 1e-9:
                problems.append("another span")
            if problems:
                status = "failed"
                detail = f"{a.codec} copied, but {counts}: {', '.join(problems)}"
            else:
                detail = f"{a.codec} copied: {counts}, the same bytes at the same times"
        else:
            span = a.span
            if starts_at is not None and a.start is not None and a.end is not None:
                span = float(a.end) - max(float(a.start), starts_at)  # what is left after the cut
                counts += f" ({span:.3f} s of it from the first frame on)"
            if abs(span - b.span) > 0.1 + 0.01 * span:
                status = "failed"
            detail = f"{a.codec} -> {b.codec} (transcoded: its packets differ by nature): {counts}"
            if status == "failed":
                detail += "; the spans differ by more than 0.1 s and 1 %"
        checks.append(
            AudioStreamCheck(
                status, index, out_index, a.codec, b.codec, a.packets, b.packets, a.span, b.span, copied, same, detail
            )
        )
    return tuple(checks)


def _largest_offset(a: list[float], b: list[float]) -> float | None:
    """The largest time difference between packets in the same place (None: the counts differ)."""
    if len(a) != len(b):
        return None
    if not a:
        return 0.0
    return float(np.abs(np.sort(np.asarray(a)) - np.sort(np.asarray(b))).max())


# -- samples ---------------------------------------------------------------------------------------


def plane_names(fmt: PlaneFormat) -> tuple[str, ...]:
    names = ("G", "B", "R", "A") if fmt.rgb else ("Y", "Cb", "Cr", "A")
    return names[:1] if fmt.gray else names[: fmt.planes]


class _PlaneTally:
    """Samples compared, changed, and their squared error, per plane, outside the paste regions."""

    def __init__(self, fmt: PlaneFormat) -> None:
        self.format = fmt
        self.frames = 0
        self.compared = [0] * fmt.planes
        self.changed = [0] * fmt.planes
        self.squared = [0.0] * fmt.planes

    def add(self, a: Picture, b: Picture, regions: Sequence[tuple[int, int, int, int]]) -> None:
        self.frames += 1
        mask = region_mask(a.size, regions) if regions else None
        for i, (pa, pb) in enumerate(zip(a.planes, b.planes, strict=True)):
            keep: np.ndarray | None = None
            if mask is not None:
                m = mask if i in (0, 3) or self.format.rgb else chroma_mask(mask, self.format)
                keep = ~m[: pa.shape[0], : pa.shape[1]]
            diff = pa.astype(np.int32) - pb.astype(np.int32)
            if keep is not None:
                diff = diff[keep]
                self.compared[i] += int(keep.sum())
            else:
                self.compared[i] += diff.size
            nz = np.count_nonzero(diff)
            self.changed[i] += int(nz)
            if nz:
                self.squared[i] += float(np.square(diff, dtype=np.float64).sum())

    def planes(self) -> tuple[PlaneCheck, ...]:
        peak = float(2**self.format.bits - 1)
        out = []
        for name, n, changed, se in zip(
            plane_names(self.format), self.compared, self.changed, self.squared, strict=False
        ):
            psnr = None if changed == 0 or n == 0 else round(10 * math.log10(peak * peak / (se / n)), 3)
            out.append(PlaneCheck(name, n, changed, psnr))
        return tuple(out)


def _sample_check(
    info_in: VideoInfo,
    info_out: VideoInfo,
    facts: RunFacts | None,
    tally: _PlaneTally | None,
    lossless: bool | None,
    reason: str | None,
) -> SampleCheck:
    codec = info_out.codec
    regions = facts.region_count if facts is not None else 0
    if reason is not None or tally is None:
        why = reason or "no frame to compare"
        return SampleCheck(
            "not comparable",
            lossless,
            codec,
            info_in.pix_fmt,
            info_out.pix_fmt,
            regions,
            0,
            (),
            why,
        )
    planes = tally.planes()
    changed = sum(p.changed for p in planes)
    per_plane = ", ".join(f"{p.plane} {p.changed}" for p in planes)
    compared = sum(p.compared for p in planes)
    where = f"{changed} of the {compared} samples outside the {regions} paste regions of {tally.frames} frames differ"
    where += f" ({per_plane})"
    if lossless:
        status: Status = "ok" if changed == 0 else "failed"
        detail = f"{codec}{' at crf 0' if codec in CRF_LOSSLESS_CODECS else ''} is lossless: {where}"
        if changed:
            detail += "; they must be 0"
    else:
        worst = [p.psnr_db for p in planes if p.psnr_db is not None]
        psnr = (
            f"; PSNR {', '.join(f'{p.plane} {p.psnr_db} dB' for p in planes if p.psnr_db is not None)}" if worst else ""
        )
        status = "info"
        why = "crf is not 0" if codec in CRF_LOSSLESS_CODECS else "a lossy codec"
        detail = f"not bit-exact: {codec} ({why}) changes samples by design; information only: {where}{psnr}"
    return SampleCheck(
        status, lossless, codec, info_in.pix_fmt, info_out.pix_fmt, regions, tally.frames, planes, detail
    )


# -- after a run -----------------------------------------------------------------------------------


def verify_outputs(
    input: str | os.PathLike[str], outputs: Sequence[str | os.PathLike[str]], stats: dict[str, Any]
) -> list[Verification]:
    """Verify each file a run wrote against its input, with the run's stats (``RunReport.to_dict()``)."""
    results = []
    for output in outputs:
        result = verify_files(input, output, stats)
        log.info("verify %s: %s", output, "ok" if result.ok else "FAILED: " + "; ".join(result.failures))
        results.append(result)
    return results


class VerificationError(ProcessingError):
    """An output failed ``verify`` (exit 5): the same settings would make the same output, so it is not retried."""


def require_ok(results: Sequence[Verification]) -> None:
    """VerificationError naming every failed check; the outputs stay where they are, for inspection."""
    failed = [r for r in results if not r.ok]
    if failed:
        text = "; ".join(f"{r.output}: " + ", ".join(r.failures) for r in failed)
        raise VerificationError(
            f"verify: {text} (the output is kept for inspection; run panini-video verify for details)"
        )
