"""Study storage on s3:// for real: a real S3 API on localhost (moto in server mode), as MinIO users give it.

The endpoint comes from the standard ``AWS_ENDPOINT_URL`` variable. A study writes its launch, Tune state, run
folders, checkpoints and evaluation outputs to the bucket; with the local copies deleted, ``--resume`` and
``dtgan report`` still work from the bucket (and MLflow) alone. A bad URI and a missing bucket stop the study
with one line naming the URI, before any trial.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from studies_testdata import tiny_benchmark, tiny_study_overrides

from dtgan.storage import RunFolderSync, Storage, StorageError, fetch_file

REPO = Path(__file__).resolve().parents[2]
MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = "dtgan-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with one bucket; the AWS variables a user of an S3-compatible store sets."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                pafs.S3FileSystem(
                    allow_bucket_creation=True, endpoint_override=env["AWS_ENDPOINT_URL"]
                ).create_dir(BUCKET)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.3)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        log.close()


def test_storage_layer_round_trips_a_run_folder_through_the_bucket(s3_endpoint, tmp_path):
    stored = Storage.at(f"s3://{BUCKET}/unit/launch-1/runs/trial-a")
    writer = RunFolderSync(stored, scratch_root=tmp_path / "node1")
    (writer.local / "checkpoints").mkdir(parents=True)
    (writer.local / "checkpoints" / "step_00000010.pt").write_bytes(b"ten")
    (writer.local / ".metrics.jsonl.abc.tmp").write_text("half-written")  # never uploaded
    assert writer.push() == ["checkpoints/step_00000010.pt"]
    assert writer.push() == []  # nothing changed
    (writer.local / "checkpoints" / "step_00000010.pt").unlink()  # the run keeps only its newest checkpoints
    (writer.local / "checkpoints" / "step_00000020.pt").write_bytes(b"twenty")
    assert writer.push() == ["checkpoints/step_00000020.pt"]
    assert stored.files() == {"checkpoints/step_00000020.pt": 6}

    reader = RunFolderSync(stored, scratch_root=tmp_path / "node2")  # another node after a preemption
    assert reader.pull() == ["checkpoints/step_00000020.pt"]
    uri = reader.stored_uri(reader.local / "checkpoints" / "step_00000020.pt")
    assert uri == f"s3://{BUCKET}/unit/launch-1/runs/trial-a/checkpoints/step_00000020.pt"
    assert fetch_file(uri, tmp_path / "fetched").read_bytes() == b"twenty"
    assert Storage.at(f"s3://{BUCKET}/unit").list_dirs() == ["launch-1"]


def test_bad_locations_are_one_line_naming_the_uri(s3_endpoint):
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket/ray: cannot create .*bucket exists") as err:
        Storage.at("s3://no-such-bucket/ray").check_usable()
    assert "\n" not in str(err.value)
    with pytest.raises(StorageError, match=r"^nosuchscheme://x/y: not a storage location"):
        Storage.at("nosuchscheme://x/y")


def _study(tmp_path: Path, storage: str, *extra: str) -> subprocess.CompletedProcess:
    data = (
        tiny_benchmark(tmp_path) if not (tmp_path / "bench.parquet").exists() else tmp_path / "bench.parquet"
    )
    overrides = [*tiny_study_overrides(tmp_path, data), "study.variants=[b]", f"study.storage_path={storage}"]
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / "ablation.py"), "--preset", "smoke"]
        + [a for o in overrides for a in ("-o", o)]
        + ["--ray-temp-dir", tempfile.mkdtemp(prefix="rs", dir="/tmp"), *extra],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_missing_bucket_stops_the_study_before_any_trial(s3_endpoint, tmp_path):
    done = _study(tmp_path, "s3://no-such-bucket/ray")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "s3://no-such-bucket/ray: cannot create" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing started


@pytest.mark.slow
@pytest.mark.ray
def test_a_study_on_s3_resumes_and_reports_from_the_bucket_alone(s3_endpoint, tmp_path):
    storage = f"s3://{BUCKET}/ray"
    done = _study(tmp_path, storage)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| b-seed777 | completed |" in done.stdout
    assert not any(p.name.startswith("s3") for p in tmp_path.iterdir())  # no local folder named after the URI

    (launch,) = [d for d in Storage.at(storage).list_dirs() if d.startswith("ablation-smoke-")]
    files = Storage.at(storage).child(launch).files()
    # The networks every trial scores with, pinned by the driver, content-addressed in the bucket.
    assert any(f.endswith(".pt") for f in Storage.at(storage).child("extractors").files())
    assert any(f.startswith("runs/b-seed777/checkpoints/step_") for f in files)
    assert "runs/b-seed777/evaluation/final/evaluation.json" in files
    assert any(f.startswith("experiment_state") for f in files)  # Tune's own state, in the bucket too
    scratch = Path(tempfile.gettempdir()) / "dtgan-scratch" / launch
    assert (scratch / "b-seed777").is_dir()  # the node-local copy the trial wrote
    shutil.rmtree(scratch)  # the node is gone

    resumed = _study(tmp_path, storage, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert launch in resumed.stdout and "| b-seed777 | completed |" in resumed.stdout

    report = subprocess.run(
        [sys.executable, "-m", "dtgan", "report", "--experiment", "ablation-smoke"]
        + ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert "b" in report.stdout
