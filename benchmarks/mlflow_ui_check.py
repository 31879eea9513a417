"""What the MLflow UI would show of a study, read through the REST API its pages call; prints JSON.

Starts ``mlflow server`` on the store (a private port on 127.0.0.1, stopped at the end), then asks the
``/ajax-api`` endpoints the browser asks: the experiment (does it open on the runs table?), the study run and
its description, the trials (names, descriptions, what "Show diff only" would list, the ``final/`` metrics
and their steps), the logged models and the registry version's schema. A check that fails is listed under
``failed`` and the exit status is 1. No browser needed (none is installed here); it checks data, not pixels.

    python benchmarks/mlflow_ui_check.py --tracking-uri sqlite:///mlflow.db --experiment ablation-demo
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("DTGAN_PLATFORM", str(ROOT / "platform")))

from dtgan import keys  # noqa: E402  (the standard library only: no torch, no MLflow in this process)

STARTUP_TIMEOUT_S = 300
TOGGLES = (
    "style_content",
    "fg_classifier",
    "bg_classifier",
    "separate_decoders",
    "anchor_normal",
    "mapping_noise",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UI:
    """The REST side of the MLflow UI at ``base``."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def get(self, path: str, **query) -> dict:
        url = f"{self.base}/ajax-api/2.0/mlflow/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{self.base}/ajax-api/2.0/mlflow/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def text(self, path: str, **query) -> str:
        url = f"{self.base}/{path}?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def _start_server(
    tracking_uri: str, artifacts: str | None, log_path: Path, timeout_s: float = STARTUP_TIMEOUT_S
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if artifacts:
        command += ["--artifacts-destination", artifacts]
    log = log_path.open("w")
    # Its own process group: the server's workers are stopped with it (and nothing else).
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"mlflow server exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return process, base
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    _stop(process)
    raise SystemExit(
        f"mlflow server did not answer within {timeout_s:.0f} s (--startup-timeout):\n{_tail(log_path)}"
    )


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it was started in its own session), SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tags(entity: dict) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in entity.get("tags", [])}


def _params(run: dict) -> dict[str, str]:
    return {p["key"]: p.get("value", "") for p in run.get("data", {}).get("params", [])}


def _metrics(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}


def inspect(ui: UI, experiment_name: str) -> dict:
    """Everything the UI would show about the study's runs, and the checks over it."""
    checks: dict[str, bool] = {}
    experiment = ui.get("experiments/get-by-name", experiment_name=experiment_name)["experiment"]
    experiment_id = experiment["experiment_id"]
    kind = _tags(experiment).get(keys.TAG_EXPERIMENT_KIND)
    checks["experiment opens on the runs table (experimentKind is not GenAI)"] = (
        kind == keys.EXPERIMENT_KIND_ML
    )
    runs = ui.post(
        "runs/search",
        {"experiment_ids": [experiment_id], "max_results": 1000, "order_by": ["attributes.start_time DESC"]},
    ).get("runs", [])
    studies = [r for r in runs if _tags(r["data"]).get(keys.TAG_RUN_KIND) == keys.RUN_KIND_STUDY]
    if not studies:
        raise SystemExit(f"experiment {experiment_name!r} has no study run")
    study = studies[0]
    study_id = study["info"]["run_id"]
    trials = [r for r in runs if _tags(r["data"]).get(keys.TAG_PARENT_RUN_ID) == study_id]
    study_tags, study_params = _tags(study["data"]), _params(study)
    checks["study run has a description"] = bool(study_tags.get(keys.TAG_NOTE))
    checks["study run does not log a variant's model.ablation"] = "model.ablation" not in study_params

    rows, varied = [], set()
    all_params = [_params(r) for r in trials]
    for key in set().union(*all_params) if all_params else ():
        if len({p.get(key) for p in all_params}) > 1:
            varied.add(key)
    for run, params in zip(trials, all_params):
        tags, metrics = _tags(run["data"]), _metrics(run)
        final = {k: v for k, v in metrics.items() if k.startswith(keys.FINAL_PREFIX)}
        steps = {}
        for key in final:
            history = ui.get("metrics/get-history", run_id=run["info"]["run_id"], metric_key=key).get(
                "metrics", []
            )
            steps[key] = sorted({int(m.get("step", 0)) for m in history})
        rows.append(
            {
                "run_name": run["info"].get("run_name"),
                "trial_key": tags.get(keys.TAG_TRIAL_KEY),
                "description": tags.get(keys.TAG_NOTE),
                "status": run["info"]["status"],
                "toggles": {t: params.get(f"model.{t}") for t in TOGGLES},
                "final": final,
                "final_steps": steps,
                "evaluated_step": tags.get(keys.TAG_EVALUATED_STEP),
                "git_commit": tags.get(keys.TAG_GIT_COMMIT),
                "datasets": [d["dataset"]["name"] for d in run.get("inputs", {}).get("dataset_inputs", [])],
            }
        )
    finished = [r for r in rows if r["status"] == "FINISHED"]
    checks["every trial has a name other than its key"] = all(r["run_name"] != r["trial_key"] for r in rows)
    checks["every trial has a description"] = all(r["description"] for r in rows)
    checks["toggles are True/False, never None"] = all(
        set(r["toggles"].values()) <= {"True", "False"} for r in rows
    )
    checks["finished trials have final/ metrics at step 0 only"] = bool(finished) and all(
        r["final"] and all(s == [0] for s in r["final_steps"].values()) for r in finished
    )
    checks["trials name their data set and commit"] = all(r["datasets"] and r["git_commit"] for r in finished)

    models = ui.post("logged-models/search", {"experiment_ids": [experiment_id]}).get("models", [])
    logged = []
    for model in models:
        info = model["info"]
        mlmodel = ui.text(
            f"ajax-api/2.0/mlflow/logged-models/{info['model_id']}/artifacts/files",
            artifact_file_path="MLmodel",
        )
        logged.append(
            {
                "model_id": info["model_id"],
                "name": info.get("name"),
                "source_run_id": info.get("source_run_id"),
                "has_signature": "signature:" in mlmodel and "sources" in mlmodel,
                "has_input_example": "saved_input_example_info" in mlmodel,
            }
        )
    checks["a logged model with a signature and an input example"] = any(
        m["has_signature"] and m["has_input_example"] for m in logged
    )
    registered = study_tags.get(keys.TAG_BEST_RUN_ID)
    versions = (
        ui.get("model-versions/search", filter=f"run_id = '{registered}'").get("model_versions", [])
        if registered
        else []
    )
    checks["the registry version points at the logged model"] = any(
        v.get("source", "").startswith("models:/m-") for v in versions
    )
    return {
        "experiment": {"id": experiment_id, "name": experiment_name, "experimentKind": kind},
        "study": {
            "run_id": study_id,
            "run_name": study["info"].get("run_name"),
            "description": study_tags.get(keys.TAG_NOTE),
            "params": len(study_params),
        },
        "trials": rows,
        "show_diff_only": sorted(varied),
        "logged_models": logged,
        "model_versions": [
            {
                "name": v["name"],
                "version": v["version"],
                "source": v.get("source"),
                "description": v.get("description"),
            }
            for v in versions
        ],
        "checks": checks,
        "failed": [name for name, ok in checks.items() if not ok],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    )
    parser.add_argument("--experiment", required=True, help="the study's experiment name")
    parser.add_argument(
        "--server", default=None, help="an MLflow server already running (http://...); none started"
    )
    parser.add_argument(
        "--artifacts-destination", default=None, help="passed to mlflow server (default its own)"
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=STARTUP_TIMEOUT_S,
        help=f"seconds to wait for the server (default {STARTUP_TIMEOUT_S}; a busy machine needs more)",
    )
    args = parser.parse_args()
    process = None
    with tempfile.TemporaryDirectory(prefix="dtgan-ui-check-") as tmp:
        if args.server:
            base = args.server
        else:
            process, base = _start_server(
                args.tracking_uri, args.artifacts_destination, Path(tmp) / "server.log", args.startup_timeout
            )
        try:
            result = inspect(UI(base), args.experiment)
        finally:
            if process is not None:
                _stop(process)
    print(json.dumps(result, indent=2, default=str))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
