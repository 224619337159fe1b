"""Carry the audio (and subtitles, chapters, timecode: ``io.carry``) of the input into the output,
in step with the video as it is written.

Each audio stream is copied packet by packet (no decoding, bytes and timestamps unchanged) when
the output container accepts its codec, else decoded and re-encoded with the container's
audio encoder (logged). Packets are read lazily from their own demuxer and muxed up to the
time of the video frame just written, so memory stays flat whatever the length: nothing is
buffered beyond what FFmpeg's interleaver holds while the video encoder's lookahead catches up.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import numpy as np

from panini_video.io.carry import SubtitleConverter, copy_chapters, plan_carry
from panini_video.io.probe import ffmpeg_url, open_input

log = logging.getLogger(__name__)

_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_FRAME_SIZES = {"aac": 1024, "libopus": 960}  # samples per frame the encoder wants
# tags FFmpeg writes itself or that describe the input's encoding, not its content
DROPPED_TAGS = frozenset({"encoder", "vendor_id", "duration", "major_brand", "minor_version", "compatible_brands"})


@dataclass(slots=True)
class _Route:
    """Where the packets of one input audio stream go."""

    source: av.audio.stream.AudioStream
    target: av.audio.stream.AudioStream
    transcode: bool
    resampler: av.AudioResampler | None = None  # to the encoder's sample format and frame size


class AudioRemuxer:
    """Copy or transcode the audio streams of ``source`` into ``output`` in time order."""

    def __init__(self, source: Path, output: av.container.OutputContainer, fallback_codec: str) -> None:
        self.source = source
        self._input = open_input(source)
        self._routes: dict[int, _Route] = {}
        self._subtitles: dict[int, tuple[av.stream.Stream, SubtitleConverter | None]] = {}
        self.packets_copied = 0
        self.packets_transcoded = 0
        self.subtitle_packets = 0
        # seconds of the input's audio before the output's time 0, cut off (MXF: see ``start_at``)
        self.offset = 0.0
        try:
            supported = output.supported_codecs
            self.carry = plan_carry(self._input, output)
            if self.carry.warning:
                log.warning("%s: %s", source, self.carry.warning)
            subtitle_routes = {r.index: r for r in self.carry.subtitles}
            for s in self._input.streams:
                if isinstance(s, av.AudioStream):
                    self._routes[s.index] = self._add_route(s, output, supported, fallback_codec)
                elif s.index in subtitle_routes:
                    self._subtitles[s.index] = self._add_subtitle(s, output, subtitle_routes[s.index].target)
                else:
                    s.discard = av.stream.Discard.all
            copy_chapters(self._input, output)
            if self.carry.timecode and "timecode" not in output.metadata:
                output.metadata["timecode"] = self.carry.timecode
        except BaseException:
            self._input.close()
            raise
        wanted = [r.source for r in self._routes.values()] + [s for s, _ in self._subtitles.values()]
        wanted = [self._input.streams[i] for i in sorted(s.index for s in wanted)]
        self._packets: Iterator[av.Packet] | None = self._input.demux(*wanted) if wanted else None
        self._pending: av.Packet | None = None

    def _add_route(
        self,
        s: av.audio.stream.AudioStream,
        output: av.container.OutputContainer,
        supported: set[str],
        fallback_codec: str,
    ) -> _Route:
        name = s.codec_context.name
        mxf = output.format.name == "mxf"  # FFmpeg's MXF muxer takes 48 kHz audio only
        if (
            name in supported
            and not (mxf and s.codec_context.sample_rate != 48000)
            and copy_works(self.source, s.index, output.format.name)
        ):
            target = output.add_stream_from_template(s)
            transcode = False
        else:
            rate = s.codec_context.sample_rate
            if ("opus" in fallback_codec and rate not in _OPUS_RATES) or mxf:
                rate = 48000
            added = output.add_stream(fallback_codec, rate=rate)
            if not isinstance(added, av.AudioStream):
                raise ValueError(f"{fallback_codec} is not an audio encoder")
            target = added
            layout = s.codec_context.layout
            if layout.name.endswith("channels"):  # an unordered layout (PCM in Matroska): the usual one
                layout = av.AudioLayout(_USUAL_LAYOUTS.get(s.codec_context.channels, "stereo"))
            target.layout = layout
            transcode = True
            encoder = av.Codec(fallback_codec, "w")
            sample_fmt = (encoder.audio_formats or (None,))[0]
            resampler = av.AudioResampler(
                format=sample_fmt,
                layout=layout,
                rate=rate,
                frame_size=_FRAME_SIZES.get(fallback_codec),
            )
            log.warning(
                "%s: audio stream %d (%s) cannot go into %s as it is; transcoding to %s",
                self.source,
                s.index,
                name,
                output.format.name,
                fallback_codec,
            )
        target.metadata.update({k: v for k, v in s.metadata.items() if k.lower() not in DROPPED_TAGS})
        if s.language:
            target.metadata["language"] = s.language
        return _Route(source=s, target=target, transcode=transcode, resampler=resampler if transcode else None)

    def _add_subtitle(
        self, s: av.stream.Stream, output: av.container.OutputContainer, target_codec: str | None
    ) -> tuple[av.stream.Stream, SubtitleConverter | None]:
        converter = None
        if target_codec is None:
            target = output.add_stream_from_template(s)
        else:
            target = output.add_stream(target_codec)
            target.time_base = s.time_base
            converter = SubtitleConverter(s, target)  # type: ignore[arg-type]
            log.info("%s: subtitle stream %d converted to %s", self.source, s.index, target_codec)
        target.metadata.update({k: v for k, v in s.metadata.items() if k.lower() not in DROPPED_TAGS})
        if s.language:
            target.metadata["language"] = s.language
        return target, converter

    def start_at(self, seconds: float) -> None:
        """Make the input's time ``seconds`` the output's time 0: audio before it is cut off, to the sample.

        For containers that hold no start offset (MXF counts every stream from 0): their video
        starts with its first frame, so the audio must start at that frame's time to stay in sync.
        """
        self.offset = max(0.0, float(seconds))

    @property
    def has_audio(self) -> bool:
        return bool(self._routes)

    def pump(self, output: av.container.OutputContainer, until: float | None) -> None:
        """Mux the packets whose time is at most ``until`` seconds (all when None)."""
        if self._packets is None:
            return
        while True:
            pkt = self._pending
            self._pending = None
            if pkt is None:
                pkt = next(self._packets, None)
                if pkt is None:
                    self._packets = None
                    return
            if until is not None:
                t = _packet_time(pkt)
                if t is not None and t > until:
                    self._pending = pkt
                    return
            self._route(output, pkt)

    def _route(self, output: av.container.OutputContainer, pkt: av.Packet) -> None:
        if pkt.stream.index in self._subtitles:
            if pkt.size == 0:
                return
            target, converter = self._subtitles[pkt.stream.index]
            out = converter.convert(pkt) if converter is not None else pkt
            if out is not None:
                out.stream = target
                output.mux(out)
                self.subtitle_packets += 1
            return
        route = self._routes[pkt.stream.index]
        if route.transcode:
            frames: list[av.AudioFrame | None] = list(route.source.decode(pkt))  # an empty packet flushes
            if pkt.size == 0:
                frames.append(None)  # and then the resampler gives its last partial frame
            for frame in frames:
                assert route.resampler is not None
                for ready in route.resampler.resample(frame):  # pts carried over, in samples
                    ready = self._shifted(ready)
                    if ready is None:
                        continue
                    for out in route.target.encode(ready):
                        output.mux(out)
                        self.packets_transcoded += 1
            return
        if pkt.size == 0:  # demux's end-of-stream marker, nothing to copy
            return
        if self.offset and pkt.time_base is not None:  # copied whole: packets before the start are left out
            shift = round(self.offset / pkt.time_base)
            if pkt.pts is not None and pkt.pts < shift:
                return
            pkt.pts = None if pkt.pts is None else pkt.pts - shift
            pkt.dts = None if pkt.dts is None else pkt.dts - shift
        pkt.stream = route.target
        output.mux(pkt)
        self.packets_copied += 1

    def _shifted(self, frame: av.AudioFrame) -> av.AudioFrame | None:
        """A decoded frame moved by ``offset`` (its samples before the start cut off); None: all before it."""
        if not self.offset or frame.pts is None:
            return frame
        rate = frame.sample_rate
        cut = round(self.offset * rate)  # the resampler's pts count samples at ``rate``
        if frame.pts + frame.samples <= cut:
            return None
        if frame.pts >= cut:
            frame.pts -= cut
            return frame
        skip = cut - frame.pts
        samples = frame.to_ndarray()
        channels = len(frame.layout.channels)
        kept = samples[:, skip:] if frame.format.is_planar else samples[:, skip * channels :]
        out = av.AudioFrame.from_ndarray(np.ascontiguousarray(kept), format=frame.format.name, layout=frame.layout.name)
        out.sample_rate = rate
        out.pts = 0
        out.time_base = frame.time_base
        return out

    def finish(self, output: av.container.OutputContainer) -> None:
        """Mux what is left, flush the encoders, release the input."""
        try:
            self.pump(output, None)
            for route in self._routes.values():
                if route.transcode:
                    for out in route.target.encode(None):
                        output.mux(out)
                        self.packets_transcoded += 1
        finally:
            self.close()

    def close(self) -> None:
        """Release the source; the demuxer is closed before its container."""
        packets, self._packets = self._packets, None
        if packets is not None:
            getattr(packets, "close", lambda: None)()
        self._input.close()


def copy_works(source: Path, index: int, format_name: str) -> bool:
    """Whether the muxer takes stream ``index`` of ``source`` as it is: a header, one packet and
    the trailer written to memory (MP4 accepts PCM in its header and refuses it in the trailer)."""
    try:
        with av.open(ffmpeg_url(source), mode="r") as src:
            stream = src.streams[index]
            with av.open(io.BytesIO(), mode="w", format=format_name.split(",")[0]) as trial:
                target = trial.add_stream_from_template(stream)
                trial.start_encoding()
                for pkt in src.demux(stream):
                    if pkt.size:
                        pkt.stream = target
                        trial.mux(pkt)
                        break
    except (av.FFmpegError, ValueError, OSError) as e:
        log.debug("%s: stream %d cannot be copied into %s: %s", source, index, format_name, e)
        return False
    return True


def _packet_time(pkt: av.Packet) -> Fraction | float | None:
    ts = pkt.dts if pkt.dts is not None else pkt.pts
    if ts is None or pkt.time_base is None:
        return None
    return float(ts * pkt.time_base)
