"""``harness train``: train one architecture's network from scratch with a benchmark recipe."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

#: Offered on the command line (kept equal to the library's lists by a test).
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
RECIPES = ("01E", "12E", "90E", "200E")
SOURCES = ("official", "jpeg")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value}")
    return value


def register(groups: Any) -> None:
    """Add the ``train`` command to ``groups``."""
    cmd = groups.add_parser(
        "train",
        help="train an architecture's network from scratch with a benchmark recipe",
        description="Train the benchmark's network of ARCH with the recipe's SGD schedule and "
        "record what the benchmark records per epoch. The run lives in "
        "OUT/<space>-<index>-<data>-<recipe>-<source>-s<seed>/; run the same command again to "
        "resume a killed run (a finished one is only summarised).",
    )
    cmd.add_argument("arch", help="architecture string or official index")
    cmd.add_argument("--space", required=True, choices=("tss", "sss"))
    cmd.add_argument("--recipe", required=True, choices=RECIPES, help="training recipe")
    cmd.add_argument("--data", required=True, choices=DATASETS,
                     help="the benchmark's training run: cifar10-valid trains on the 25k "
                     "train half (eval: x-valid, ori-test), cifar10 on all 50k (eval: "
                     "ori-test), cifar100 / ImageNet16-120 on train (eval: x-valid, x-test, "
                     "ori-test)")  # fmt: skip
    cmd.add_argument("--seed", type=int, required=True, help="entropy of the run's SeedSequence")
    cmd.add_argument("--out", type=Path, required=True, help="directory holding the run")
    cmd.add_argument(
        "--source",
        default="official",
        choices=SOURCES,
        help="official pickle batches (default), or the CIFAR-10 JPEG copy",
    )
    cmd.add_argument("--data-root", type=Path, help="official files' root (default: "
                     "$HARNESS_DATA_ROOT, else $TORCH_HOME/cifar.python)")  # fmt: skip
    cmd.add_argument("--images", type=Path, help="CIFAR-10 JPEG archive (default: the shared "
                     "data's)")  # fmt: skip
    cmd.add_argument("--cache", type=Path, help="decode cache of the JPEG archive")
    cmd.add_argument("--train-images", type=_positive, help="train on a fixed-seed subset of "
                     "this many images (a reduced run; recorded)")  # fmt: skip
    cmd.add_argument("--device", default="cpu", help="cpu or cuda")
    cmd.add_argument("--threads", type=_positive, help="torch intra-op threads")
    cmd.add_argument("--eval-batch", type=_positive, default=512, help="eval batch size")
    cmd.add_argument("--channels-last", action="store_true", help="channels-last batches")
    cmd.add_argument("--stop-after-epoch", type=int, help="stop after this 0-based epoch")
    cmd.set_defaults(handler=train_command)


def _images(args: argparse.Namespace) -> Path | None:
    if args.source != "jpeg" or args.images is not None:
        return args.images
    from harness.paths import shared_data_dir

    shared = shared_data_dir()
    archive = shared / "cifar10-jpg" / "cifar10_jpg.tar.gz" if shared is not None else None
    if archive is None or not archive.is_file():
        raise ConfigError("--source jpeg needs --images ARCHIVE (no shared data found)")
    return archive


def train_command(args: argparse.Namespace) -> int:
    import torch

    from harness.data import training_parts
    from harness.train import TrainConfig, run_dir_name, train_network

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    arch = int(args.arch) if args.arch.isdigit() else args.arch
    config = TrainConfig(
        arch, args.space, args.recipe, args.data, args.source, args.seed,
        train_images=args.train_images, device=args.device, eval_batch_size=args.eval_batch,
        channels_last=args.channels_last,
    )  # fmt: skip
    parts = training_parts(
        args.data, args.source, root=args.data_root, images=_images(args), cache_dir=args.cache,
        train_images=args.train_images,
    )  # fmt: skip
    run = args.out / run_dir_name(config)
    result = train_network(
        config, parts, run, stop_after_epoch=args.stop_after_epoch,
        progress=lambda line: print(line, flush=True),
    )  # fmt: skip
    _summary(result.record, run)
    return 0


def _summary(record: dict[str, Any], run: Path) -> None:
    net, data = record["network"], record["data"]
    done, total = record["epochs_done"], record["recipe"]["epochs"]
    print(f"{record['space']} {record['arch']} (index {record['arch_index']}): "
          f"{net['params_mb']:.3f} MB params, {net['flop_m']:.2f} M FLOPs")  # fmt: skip
    print(f"data: {record['dataset']} from {data['source']} ({data['train']['images']} training "
          f"images), checksum {data['checksum']}")  # fmt: skip
    for split in data.get("splits", []):
        print(f"split: {split['name']} ({split['source']}, sha256 {split.get('sha256', '-')})")
    status = "complete" if record["status"] == "complete" else f"partial ({done}/{total} epochs)"
    accs = ", ".join(f"{k} {v:.2f}%" for k, v in record["final"].items())
    print(f"{record['recipe']['name']} {status}: top-1 after epoch {done}: {accs}")
    seconds = record["seconds"]
    print(f"time: {seconds['train']:.1f} s training, {seconds['eval']:.1f} s evaluating")
    print(f"results: {run}")
