"""The report's search figures, drawn by ``optuna.visualization.matplotlib`` from the search's storage."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from lstmfpga.foundation.atomic import atomic_path


def _save(ax_or_axes, path: Path, width: float = 9.0) -> None:
    import numpy as np
    from matplotlib import pyplot

    figure = np.ravel(ax_or_axes)[0].figure
    figure.set_size_inches(width, 4.8)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    pyplot.close(figure)


def search_figures(search_dir) -> list[tuple[str, str]]:
    """Draw the trials' history, a parallel-coordinate view and (from three finished trials on)
    the parameter importances into ``search_dir``; return ``(file name, caption)`` of each drawn."""
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    from lstmfpga.model.search import default_storage

    search_dir = Path(search_dir)
    storage = default_storage(search_dir)
    if not (search_dir / "search.db").is_file():
        return []
    names = optuna.get_all_study_names(storage)
    if len(names) != 1:
        return []
    study = optuna.load_study(study_name=names[0], storage=storage)
    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not finished:
        return []
    best = search_dir / "best" / "config.json"
    metric = json.loads(best.read_text()).get("monitor", "objective") if best.is_file() else "objective"
    varying = sorted(k for k in finished[0].params if len({repr(t.params.get(k)) for t in finished}) > 1)
    figures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _save(optuna_plots.plot_optimization_history(study, target_name=f"dev {metric}"), search_dir / "history.png")
        figures.append(("history.png", f"random search: dev {metric} of each trial in order, and the best so far"))
        if varying:
            _save(optuna_plots.plot_parallel_coordinate(study, params=varying, target_name=f"dev {metric}"),
                  search_dir / "parallel.png", width=3.0 + 1.6 * len(varying))
            figures.append(("parallel.png", f"random search: every trial's hyperparameters, coloured by dev {metric}"))
        if varying and len(finished) >= 3:
            _save(optuna_plots.plot_param_importances(study, params=varying, target_name=f"dev {metric}"),
                  search_dir / "importance.png")
            figures.append(("importance.png", f"random search: hyperparameter importance for dev {metric} (fANOVA)"))
    return figures
