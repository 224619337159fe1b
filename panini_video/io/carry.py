"""What of the input besides its video and audio goes into the output: subtitles, chapters, timecode.

Subtitle streams are copied packet by packet when the output container takes their codec;
text subtitles (subrip, ass, webvtt, mov_text) are converted when it takes another text codec
(subrip -> mov_text into MP4/MOV, mov_text -> subrip into Matroska, any text -> webvtt into
WebM): decoded to FFmpeg's ASS form and encoded again, so italics and bold survive. The
timecode is a tag (``timecode``) that the MOV and MP4 muxers turn into a ``tmcd`` track and
Matroska and MXF keep as it is. Whatever cannot go into the chosen container is named in one
warning line before the first frame (``CarryPlan.warning``), never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import av.container

TEXT_SUBTITLES = frozenset({"subrip", "ass", "ssa", "webvtt", "mov_text", "text"})
# the text subtitle codec each container wants when the input's cannot go in as it is
_TEXT_TARGET = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}
# containers that hold no subtitles or no chapters at all (FFmpeg's muxers)
_NO_SUBTITLES = frozenset({"mxf"})
_NO_CHAPTERS = frozenset({"mxf"})


@dataclass(frozen=True, slots=True)
class SubtitleRoute:
    """One input subtitle stream: copied (target None) or converted to the ``target`` codec."""

    index: int
    codec: str
    target: str | None


@dataclass(frozen=True, slots=True)
class CarryPlan:
    """What the output gets besides video and audio, and what it cannot take (``dropped``)."""

    subtitles: tuple[SubtitleRoute, ...]
    chapters: int
    timecode: str | None
    dropped: tuple[str, ...]

    @property
    def warning(self) -> str | None:
        """The one line naming what is not carried; None when everything is."""
        return f"not carried into the output: {'; '.join(self.dropped)}" if self.dropped else None


def muxer_name(output: av.container.OutputContainer) -> str:
    return output.format.name.split(",")[0]


def plan_carry(source: av.container.InputContainer, output: av.container.OutputContainer) -> CarryPlan:
    """Decide, from the open input and the output container, what is copied, converted or dropped."""
    muxer = muxer_name(output)
    supported = output.supported_codecs
    routes: list[SubtitleRoute] = []
    dropped: list[str] = []
    for s in source.streams:
        if s.type == "subtitle":
            name = s.codec_context.codec.canonical_name
            if muxer in _NO_SUBTITLES:
                dropped.append(f"subtitle stream {s.index} ({name}): {muxer} holds no subtitles")
            elif name in supported and (muxer != "webm" or name == "webvtt"):
                routes.append(SubtitleRoute(s.index, name, None))
            elif name in TEXT_SUBTITLES and muxer in _TEXT_TARGET:
                routes.append(SubtitleRoute(s.index, name, _TEXT_TARGET[muxer]))
            else:
                dropped.append(f"subtitle stream {s.index} ({name}): {muxer} takes no {name}; use .mkv")
        elif s.type == "data":
            if s.metadata.get("timecode") and muxer != "mxf" or s.codec_context is None:
                continue  # a tmcd track: its timecode is carried as the tag, the muxer writes its own
            dropped.append(f"data stream {s.index} ({s.codec_context.name if s.codec_context else 'data'})")
        elif s.type == "attachment" and muxer != "matroska":
            dropped.append(f"attachment {s.index} ({s.metadata.get('filename', 'unnamed')}): only .mkv holds them")
    chapters = len(source.chapters())
    if chapters and muxer in _NO_CHAPTERS:
        dropped.append(f"{chapters} chapters: {muxer} holds none")
        chapters = 0
    return CarryPlan(tuple(routes), chapters, find_timecode(source), tuple(dropped))


def find_timecode(source: av.container.InputContainer) -> str | None:
    """The input's start timecode: the container's tag, the video stream's, or a tmcd track's."""
    if source.metadata.get("timecode"):
        return source.metadata["timecode"]
    for s in source.streams:
        if s.type in ("video", "data") and s.metadata.get("timecode"):
            return s.metadata["timecode"]
    return None


def timecode_options(plan: CarryPlan, output: str) -> dict[str, str]:
    """Muxer options that write the timecode: MP4 writes a tmcd track only when asked."""
    return {"write_tmcd": "1"} if plan.timecode and output in ("mp4", "ipod") else {}


class SubtitleConverter:
    """Re-code one text subtitle stream (decoded to ASS, encoded with the target codec)."""

    def __init__(self, source: av.subtitles.stream.SubtitleStream, target: av.subtitles.stream.SubtitleStream) -> None:
        self.source, self.target = source, target
        # the encoders need an ASS header; the text decoders all make one
        target.codec_context.subtitle_header = source.codec_context.subtitle_header or _ASS_HEADER

    def convert(self, pkt: av.Packet) -> av.Packet | None:
        subtitles = self.source.codec_context.decode2(pkt)
        if subtitles is None or not list(subtitles):
            return None
        out = self.target.codec_context.encode_subtitle(subtitles)
        out.pts = out.dts = pkt.pts
        out.duration = pkt.duration
        out.time_base = pkt.time_base
        return out


_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
    b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    b"MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def copy_chapters(source: av.container.InputContainer, output: av.container.OutputContainer) -> None:
    """The input's chapters, times and titles as they are."""
    chapters = source.chapters()
    if chapters:
        output.set_chapters(chapters)
