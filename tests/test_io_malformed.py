"""Malformed weights, snapshots and run folders: one line on stderr, exit 2, never a traceback.

One tiny pruned run is trained for the module; each case corrupts a copy of
one of its files and runs the CLI in-process on it.
"""

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
from networks import classifier_tail, fc, mnist_input
from runs import arrays_of, trained_run

from n2prune import cli

TINY = mnist_input(64) + fc("fc1", "sp", 16, "common.config", """\
ActivationFunction=Rectifier
QWeight=Prune
QWeight.PruningMode=Static
QWeight.Threshold=0.3
""") + classifier_tail("fc1", 10, "common.config") + """
[common.config]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""

FC1 = "param/fc1.weights[0]"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("malformed"), "tiny.ini", TINY, "--steps", "2",
                       log_every=1)


def rewrite(path, **changes):
    """Save ``path`` again with some arrays replaced (None: removed)."""
    arrays = {**arrays_of(path), **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def write_raw_npz(path, members):
    """An npz from raw ``{name: bytes}`` members, as a crafted file would be."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def huge_header(path):
    """A member whose header claims 10^11 float32 values, followed by 16 bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
    write_raw_npz(path, {f"{FC1}.npy": buffer.getvalue() + bytes(16)})


def flip_byte(path, where=0.5):
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_meta(path, edit):
    meta = json.loads(str(arrays_of(path)["meta"]))
    edit(meta)
    rewrite(path, meta=np.array(json.dumps(meta)))


def edit_json(path, edit):
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def scaled(path, key, factor, dtype=None):
    value = arrays_of(path)[key] * factor
    return value.astype(dtype) if dtype else value


# Each weights case: (id, corrupt(weights.npz path)).
WEIGHTS_CASES = [
    ("empty", lambda p: p.write_bytes(b"")),
    ("truncated", truncate),
    ("random_bytes", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096))),
    ("bit_flipped", flip_byte),
    ("plain_npy", lambda p: p.write_bytes(_npy_bytes(np.zeros(3)))),
    ("object_array", lambda p: np.savez(p, **{FC1: np.array([1, "a"], dtype=object)})),
    ("string_array", lambda p: rewrite(p, **{FC1: np.full(arrays_of(p)[FC1].shape, "a")})),
    ("huge_header", huge_header),
    ("int_weights", lambda p: rewrite(p, **{FC1: scaled(p, FC1, 100, np.int32)})),
    ("complex_weights", lambda p: rewrite(p, **{FC1: scaled(p, FC1, 1 + 1j)})),
    ("bad_npy_magic", lambda p: write_raw_npz(p, {f"{FC1}.npy": b"not an npy header"})),
    ("mask_of_twos", lambda p: rewrite(p, **{"quant/fc1/mask0": scaled(p, "quant/fc1/mask0", 0) + 2})),
    ("mask_wrong_shape", lambda p: rewrite(p, **{"quant/fc1/mask0": np.ones((3, 3), np.uint8)})),
    ("counter_not_number", lambda p: rewrite(p, **{"quant/fc1/counter": np.ones(4)})),
]


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def check_one_line_error(capsys, code, name):
    """Exit 2 and exactly one ``error:`` line on stderr, naming ``name``."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error:") and name in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("corrupt", [c for _, c in WEIGHTS_CASES], ids=[i for i, _ in WEIGHTS_CASES])
def test_malformed_weights_npz(trained, tmp_path, capsys, corrupt):
    ini, run = trained
    weights = tmp_path / "given.npz"
    shutil.copy(run / "weights.npz", weights)
    corrupt(weights)
    capsys.readouterr()
    check_one_line_error(capsys, cli.main(["test", str(ini), "--weights", str(weights)]), "given.npz")


def test_malformed_weights_refused_by_train_too(trained, tmp_path, capsys):
    ini, run = trained
    weights = tmp_path / "given.npz"
    truncate(shutil.copy(run / "weights.npz", weights))
    code = cli.main(["train", str(ini), "--weights", str(weights), "--out", str(tmp_path / "r")])
    check_one_line_error(capsys, code, "given.npz")
    assert not (tmp_path / "r").exists()  # refused before the run folder is made


def _put_folder(folder, name):
    (folder / name).unlink()
    (folder / name).mkdir()


# Each syntxt case: (id, corrupt(weights folder), file named in the message).
SYNTXT_CASES = [
    ("file_is_folder", lambda d: _put_folder(d, "fc1_weights.syntxt"), "fc1_weights.syntxt"),
    ("nan", lambda d: (d / "fc2_biases.syntxt").write_text("nan\n" * 10), "fc2_biases.syntxt"),
    ("inf", lambda d: (d / "fc2_biases.syntxt").write_text("1\n" * 9 + "-inf\n"), "fc2_biases.syntxt"),
    ("npz_is_folder", lambda d: (d / "w.npz").mkdir(), "w.npz"),
]


@pytest.mark.parametrize("corrupt, name", [c[1:] for c in SYNTXT_CASES], ids=[c[0] for c in SYNTXT_CASES])
def test_malformed_syntxt_folder(trained, tmp_path, capsys, corrupt, name):
    ini, run = trained
    folder = tmp_path / "weights"
    shutil.copytree(run / "weights", folder)
    corrupt(folder)
    source = folder / "w.npz" if name == "w.npz" else folder
    capsys.readouterr()
    check_one_line_error(capsys, cli.main(["test", str(ini), "--weights", str(source)]), name)


def _rng_state(meta):
    meta["data_rng"]["state"] = "x"


def _drop_inner_rng_key(meta):
    del meta["cell_rng"]["state"]["inc"]


def _solver_key(path):
    return next(k for k in arrays_of(path) if k.startswith("solver/fc1/weights/velocity."))


# Each resume case: (id, file in the run folder, corrupt(that file)).
RESUME_CASES = [
    ("snapshot_truncated", "snapshot.npz", truncate),
    ("snapshot_bit_flipped", "snapshot.npz", flip_byte),
    ("snapshot_empty", "snapshot.npz", lambda p: p.write_bytes(b"")),
    ("snapshot_huge_header", "snapshot.npz", huge_header),
    ("snapshot_no_meta", "snapshot.npz", lambda p: rewrite(p, meta=None)),
    ("meta_not_json", "snapshot.npz", lambda p: rewrite(p, meta=np.array("{not json"))),
    ("meta_not_object", "snapshot.npz", lambda p: rewrite(p, meta=np.array("[1, 2]"))),
    ("meta_lacks_rng", "snapshot.npz", lambda p: edit_meta(p, lambda m: m.pop("data_rng"))),
    ("meta_bad_rng", "snapshot.npz", lambda p: edit_meta(p, _rng_state)),
    ("meta_rng_lacks_key", "snapshot.npz", lambda p: edit_meta(p, _drop_inner_rng_key)),
    ("meta_step_not_int", "snapshot.npz", lambda p: edit_meta(p, lambda m: m["state"].update(step="x"))),
    ("mask_wrong_shape", "snapshot.npz",
     lambda p: rewrite(p, **{"quant/fc1/mask0": np.ones((2, 2), np.uint8)})),
    ("mask_of_twos", "snapshot.npz",
     lambda p: rewrite(p, **{"quant/fc1/mask0": scaled(p, "quant/fc1/mask0", 0) + 2})),
    ("epoch_order_out_of_range", "snapshot.npz",
     lambda p: rewrite(p, epoch_order=scaled(p, "epoch_order", 1000))),
    ("velocity_wrong_shape", "snapshot.npz",
     lambda p: rewrite(p, **{_solver_key(p): np.zeros(3, np.float32)})),
    ("run_json_not_json", "run.json", lambda p: p.write_text("{seed: 1")),
    ("run_json_not_object", "run.json", lambda p: p.write_text("[]")),
    ("run_json_lacks_keys", "run.json", lambda p: p.write_text("{}")),
    ("seed_string", "run.json", lambda p: edit_json(p, lambda d: {**d, "seed": "x"})),
    ("seed_float", "run.json", lambda p: edit_json(p, lambda d: {**d, "seed": 1.5})),
    ("seed_list", "run.json", lambda p: edit_json(p, lambda d: {**d, "seed": [1]})),
    ("seed_negative", "run.json", lambda p: edit_json(p, lambda d: {**d, "seed": -1})),
    ("epochs_string", "run.json", lambda p: edit_json(p, lambda d: {**d, "epochs": "x"})),
    ("overrides_numbers", "run.json", lambda p: edit_json(p, lambda d: {**d, "overrides": [1]})),
    ("metrics_headerless", "metrics.csv", lambda p: p.write_text("")),
]


@pytest.mark.parametrize("name, corrupt", [c[1:] for c in RESUME_CASES], ids=[c[0] for c in RESUME_CASES])
def test_malformed_resume(trained, tmp_path, capsys, name, corrupt):
    ini, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    corrupt(copy / name)
    capsys.readouterr()
    check_one_line_error(capsys, cli.main(["train", str(ini), "--resume", str(copy)]), name)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e39])
def test_non_finite_weights_are_refused_naming_the_parameter(trained, tmp_path, capsys, value):
    ini, run = trained
    for name in ("weights.npz", "snapshot.npz"):
        path = tmp_path / name
        shutil.copy(run / name, path)
        fc1 = arrays_of(path)[FC1].astype(np.float64)
        fc1[3, 5] = value
        rewrite(path, **{FC1: fc1})
    capsys.readouterr()
    check_one_line_error(capsys, cli.main(["test", str(ini), "--weights", str(tmp_path / "weights.npz")]),
                         "weights.npz")
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.copy(tmp_path / "snapshot.npz", copy / "snapshot.npz")
    check_one_line_error(capsys, cli.main(["train", str(ini), "--resume", str(copy)]), "snapshot.npz")


def test_deflated_member_larger_than_the_model_is_refused_before_reading(trained, tmp_path, capsys):
    """80 MB of zeros deflate to ~80 kB: refused from the header, never decompressed."""
    ini, _ = trained
    bomb = tmp_path / "bomb.npz"
    count = 20_000_000
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open(f"{FC1}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f4", "fortran_order": False, "shape": (count,)})
        chunk = bytes(1 << 20)
        for _ in range(count * 4 // len(chunk)):
            member.write(chunk)
    assert bomb.stat().st_size < 1 << 20
    capsys.readouterr()
    check_one_line_error(capsys, cli.main(["test", str(ini), "--weights", str(bomb)]), "bomb.npz")
