"""The seed study's random search over head hyperparameters, on cached features: :func:`run_search`.

How ``trials`` stays exact across worker processes and machines sharing one storage:

* the study holds one *slot* per requested trial: whoever starts a search enqueues WAITING trials
  until the slots (trials that are not superseded retries or surplus) number ``trials``;
* a worker runs ``study.optimize(..., n_trials=1)`` only while WAITING trials exist, so its
  ``ask`` claims one of them (an atomic state change in the storage): no two workers run one trial;
* a running trial records a heartbeat (the storage's ``heartbeat_interval``); a trial whose heartbeat
  stops (its worker was killed) is marked FAIL by the next worker that looks, exactly once, and
  re-enqueued with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``); the retry
  continues from the dead trial's last finished epoch;
* a trial beyond the first ``trials`` slots (two searches that started at the same moment both
  enqueued, or an ``ask`` that found the last waiting trial taken by another worker and created
  one) is PRUNED at once with the user attribute ``surplus``, never run.

Only Optuna's public API is used: storages, callbacks, ``enqueue_trial``, ``optimize``,
``get_trials``.

Parameters are drawn by Optuna's ``RandomSampler``, reseeded per trial number, so a search gives
the same trials whatever the number of workers.

Output in ``out_dir``: ``search.db`` (default storage), ``trials/trial-NNNN/`` (each trial's
training output), ``results.csv`` (sorted by the dev metric), ``search.png`` (metric vs each
hyperparameter), ``best/`` (``config.json``, ``checkpoint.pt``, ``metrics.json`` and plots of the best
trial).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lstmfpga.foundation.atomic import atomic_write_bytes
from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer, is_integer
from lstmfpga.foundation.process_lifetime import die_with_parent
from lstmfpga.model.search_space import DEFAULT_SPACE, SearchSpace
from lstmfpga.model.train_config import TrainConfig

TRIALS_DIR = "trials"
BEST_DIR = "best"
RESULTS_CSV = "results.csv"
PLOT_NAME = "search.png"
MAX_RETRY = 3
_SAMPLER_STRIDE = 1_000_003


@dataclass(frozen=True)
class SearchResult:
    """What :func:`run_search` found.  ``rows`` are the completed trials, best first."""

    out_dir: Path
    storage: str
    study_name: str
    monitor: str
    rows: tuple
    best_trial: int
    best_value: float
    best_config: TrainConfig
    table_text: str
    csv_path: Path
    plot_path: Path


@dataclass(frozen=True)
class _WorkerSpec:
    features: object  # a cache folder (str) or a FeatureSet
    storage: str
    study_name: str
    space: dict
    base: dict
    trials: int
    out_dir: str
    heartbeat_interval: int
    grace_period: int
    sampler_seed: int
    threads: int | None
    trial_plots: bool
    checkpoint_every_s: float
    worker: int


def default_storage(out_dir) -> str:
    return f"sqlite:///{Path(out_dir).resolve() / 'search.db'}"


def _quiet_optuna():
    import optuna

    # ERROR: the worker reports failed and surplus trials itself, in one line each.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _make_storage(url: str, heartbeat_interval: int, grace_period: int):
    _quiet_optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(4):
        try:
            return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                              grace_period=grace_period,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"search storage {url!r} cannot be opened: {exc}") from exc
        except Exception as exc:  # sqlalchemy.exc.*: a bad URL, a refused connection, a missing driver
            # Two searches creating the tables of a new storage at once: the loser sees "already
            # exists" or a unique-constraint error and succeeds on the next try.
            import sqlalchemy.exc

            bad_url = isinstance(exc, (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError))
            if not bad_url and attempt < 3:
                time.sleep(0.5 + attempt)
                continue
            raise ConfigError(f"search storage {url!r} cannot be opened: {type(exc).__name__}: {exc}") from exc


def _superseded(trials) -> set[int]:
    """Numbers of FAIL trials that a retry replaced."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    numbers = set()
    for trial in trials:
        numbers.update(RetryHeartbeatStaleTrialCallback.retry_history(trial))
    return numbers


def _slots(trials) -> list:
    """The trials that count towards the requested number, in trial-number order."""
    superseded = _superseded(trials)
    return sorted((t for t in trials if t.number not in superseded and not t.user_attrs.get("surplus")),
                  key=lambda t: t.number)


def _load_feature_set(features):
    from lstmfpga.model.feature_cache import FeatureSet, load_features

    return features if isinstance(features, FeatureSet) else load_features(features)


def _where(trial) -> dict:
    """Where a trial ran: ``trial_dir``, ``host``, ``pid``, ``worker`` (empty before it started)."""
    return trial.user_attrs.get("where", {})


def _trial_dir(out_dir, number: int) -> Path:
    return Path(out_dir) / TRIALS_DIR / f"trial-{number:04d}"


class _TrialFailed(Exception):
    """A trial's training failed or gave no dev metric; the worker has reported why."""


def _frozen(study, number: int):
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _continue_killed_trial(study, number: int, trial_dir: Path, out_dir) -> None:
    """A retry of a killed trial continues from its last finished epoch when its files are here."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from lstmfpga.model.training import RESUME_NAME

    history = RetryHeartbeatStaleTrialCallback.retry_history(_frozen(study, number))
    if not history:
        return
    killed = _frozen(study, history[-1])
    previous = Path(_where(killed).get("trial_dir", _trial_dir(out_dir, history[-1]))) / RESUME_NAME
    if previous.exists():
        atomic_write_bytes(trial_dir / RESUME_NAME, previous.read_bytes())


def _objective(trial, *, study, spec: _WorkerSpec, feature_set, log) -> float:
    """Train one trial's head; its dev monitor value, or :class:`_TrialFailed` (FAIL) or PRUNED for a surplus."""
    import optuna
    from optuna.samplers import RandomSampler

    from lstmfpga.model.training import train_head

    if trial.number not in [t.number for t in _slots(study.get_trials(deepcopy=False))][:spec.trials]:
        trial.set_user_attr("surplus", True)
        raise optuna.TrialPruned(f"trial {trial.number} is beyond the {spec.trials} trials of the search")
    study.sampler = RandomSampler(seed=spec.sampler_seed * _SAMPLER_STRIDE + trial.number)
    started = time.perf_counter()
    trial_dir = _trial_dir(spec.out_dir, trial.number).resolve()
    # Where this trial's files live: with workers on several machines, on the machine that ran it.
    trial.set_user_attr("where", {"trial_dir": str(trial_dir), "host": os.uname().nodename, "pid": os.getpid(),
                                  "worker": spec.worker})
    try:
        params = {name: trial.suggest_categorical(name, list(values)) for name, values in spec.space.items()}
        config = TrainConfig(**{**spec.base, **params})
        _continue_killed_trial(study, trial.number, trial_dir, spec.out_dir)
        result = train_head(config, feature_set, trial_dir, log=None, plots=spec.trial_plots,
                            checkpoint_every_s=spec.checkpoint_every_s)
    except Exception as exc:  # skip-and-report: one bad trial must not end the search
        error = f"{type(exc).__name__}: {exc}"
        trial.set_user_attr("error", error)
        log(f"trial {trial.number} failed: {error}")
        raise _TrialFailed(error) from exc
    metrics = result.metrics
    summary = {
        "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
        **{f"dev_{k}": metrics["dev"][k] for k in ("loss", "accuracy", "f1", "roc_auc")},
        "eval_split": metrics["eval_split"],
        **({f"eval_{k}": metrics["eval"][k] for k in ("loss", "accuracy", "f1", "roc_auc")}
           if metrics["eval"] else {}),
        "seconds": round(time.perf_counter() - started, 3),
    }
    trial.set_user_attr("summary", summary)  # one attribute: every attribute is a storage commit
    value = result.monitor_value
    if math.isnan(value):
        trial.set_user_attr("error", f"dev {config.monitor} is undefined")
        log(f"trial {trial.number} failed: dev {config.monitor} is undefined")
        raise _TrialFailed(f"dev {config.monitor} is undefined")
    log(f"trial {trial.number:>4} done in {summary['seconds']:7.1f} s: dev {config.monitor} {value:.4f} "
        f"[worker {spec.worker}]")
    return value


def _worker_loop(spec: _WorkerSpec, log: Callable[[str], None]) -> int:
    """Run WAITING trials of the study until none is waiting or running; returns trials run."""
    optuna = _quiet_optuna()
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    storage = _make_storage(spec.storage, spec.heartbeat_interval, spec.grace_period)
    study = optuna.load_study(study_name=spec.study_name, storage=storage)
    objective = functools.partial(_objective, study=study, spec=spec, feature_set=_load_feature_set(spec.features),
                                  log=log)
    done = 0
    poll = min(1.0, spec.heartbeat_interval)
    watched: set[int] = set()
    while True:
        fail_stale_trials(study)
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return done
            # Another worker is busy; if it dies, its trial goes stale and comes back as WAITING.
            _watch_heartbeats(storage, spec.study_name, running, watched)
            time.sleep(poll)
            continue
        numbers = []

        def run(trial):
            numbers.append(trial.number)
            return objective(trial)

        try:
            study.optimize(run, n_trials=1, catch=(Exception,))
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            if not numbers or not _frozen(study, numbers[0]).state.is_finished():
                raise
            # Another worker saw no heartbeat for longer than the grace period and declared this
            # trial dead; its retry is already queued and will run it again.
            log(f"trial {numbers[0]} was declared dead while running (heartbeats were late); a retry runs it")
        if numbers and not _frozen(study, numbers[0]).user_attrs.get("surplus"):
            done += 1


def _watch_heartbeats(storage, study_name: str, running, watched: set[int]) -> None:
    """Record one heartbeat for each running trial not seen before.

    A worker killed after claiming a trial but before its heartbeat thread wrote the first beat
    leaves a RUNNING trial with no heartbeat, which Optuna never counts as stale.  One beat
    recorded here starts its clock: a live trial beats on regardless, a dead one goes stale after
    the grace period and is retried.
    """
    fresh = [t.number for t in running if t.number not in watched]
    if not fresh:
        return
    study_id = storage.get_study_id_from_name(study_name)
    for number in fresh:
        storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(study_id, number))
        watched.add(number)


def _worker_main(spec: _WorkerSpec, parent: int) -> None:
    die_with_parent(parent)  # a worker outliving a killed search would race the resumed one
    _worker_loop(spec, lambda line: print(line, flush=True))


def _prepare_study(study, trials: int, space: SearchSpace, base: dict) -> int:
    """Check the study matches this search, recover dead trials, enqueue the missing slots."""
    from optuna.storages import fail_stale_trials

    signature = {"space": space.to_dict(), "base": base}
    saved = study.user_attrs.get("search")
    if saved is None:
        study.set_user_attr("search", signature)
    elif saved != json.loads(json.dumps(signature)):
        raise ConfigError(f"study {study.study_name!r} was started with another search space or fixed "
                          f"settings ({saved}); use another --study name or storage")
    fail_stale_trials(study)
    missing = trials - len(_slots(study.get_trials(deepcopy=False)))
    for _ in range(max(0, missing)):
        study.enqueue_trial({}, skip_if_exists=False)
    return max(0, missing)


def _row(trial, space_names, monitor) -> dict:
    row = {"trial": trial.number, monitor: trial.value}
    row.update({name: trial.params.get(name) for name in space_names})
    for key in ("dev_accuracy", "dev_f1", "dev_roc_auc", "dev_loss", "eval_split", "eval_accuracy",
                "eval_f1", "eval_roc_auc", "best_epoch", "epochs_run", "seconds"):
        row.setdefault(key, trial.user_attrs.get("summary", {}).get(key))
    return row


def _table(rows, columns) -> str:
    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in body]
    return "\n".join(lines)


def _write_best(out_dir: Path, best_trial, config: TrainConfig, monitor: str, say) -> None:
    best_dir = out_dir / BEST_DIR
    best_dir.mkdir(parents=True, exist_ok=True)
    where = _where(best_trial)
    trial_dir = Path(where.get("trial_dir", _trial_dir(out_dir, best_trial.number)))
    copied = False
    for name in ("checkpoint.pt", "metrics.json", "loss_accuracy.png", "confusion_matrix.png", "roc.png"):
        if (trial_dir / name).exists():
            atomic_write_bytes(best_dir / name, (trial_dir / name).read_bytes())
            copied = True
    if not copied:
        say(f"warning: the best trial's files are not on this machine: {where.get('host')}:{trial_dir}")
    document = {"trial": best_trial.number, "monitor": monitor, "value": best_trial.value,
                "config": config.to_dict(), "trial_dir": str(trial_dir), "host": where.get("host")}
    atomic_write_bytes(best_dir / "config.json", (json.dumps(document, indent=2) + "\n").encode())


def run_search(features, *, trials: int, out_dir, storage: str | None = None,
               study_name: str = "lstmfpga-search", workers: int = 1, space: SearchSpace | Mapping = DEFAULT_SPACE,
               base_config: TrainConfig | Mapping | None = None, heartbeat_interval: int = 30,
               grace_period: int | None = None, sampler_seed: int = 0, trial_plots: bool = True,
               checkpoint_every_s: float = 30.0, log: Callable[[str], None] | None = print) -> SearchResult:
    """Random search until the study holds ``trials`` finished trials; write the results.

    Parameters
    ----------
    features : path or FeatureSet
        The feature cache folder (each worker reads it) or an in-memory feature set.
    trials : int
        Trials to finish in total, across workers, machines and resumed runs.
    out_dir : path
        Results, trial folders, and the default SQLite storage.
    storage : str, optional
        SQLAlchemy URL shared by every worker (``postgresql://...`` for many machines).
    workers : int
        Worker processes on this machine; 1 runs the trials in this process.
    space : SearchSpace or mapping
        Hyperparameter choices; the seed's space by default.
    base_config : TrainConfig or mapping, optional
        Settings every trial shares (epochs, head, seed, ...); the space's keys win.
    heartbeat_interval, grace_period : int
        Seconds between a running trial's heartbeats, and of silence after which it counts as dead
        (default ``3 * heartbeat_interval``).
    sampler_seed : int
        Seeds the RandomSampler (per trial number).
    trial_plots : bool
        Write each trial's PNG plots.
    checkpoint_every_s : float
        Least seconds between a trial's resume states (see :func:`~lstmfpga.model.training.train_head`).
    log : callable or None
        Progress lines; None is silent.
    """
    optuna = _quiet_optuna()
    say = log or (lambda line: None)
    for name, value in (("trials", trials), ("workers", workers), ("heartbeat_interval", heartbeat_interval)):
        check_integer(name, value, low=1)
    grace_period = 3 * heartbeat_interval if grace_period is None else grace_period
    if not is_integer(grace_period) or grace_period <= heartbeat_interval:
        raise ConfigError(f"grace_period must be an integer above heartbeat_interval={heartbeat_interval}, not {grace_period!r}")
    space = space if isinstance(space, SearchSpace) else SearchSpace(space)
    if isinstance(base_config, TrainConfig):
        base = base_config.to_dict()
    else:
        base = TrainConfig.from_dict(dict(base_config or {})).to_dict()
    base = {k: v for k, v in base.items() if k not in space.choices}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out_dir)

    feature_set = _load_feature_set(features)
    too_long = [f for f in space.choices.get("frames", (base.get("frames", TrainConfig().frames),))
                if f > feature_set.frames]
    if too_long:
        raise ConfigError(f"search frames {too_long} exceed the {feature_set.frames} frames per video in the feature cache")
    base_train = TrainConfig(**base)
    monitor = base_train.monitor
    direction = "maximize" if base_train.maximize else "minimize"

    rdb = _make_storage(url, heartbeat_interval, grace_period)
    study = optuna.create_study(study_name=study_name, storage=rdb, direction=direction, load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(seed=sampler_seed))
    if study.direction.name.lower() != direction:
        raise ConfigError(f"study {study_name!r} in {url} was created to {study.direction.name.lower()}, "
                          f"not {direction} (monitor {monitor!r})")
    added = _prepare_study(study, trials, space, base)
    finished = sum(t.state.is_finished() for t in _slots(study.get_trials(deepcopy=False)))
    say(f"search {study_name!r}: {trials} trials ({finished} finished, {added} enqueued now) over "
        f"{space.size()} configurations, {workers} worker(s), storage {url}")

    if workers == 1:
        worker_features = feature_set
    elif isinstance(features, (str, os.PathLike)):
        worker_features = str(features)  # each worker reads the cache itself
    else:
        from lstmfpga.model.feature_cache import save_feature_set

        # Spawned workers read features from disk (a FeatureSet does not pickle).
        worker_features = str(out_dir / "features")
        save_feature_set(feature_set, worker_features)
    spec = dict(features=worker_features,
                storage=url, study_name=study_name, space=space.to_dict(), base=base, trials=trials,
                out_dir=str(out_dir), heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                sampler_seed=sampler_seed, trial_plots=trial_plots, checkpoint_every_s=checkpoint_every_s)
    if workers == 1:
        _worker_loop(_WorkerSpec(**spec, threads=None, worker=0), say)
    else:
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // workers)
        processes = [context.Process(target=_worker_main, name=f"lstmfpga-search-{i}",
                                     args=(_WorkerSpec(**spec, threads=threads, worker=i), os.getpid()))
                     for i in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        crashed = [p.name for p in processes if p.exitcode != 0]
        if crashed:
            say(f"warning: workers {crashed} exited abnormally; re-run the same command to finish the search")
    return _collect(study, out_dir, url, study_name, space, base, monitor, trials, say)


def _collect(study, out_dir: Path, url: str, study_name: str, space: SearchSpace, base: dict, monitor: str,
             trials: int, say) -> SearchResult:
    from optuna.trial import TrialState

    from lstmfpga.model.plots import plot_search

    slots = _slots(study.get_trials(deepcopy=False))
    complete = [t for t in slots if t.state == TrialState.COMPLETE]
    failed = [t for t in slots if t.state == TrialState.FAIL]
    maximize = TrainConfig(monitor=monitor).maximize
    complete.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
    names = list(space.names)
    rows = [_row(t, names, monitor) for t in complete]
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    columns = ["rank", "trial", monitor, "dev_accuracy", "dev_loss", "eval_accuracy", "eval_roc_auc",
               *[n for n in names if n not in (monitor,)], "best_epoch", "seconds"]
    csv_path = out_dir / RESULTS_CSV
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(csv_path, text.getvalue().encode())
    for trial in failed:
        say(f"trial {trial.number} failed: {trial.user_attrs.get('error', 'worker died too often')}")
    if not complete:
        raise ConfigError(f"search {study_name!r} has no completed trial ({len(failed)} failed); see the messages above")
    plot_path = plot_search(rows, names, monitor, out_dir / PLOT_NAME)
    best = complete[0]
    best_config = TrainConfig(**{**base, **best.params})
    _write_best(out_dir, best, best_config, monitor, say)
    running = len(slots) - len(complete) - len(failed)
    if running:
        say(f"{running} of {trials} trials are still waiting or running in other workers")
    return SearchResult(out_dir=out_dir, storage=url, study_name=study_name, monitor=monitor, rows=tuple(rows),
                        best_trial=best.number, best_value=float(best.value), best_config=best_config,
                        table_text=_table(rows, columns), csv_path=csv_path, plot_path=plot_path)
