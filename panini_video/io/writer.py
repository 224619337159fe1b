"""Encode ``Frame`` records into a video file with the input's timestamps, rotation, tags and audio.

The file is written under a hidden temporary name next to the target (same extension, so
FFmpeg picks the same muxer) and renamed onto the target only once complete; an error, Ctrl-C
or ``abort()`` removes it, so nothing that looks finished is ever left behind.

Timing: the output video stream gets the input's time base and every frame keeps its input
pts, so variable frame rates stay variable and 30000/1001 stays 30000/1001. MP4/MOV store
timestamps in a track timescale (FFmpeg uses the time base's denominator, doubled until it
reaches 10000) so each pts survives exactly; a first pts above zero, or B-frame reordering
delay, is written as an edit list, which FFmpeg applies on reading.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.container
import numpy as np

from panini_video.config import IOConfig
from panini_video.errors import OutputError, PaniniError
from panini_video.io.audio import DROPPED_TAGS, AudioRemuxer
from panini_video.io.colour import HD_LINES, RGB_MATRIX, Colour, stream_colour
from panini_video.io.encoder import EncoderPlan, plan_encoder
from panini_video.io.hdr import carry_hdr
from panini_video.io.picture import Picture, plane_format, sws_args
from panini_video.io.probe import VideoInfo, ffmpeg_url
from panini_video.outputs import Output, check_outputs, commit, temp_path
from panini_video.records import Frame

log = logging.getLogger(__name__)

_FROM_INPUT: object = object()  # default of ``audio_from``: the input described by ``info``


class VideoWriter:
    """Write frames to ``path``; audio comes from ``audio_from`` (the input by default, None: none).

    size: (width, height) of the frames to write when it differs from the input's (upscaled);
    plan: the encoder plan when the caller has made it already (``run.sinks.FileSink``).

    Frames that are ``Picture`` records in the plan's pixel format go to the encoder as they are
    (their samples untouched); a picture in another format is converted by swscale in one call;
    RGB frames are converted with the stream's matrix and range. The output is tagged with the
    input's colour, resolved (``io.colour``): an untagged input gives an explicitly tagged output.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: VideoInfo,
        config: IOConfig | None = None,
        *,
        audio_from: str | os.PathLike[str] | None | object = _FROM_INPUT,
        size: tuple[int, int] | None = None,
        plan: EncoderPlan | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = info
        self.config = config or IOConfig()
        self.plan: EncoderPlan = plan or plan_encoder(self.path, self.config, size or info.size)
        self.frames_written = 0
        self._last_pts: int | None = None
        self._closed = False
        self._audio: AudioRemuxer | None = None
        self._check_target()
        self.colour = output_colour(stream_colour(info), self.plan.pix_fmt, (size or info.size)[1])
        self._color_args = sws_args(None, self.colour)
        self.temp_path = temp_path(self.path)
        try:
            options = dict(self.plan.container_options)
            if self.path.suffix.lower() in (".mp4", ".m4v"):
                options["write_tmcd"] = "1"  # a timecode tag (if any) becomes a tmcd track, as in .mov
            self._container = av.open(ffmpeg_url(self.temp_path), mode="w", container_options=options)
        except (av.FFmpegError, OSError) as e:
            self._remove_temp()
            raise OutputError(f"{self.path}: cannot be created ({getattr(e, 'strerror', None) or e})") from e
        try:
            self._stream = self._add_video_stream()
            self._copy_metadata()
            source = info.path if audio_from is _FROM_INPUT else audio_from
            if source is not None:
                try:
                    self._audio = AudioRemuxer(Path(source), self._container, self.plan.audio_codec)  # type: ignore[arg-type]
                except (av.FFmpegError, ValueError) as e:
                    if isinstance(e, PaniniError):
                        raise
                    raise OutputError(f"{self.path}: cannot carry the audio of {source} ({e})") from e
        except BaseException:
            self.abort()
            raise

    def _check_target(self) -> None:
        # the CLI has already applied the user's overwrite choice; here only what is never allowed
        check_outputs([Output(str(self.path), "OUT")], [self.info.path], overwrite="overwrite")

    def _add_video_stream(self) -> av.video.stream.VideoStream:
        plan, info = self.plan, self.info
        rate = info.frame_rate if info.frame_rate > 0 else Fraction(25)
        # the input's time base for both the codec and the stream: pts are copied, never re-derived;
        # MXF holds a constant frame rate only (its muxer takes no other time base): 1/fps, pts rescaled
        self.time_base = info.time_base
        self._starts_at_zero = self.path.suffix.lower() == ".mxf"  # no start offset: the first frame is at 0
        if self._starts_at_zero:
            self.time_base = mxf_time_base(self.path, info)
            rate = 1 / self.time_base
        options = carry_hdr(plan.codec, plan.options, info.hdr, self.path)  # HDR10 metadata, where it can go
        try:
            stream = self._container.add_stream(plan.codec, rate=rate, options=options)
        except (av.FFmpegError, ValueError) as e:
            raise OutputError(f"{self.path}: {self._container.format.name} cannot hold {plan.codec} ({e})") from e
        if not isinstance(stream, av.VideoStream):
            raise OutputError(f"{self.path}: {plan.codec} is not a video encoder")
        if plan.codec in ("libx264", "libx265"):
            # frame threads: more throughput than PyAV's default slice threads, a few frames of latency
            stream.codec_context.thread_type = "FRAME"
        stream.width, stream.height = plan.coded_size
        stream.pix_fmt = plan.pix_fmt
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        # tag the output as the input was tagged (resolved); RGB frames are converted with the same matrix
        cc = stream.codec_context
        if info.sample_aspect_ratio:  # anamorphic pixels stay anamorphic (upscaling keeps the shape)
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        c = self.colour
        cc.colorspace, cc.color_range = c.matrix, c.range
        cc.color_primaries, cc.color_trc = c.primaries, c.transfer
        return stream

    def _copy_metadata(self) -> None:
        tags = {k: v for k, v in self.info.metadata.items() if k.lower() not in DROPPED_TAGS}
        self._container.metadata.update(tags)
        vtags = self.info.video_stream.metadata if self.info.streams else {}
        self._stream.metadata.update(
            {k: v for k, v in vtags.items() if k.lower() not in DROPPED_TAGS and k.lower() != "rotate"}
        )

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: Frame) -> None:
        """Encode one frame at its own pts; audio up to its time is muxed alongside."""
        if self._closed:
            raise OutputError(f"{self.path}: write after close")
        w, h = frame.size
        if (w, h) != self.plan.size:
            raise ValueError(
                f"frame {frame.index} is {w}x{h}, the writer expects {self.plan.size[0]}x{self.plan.size[1]}"
            )
        pts = self._pts_of(frame)
        vf = self._video_frame(frame)
        vf.pts = pts
        vf.time_base = self.time_base
        try:
            for pkt in self._stream.encode(vf):
                self._container.mux(pkt)
            if self._audio is not None:
                if self.frames_written == 0 and self._starts_at_zero:
                    # the first frame is shown at 0 whatever its time: the audio starts there too
                    self._audio.start_at(float(pts * self.time_base))
                self._audio.pump(self._container, float(pts * self.time_base))
        except (av.FFmpegError, OSError) as e:
            self.abort()
            raise OutputError(
                f"{self.path}: writing frame {frame.index} failed ({getattr(e, 'strerror', None) or e})"
            ) from e
        self.frames_written += 1

    def _video_frame(self, frame: Frame) -> av.VideoFrame:
        """The frame as the encoder takes it: a picture as it is when its format is the plan's."""
        pic = frame.image
        if isinstance(pic, Picture) and not self.plan.padded:
            if pic.format.name == self.plan.pix_fmt:
                vf = pic.frame
                vf.pict_type = av.video.frame.PictureType.NONE  # the decoder's I/P/B is no order to the encoder
            else:
                vf = pic.frame.reformat(format=self.plan.pix_fmt, **sws_args(pic.colour, self.colour))
            return vf
        image = frame.rgb()
        if self.plan.padded:
            w, h = frame.size
            cw, ch = self.plan.coded_size
            image = np.pad(image, ((0, ch - h), (0, cw - w), (0, 0)), mode="edge")
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        return rgb.reformat(format=self.plan.pix_fmt, **self._color_args)

    def _pts_of(self, frame: Frame) -> int:
        """The frame's pts in the stream's time base (the input's; 1/fps in MXF); made strictly increasing."""
        pts = frame.pts
        if pts is not None and frame.time_base is not None and frame.time_base != self.time_base:
            pts = round(pts * frame.time_base / self.time_base)
        if pts is None:
            step = max(1, round(1 / (self.info.frame_rate * self.time_base))) if self.info.frame_rate else 1
            pts = 0 if self._last_pts is None else self._last_pts + step
        if self._last_pts is not None and pts <= self._last_pts:
            log.warning(
                "%s: frame %d pts %d not after %d; using %d",
                self.path,
                frame.index,
                pts,
                self._last_pts,
                self._last_pts + 1,
            )
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def close(self) -> None:
        """Flush the encoder and the audio, finish the file, and move it onto the target."""
        if self._closed:
            return
        try:
            for pkt in self._stream.encode(None):
                self._container.mux(pkt)
            if self._audio is not None:
                self._audio.finish(self._container)
            self._container.close()
            self._closed = True
            commit(self.temp_path, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, (av.FFmpegError, OSError)):
                raise OutputError(
                    f"{self.path}: finishing the file failed ({getattr(e, 'strerror', None) or e})"
                ) from e
            raise
        log.info("%s: wrote %d frames", self.path, self.frames_written)

    def abort(self) -> None:
        """Stop writing and remove the temporary file; the target is left as it was."""
        if self._audio is not None:
            try:
                self._audio.close()
            except Exception:  # noqa: BLE001 - cleaning up after a failure already being raised
                log.debug("closing the audio source failed", exc_info=True)
        if not self._closed and hasattr(self, "_container"):
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the container failed", exc_info=True)
        self._remove_temp()

    def _remove_temp(self) -> None:
        try:
            self.temp_path.unlink(missing_ok=True)
        except AttributeError:  # abort before the temp name existed
            pass
        except OSError as e:
            log.warning("could not remove %s: %s", self.temp_path, e)


def output_colour(colour: Colour, pix_fmt: str, height: int) -> Colour:
    """The colour an output in ``pix_fmt`` is tagged with: the input's, with a matrix when RGB becomes Y'CbCr."""
    fmt = plane_format(pix_fmt)
    rgb_out = fmt is not None and fmt.rgb
    if rgb_out:
        return dataclasses.replace(colour, matrix=RGB_MATRIX, range=2)
    if colour.matrix == RGB_MATRIX:
        return dataclasses.replace(colour, matrix=1 if height >= HD_LINES else 6, range=1)
    return colour


# the frame rates FFmpeg's MXF muxer writes (its content package rates; each one tried with DNxHR)
MXF_RATES = tuple(
    Fraction(n, d)
    for n, d in [(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48000, 1001), (48, 1), (50, 1)]
    + [(60000, 1001), (60, 1), (72, 1), (75, 1), (90, 1), (96, 1), (100, 1), (120000, 1001), (120, 1)]
)


def mxf_time_base(path: Path, info: VideoInfo) -> Fraction:
    """1/fps for an MXF output: the input's average rate, snapped to the MXF rate within 0.1 % of it.

    MXF stores one frame per edit unit at a constant rate, counted from 0: variable frame timing
    is not kept (frames are written one after another, which is logged), nor a first frame's
    time above 0; a rate MXF has no slot for is an OutputError naming the container that keeps it.
    """
    rate = info.frame_rate if info.frame_rate > 0 else Fraction(25)
    near = min(MXF_RATES, key=lambda r: abs(r - rate))
    if abs(near - rate) > rate / 1000:
        known = ", ".join(f"{float(r):.3f}".rstrip("0").rstrip(".") for r in MXF_RATES)
        raise OutputError(f"{path}: MXF holds the frame rates {known}; the input is {float(rate):.3f} fps: write .mov")
    if info.base_rate and info.base_rate != info.frame_rate:
        log.warning(
            "%s: MXF holds a constant frame rate: frames are written one after another at %s fps; "
            "the input's variable frame timing is not kept (write .mov or .mkv to keep it)",
            path,
            near,
        )
    return 1 / near
