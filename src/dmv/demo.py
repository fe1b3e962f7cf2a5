"""``make demo``: dmv end to end on the embedded default, in a fresh folder.

Trains a real scikit-learn model on a dataset scikit-learn ships (no download),
registers two versions and a retraining run, moves an alias, and prints what
the model repository holds. Run with ``python -m dmv.demo [FOLDER]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import dmv
    from dmv.cli import main as cli

    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="dmv-demo-"))
    started = time.perf_counter()

    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

    project = dmv.init(folder)
    project.create_model(
        "disease-progress",
        purpose="forecast disease progression a year ahead",
        function="regression",
        primary_metric="mae",
        metric_goal="min",
        exist_ok=True,
    )

    def train(version: str, alpha: float) -> dmv.Run:
        with project.run("disease-progress", version=version, params={"alpha": alpha}) as run:
            model = Ridge(alpha=alpha).fit(x_train, y_train)
            run.log_metrics({"mae": mean_absolute_error(y_train, model.predict(x_train))}, "train")
            run.log_metrics({"mae": mean_absolute_error(y_test, model.predict(x_test))}, "test")
            run.log_model(model)
        return run

    print(f"dmv demo in {folder}\n")
    for version, alpha in (("0.0.1-0123.abcd", 1.0), ("0.0.2-0123.abcd", 0.1)):
        run = train(version, alpha)
        print(f"trained {run.version} {run.id}  (alpha={alpha})")
    run = train("0.0.2-0123.abcd", 0.1)
    print(f"retrained {run.version} {run.id}: same version, a new training run\n")
    project.set_alias("disease-progress@0.0.2-0123.abcd", "staging")

    for command in (
        ["model", "list"],
        ["versions", "disease-progress"],
        ["runs", "disease-progress@staging"],
    ):
        print(f"$ dmv {' '.join(command)}")
        code = cli(["-C", str(folder), *command])
        if code:
            return code
        print()
    model = project.load_model("disease-progress@staging")
    print(f"prediction from disease-progress@staging: {model.predict(x_test.head(1))[0]:.1f}")
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
