#!/usr/bin/env bash
# The servers and clients the live-stream tests talk to on 127.0.0.1, from Debian's packages:
# GStreamer's RTSP server (its Python bindings live in the system python3), nginx with the RTMP
# module, srt-tools, the ffmpeg CLI (an independent reader), chromium (an HTML page, headless), mkvtoolnix (HDR metadata in a Matroska track).
# Installs what is missing (as root, or through sudo); does nothing when everything is there.
set -euo pipefail
packages=(
  gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gst-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav libnginx-mod-rtmp nginx-light srt-tools ffmpeg chromium mkvtoolnix
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "test-servers: no apt-get here; the live tests that need ${missing[*]} will skip" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "test-servers: installing ${missing[*]}" >&2
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
