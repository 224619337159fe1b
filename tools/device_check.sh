#!/usr/bin/env bash
# The GPU machine's one check (issue 14). See DEVELOPERS.md for the whole procedure.
#
#   tools/device_check.sh --prepare   here, before the device call: fill wheels/ with what the GPU
#                                     image lacks (PyAV, platformdirs) and wheels/testdata with the
#                                     clips the check uses; prints what will travel (limit 64 MiB)
#   tools/device_check.sh DIR [ARGS]  on the GPU machine: install the missing packages from wheels/
#                                     and the project (--no-deps), then `panini-video bench gpu
#                                     --out DIR ARGS` under a time limit (LIMIT_S, default 540 s)
#
# Nothing is fetched on the GPU machine (it reaches no network); its own torch is used, never ours.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=$ROOT/wheels
# Clips and files the check reads; MANIFEST.md is what tests/conftest.py looks for.
DATA_FILES="MANIFEST.md videos/crowd_multiface_1080p.mp4 videos/talking_720p_silent_audio.mp4
videos/lowq_real_388x512_noaudio.mp4 videos/talking_vfr_700.mp4 weights/retinaface_mobilenet0.25_Final.pth"
# import name:distribution name of every non-torch dependency (pytest for the cuda tests)
DEPENDENCIES="av:av platformdirs:platformdirs numpy:numpy cv2:opencv_python_headless safetensors:safetensors
tqdm:tqdm pytest:pytest"

prepare() {
    local py=${PYTHON:-$ROOT/.venv/bin/python} data=${PANINI_TESTDATA:-$ROOT/../shared/testdata}
    local av_version
    av_version=$("$py" -c 'import av; print(av.__version__)') || exit 1
    mkdir -p "$WHEELS"
    # Only what the image lacks (KINDS.md lists its packages): the full set is about 105 MB.
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" "av==$av_version" platformdirs || exit 1
    for f in $DATA_FILES; do
        mkdir -p "$WHEELS/testdata/$(dirname "$f")"
        cp "$data/$f" "$WHEELS/testdata/$f" || exit 1
    done
    local carried tree
    carried=$(du -sb "$WHEELS" | cut -f1)
    tree=$(cd "$ROOT" && { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb 2>/dev/null |
        awk '$2 == "total" {s += $1} END {print s + 0}')
    echo "wheels/: $((carried / 1048576)) MiB; working tree: $((tree / 1048576)) MiB;" \
        "together $(((carried + tree) / 1048576)) MiB of the 64 MiB a call may carry"
    ls -l "$WHEELS"
    if [ $((carried + tree)) -gt $((64 * 1048576)) ]; then
        echo "over the limit: drop wheels of packages the image has (see DEVELOPERS.md)" >&2
        exit 1
    fi
}

check() {
    local dir=$1
    shift
    local py=${PYTHON:-python3} site=/tmp/panini-site
    mkdir -p "$dir"
    local log=$dir/install.txt
    {
        date -u
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv || true
        "$py" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, torch.version.cuda, torch.cuda.is_available())'
    } >"$log" 2>&1
    mkdir -p "$site"
    for pair in $DEPENDENCIES; do
        local module=${pair%%:*} dist=${pair#*:} wheel
        if "$py" -c "import $module" 2>/dev/null; then
            continue
        fi
        wheel=$(ls "$WHEELS/$dist"-*.whl 2>/dev/null | head -n 1)
        if [ -z "$wheel" ]; then
            echo "$module is missing and wheels/ has no $dist wheel: run tools/device_check.sh --prepare here" | tee -a "$log" >&2
            exit 3
        fi
        echo "installing $wheel" >>"$log"
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$wheel" >>"$log" 2>&1 || exit 3
    done
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    # The project without its pins (torch==2.13.0 is not the image's torch; the image's is used).
    if ! "$py" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$site" "$ROOT" >>"$log" 2>&1; then
        echo "project install failed; running it from the checkout" >>"$log"
        export PYTHONPATH=$ROOT:$PYTHONPATH
    fi
    [ -d "$WHEELS/testdata" ] && export PANINI_TESTDATA=$WHEELS/testdata
    export PANINI_VIDEO_HOME=${PANINI_VIDEO_HOME:-/tmp/panini-home} PYTHONUNBUFFERED=1
    cd "$ROOT" || exit 1
    timeout --kill-after=15 "${LIMIT_S:-540}" "$py" -m panini_video bench gpu --out "$dir" "$@"
    local rc=$?
    echo "bench gpu exit $rc" | tee -a "$log"
    return $rc
}

case "${1:-}" in
    --prepare) prepare ;;
    "" | -h | --help) sed -n '2,12p' "$0" && exit 2 ;;
    *) check "$@" ;;
esac
