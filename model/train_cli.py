"""``lstmfpga train`` and ``lstmfpga search``: argparse only here; torch and optuna load in the handlers."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from lstmfpga.foundation.errors import ConfigError

_TRAIN_DEFAULTS_HELP = "(default: %(default)s)"


def _add_hyperparameters(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Every TrainConfig field as an option; ``defaults=False`` leaves them None (search: unset)."""
    from lstmfpga.model.train_config import HEADS, LOSSES, MONITORS, OPTIMIZERS, SCHEDULERS, TrainConfig

    base = TrainConfig()
    spec = (
        ("--head", "head", str, f"one of {', '.join(HEADS)}"),
        ("--hidden", "hidden", int, "recurrent units (the seed's LSTM units)"),
        ("--layers", "layers", int, "stacked recurrent layers"),
        ("--frames", "frames", int, "sequence length T, sub-sampled uniformly from the cache"),
        ("--dropout", "dropout", float, "dropout rate"),
        ("--input-dropout", "input_dropout", float, "dropout on the input features while training"),
        ("--reverse-prob", "reverse_prob", float, "augmentation: probability of showing a training "
                                                  "sequence time-reversed"),
        ("--lr", "lr", float, "learning rate (OneCycleLR's peak)"),
        ("--weight-decay", "weight_decay", float, "weight decay"),
        ("--batch-size", "batch_size", int, "batch size"),
        ("--epochs", "epochs", int, "maximum epochs"),
        ("--patience", "patience", int, "early stopping: epochs without a better dev metric"),
        ("--loss", "loss", str, f"one of {', '.join(LOSSES)}"),
        ("--optimizer", "optimizer", str, f"one of {', '.join(OPTIMIZERS)}"),
        ("--scheduler", "scheduler", str, f"one of {', '.join(SCHEDULERS)}"),
        ("--focal-gamma", "focal_gamma", float, "FocalLoss exponent"),
        ("--clip", "clip", float, "clip standardized features to +-clip"),
        ("--dev-fraction", "dev_fraction", float, "share of 'train' held out (stratified) as dev"),
        ("--monitor", "monitor", str, f"dev metric for early stopping and search: {', '.join(MONITORS)}"),
        ("--max-grad-norm", "max_grad_norm", float, "gradient-norm clipping, 0 = off"),
        ("--seed", "seed", int, "random seed"),
    )
    for flag, name, kind, text in spec:
        if defaults:
            parser.add_argument(flag, dest=name, type=kind, default=getattr(base, name),
                                help=f"{text} {_TRAIN_DEFAULTS_HELP}")
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None,
                                help=f"{text} (fixed for every trial; default: from the space or TrainConfig)")


def _config_from_args(args, *, only_given: bool = False) -> dict:
    import dataclasses

    from lstmfpga.model.train_config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    if only_given:
        values = {k: v for k, v in values.items() if v is not None}
    return values


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_final_metrics(metrics: dict) -> str:
    """The final metrics as a small table: one column per part (dev, eval, each artifact kind)."""
    columns = [("dev", metrics["dev"])]
    if metrics.get("eval"):
        columns.append((metrics["eval_split"], metrics["eval"]))
    for kind, values in (metrics.get("eval_by_kind") or {}).items():
        columns.append((f"{metrics['eval_split']}:{kind}", values))
    names = ("n", "loss", "accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix")
    widths = [max(12, len(title) + 1) for title, _ in columns]
    lines = [f"{'metric':<17}" + "".join(f"{title:>{w}}" for (title, _), w in zip(columns, widths))]
    for name in names:
        cells = []
        for (_, values), width in zip(columns, widths):
            value = values.get(name)
            if name == "confusion_matrix" and value is not None:
                value = f"{value[0][0]},{value[0][1]};{value[1][0]},{value[1][1]}"
            cells.append(f"{_fmt(value):>{width}}")
        lines.append(f"{name:<17}" + "".join(cells))
    return "\n".join(lines)


def final_summary(metrics: dict) -> str:
    """The best epoch, the dev monitor value and :func:`format_final_metrics` of a training run."""
    monitor = metrics["monitor"]
    lines = [f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}"
             f"{' (stopped early)' if metrics['stopped_early'] else ''}; dev {monitor} "
             f"{_fmt(metrics['dev'][monitor])}"]
    if metrics["eval_split"] is None:
        lines.append("the cache has no 'val' or 'test' videos: the metrics below are on the held-out dev part only")
    lines.append(format_final_metrics(metrics))
    return "\n".join(lines)


def _run_train(args) -> int:
    from lstmfpga.model.feature_cache import load_features
    from lstmfpga.model.train_config import TrainConfig
    from lstmfpga.model.training import train_head

    config = TrainConfig(**_config_from_args(args))
    feature_set = load_features(args.features)
    print(f"training {config.head} on {len(feature_set)} videos "
          f"(T={feature_set.frames}, D={feature_set.dim}) -> {args.out}")
    result = train_head(config, feature_set, args.out, plots=not args.no_plots,
                        checkpoint_every_s=args.checkpoint_every)
    print(final_summary(result.metrics))
    print(f"checkpoint: {result.checkpoint_path}")
    return 0


def _run_search(args) -> int:
    from lstmfpga.model.search import run_search
    from lstmfpga.model.search_space import DEFAULT_SPACE, load_space

    space = load_space(args.space) if args.space else DEFAULT_SPACE
    overrides = _config_from_args(args, only_given=True)
    clash = sorted(set(overrides) & set(space.names))
    if clash:
        raise ConfigError(f"options {['--' + c.replace('_', '-') for c in clash]} fix hyperparameters "
                          f"that the search space varies; fix them with a one-value list in a --space file instead")
    result = run_search(
        args.features, trials=args.trials, out_dir=args.out, storage=args.storage, study_name=args.study,
        workers=args.workers, space=space, base_config=overrides, heartbeat_interval=args.heartbeat,
        sampler_seed=args.sampler_seed, checkpoint_every_s=args.checkpoint_every,
    )
    print(result.table_text)
    print(f"best trial {result.best_trial}: dev {result.monitor} {_fmt(result.best_value)}; "
          f"config and checkpoint in {Path(args.out) / 'best'}")
    return 0


def register(subparsers) -> None:
    """Add ``train`` and ``search`` to the ``lstmfpga`` parser."""
    train = subparsers.add_parser(
        "train", help="train a float head (LSTM, BiLSTM, GRU, frame-average) on cached features",
        description="Train one head on a feature cache; prints a per-epoch table and the final "
                    "metrics, writes checkpoint.pt, metrics.json and PNG plots. Re-running a killed "
                    "training with the same --out resumes it.")
    train.add_argument("--features", required=True, type=Path, help="feature cache folder")
    train.add_argument("--out", required=True, type=Path, help="output folder")
    train.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    train.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                       help="least seconds between resume states; 0 = after every epoch (default: %(default)s)")
    _add_hyperparameters(train, defaults=True)
    train.set_defaults(handler=_run_train)

    search = subparsers.add_parser(
        "search", help="the seed's random search over head hyperparameters (Optuna)",
        description="Random search (Optuna RandomSampler) over the seed's ten hyperparameters, or "
                    "over a --space file. Workers share one storage; a killed search resumes.")
    search.add_argument("--features", required=True, type=Path, help="feature cache folder")
    search.add_argument("--out", required=True, type=Path, help="output folder")
    search.add_argument("--trials", required=True, type=int, help="trials to complete in total")
    search.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study storage (default: sqlite:///OUT/search.db)")
    search.add_argument("--study", default="lstmfpga-search", help="study name (default: %(default)s)")
    search.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    search.add_argument("--space", type=Path, default=None,
                        help="JSON or YAML file mapping hyperparameters to value lists (overrides the seed's space per key)")
    search.add_argument("--heartbeat", type=int, default=30,
                        help="seconds between trial heartbeats; a trial silent 3x this long counts as dead (default: %(default)s)")
    search.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                        help="least seconds between a trial's resume states (default: %(default)s)")
    search.add_argument("--sampler-seed", type=int, default=0, help="seed of the random sampler (default: %(default)s)")
    _add_hyperparameters(search, defaults=False)
    search.set_defaults(handler=_run_search)
