"""Large inputs: read memory-mapped, handed to workers as mapped files, their temporary files
removed after a run, an interrupt, a killed worker and (on the next run) a killed driver."""
import gc
import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import SMALL, impl_spec

from auditor import inputs, mapped, workers
from auditor.errors import UserError
from auditor.worker import main as worker_main
from auditor.worker import protocol

ROWS, COLS = 512, 1280  # 2.5 MiB of float32, 1.25 MiB of float16: past mapped.MAP_BYTES


@pytest.fixture(autouse=True)
def map_root(tmp_path, monkeypatch):
    """Give every test a root of its own for the drivers' folders (this process's made anew)."""
    monkeypatch.setenv(mapped.ROOT_ENV, str(tmp_path / "maps"))
    monkeypatch.setattr(mapped, "_folder", None)
    return tmp_path / "maps" / f"argmax-audit-maps-{os.getuid()}"


def logits(rows=ROWS, cols=COLS, seed=0):
    values = np.random.default_rng(seed).standard_normal((rows, cols), dtype=np.float32)
    values[3, [5, 9]] = 100.0  # a tie: the first must win
    return values


def safetensors_file(path, tensors):
    """Write `tensors` ({name: (safetensors dtype, numpy array of its bytes)}) to `path`."""
    header, data = {}, b""
    for name, (dtype, array) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + array.nbytes]}
        data += array.tobytes()
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def bfloat16_bits(values):
    return (values.view(np.uint32) >> 16).astype(np.uint16)  # truncated: exact in bfloat16


def write_inputs(folder):
    """Write one large array in every format and dtype the mapped readers treat apart."""
    values = logits()
    np.save(folder / "f32.npy", values)
    np.save(folder / "f16.npy", values.astype(np.float16))
    np.save(folder / "f64.npy", values.astype(np.float64) + 1e-12)  # rounds in float32
    np.save(folder / "i16.npy", (values * 100).astype(np.int16))
    np.save(folder / "fortran.npy", np.asfortranarray(values))
    np.save(folder / "big-endian.npy", values.astype(">f4"))
    np.savez(folder / "stored.npz", big=values, small=values[:2])
    np.savez_compressed(folder / "deflated.npz", big=values.astype(np.float64))
    safetensors_file(folder / "t.safetensors", {
        "f32": ("F32", values), "bf16": ("BF16", bfloat16_bits(values)),
        "f16": ("F16", values.astype(np.float16))})
    torch = pytest.importorskip("torch")
    source = torch.from_numpy(values)
    torch.save({"f32": source, "bf16": source.to(torch.bfloat16), "t": source.t()},
               folder / "t.pt")
    return sorted(str(p) for p in folder.iterdir())


def test_mapped_and_in_memory_reads_give_the_same_cases(tmp_path, monkeypatch):
    paths = write_inputs(tmp_path)
    mapped_cases = inputs.load_inputs(paths)
    monkeypatch.setattr(mapped, "MAP_BYTES", 2**62)  # everything read into memory, as before
    memory_cases = inputs.load_inputs(paths)
    assert [c.id for c in mapped_cases] == [c.id for c in memory_cases]
    for large, small in zip(mapped_cases, memory_cases):
        assert large.note == small.note and large.dim == small.dim
        assert large.values.dtype == np.float32 and large.values.flags.c_contiguous
        np.testing.assert_array_equal(large.values, small.values)
        assert mapped.file_ref(small.values) is None and small.origin["offset"] is None
        assert {**large.origin, "offset": None} == small.origin
    small_ones = {c.id for c in mapped_cases if mapped.file_ref(c.values) is None}
    assert small_ones == {"user:stored.npz:small"}  # small arrays of a file keep the old way
    assert "1e-12" not in "".join(c.note for c in mapped_cases)
    rounded = next(c for c in mapped_cases if c.id == "user:f64.npy")
    assert "values rounded" in rounded.note


def test_float32_npy_safetensors_and_pt_are_mapped_from_the_file_itself(tmp_path):
    write_inputs(tmp_path)
    cases = {c.id: c for c in inputs.load_inputs(
        [tmp_path / "f32.npy", tmp_path / "t.safetensors", tmp_path / "t.pt"])}
    npy = cases["user:f32.npy"]
    path, offset, _ = mapped.file_ref(npy.values)
    assert path == str(tmp_path / "f32.npy") and offset == npy.origin["offset"] == 128
    assert npy.origin == {"path": path, "size": os.path.getsize(path), "format": ".npy",
                          "key": None, "offset": 128, "dtype": "float32"}
    assert not npy.values.flags.writeable
    tensor = cases["user:t.safetensors:f32"]
    path, offset, _ = mapped.file_ref(tensor.values)
    assert path == str(tmp_path / "t.safetensors") and offset == tensor.origin["offset"]
    with open(path, "rb") as handle:
        handle.seek(offset)
        assert handle.read(16) == tensor.values.reshape(-1)[:4].tobytes()
    converted = cases["user:t.safetensors:bf16"]  # widened once into a temporary file
    assert mapped.file_ref(converted.values)[0].startswith(str(mapped.folder()))
    assert converted.origin["dtype"] == "bfloat16" and converted.origin["offset"] > offset
    tensor = cases["user:t.pt:f32"]  # at its zip record's offset, found from torch's mapping
    path, offset, _ = mapped.file_ref(tensor.values)
    assert path == str(tmp_path / "t.pt") and offset == tensor.origin["offset"]
    with open(path, "rb") as handle:
        handle.seek(offset)
        assert handle.read(tensor.values.nbytes) == tensor.values.tobytes()
    for key in ("bf16", "t"):  # widened; transposed (not contiguous in the file): converted
        found = cases[f"user:t.pt:{key}"]
        assert found.origin["offset"] is None and found.origin["format"] == ".pt"
        assert mapped.file_ref(found.values)[0].startswith(str(mapped.folder()))


def test_temporary_files_go_when_their_arrays_do(tmp_path):
    np.save(tmp_path / "f16.npy", logits().astype(np.float16))
    case = inputs.load_inputs([tmp_path / "f16.npy"])[0]
    path = mapped.file_ref(case.values)[0]
    assert os.path.dirname(path) == mapped.folder() and os.path.isfile(path)
    del case
    assert not os.path.exists(path)


def test_the_budget_counts_a_mapped_input_by_its_answers(tmp_path):
    np.save(tmp_path / "f32.npy", logits())  # 2.5 MiB
    assert len(inputs.load_inputs([tmp_path / "f32.npy"], limit_bytes=64 << 10)) == 1
    with pytest.raises(UserError, match=r"its answers take 4.0 KiB \(8 bytes per output "
                       r"position\), more than the 1.0 KiB"):
        inputs.load_inputs([tmp_path / "f32.npy"], limit_bytes=1024)
    np.save(tmp_path / "column.npy", logits().reshape(-1, 1))  # one answer per value
    with pytest.raises(UserError, match="its answers take 5.0 MiB"):
        inputs.load_inputs([tmp_path / "column.npy"], limit_bytes=1 << 20)


def test_a_conversion_that_does_not_fit_on_disk_is_refused(tmp_path, monkeypatch):
    np.save(tmp_path / "f16.npy", logits().astype(np.float16))
    monkeypatch.setattr(mapped, "SPARE_BYTES", 2**62)
    with pytest.raises(UserError, match="f16.npy to float32 needs 2.5 MiB of temporary space"):
        inputs.load_inputs([tmp_path / "f16.npy"])


def test_large_hostile_files_are_still_refused_before_mapping(tmp_path):
    np.save(tmp_path / "f32.npy", logits())
    data = (tmp_path / "f32.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-4])
    with pytest.raises(UserError, match="is truncated"):
        inputs.load_inputs([tmp_path / "cut.npy"])
    safetensors_file(tmp_path / "s.safetensors", {"x": ("F32", logits())})
    data = (tmp_path / "s.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-4])
    with pytest.raises(UserError, match="not a valid safetensors file"):
        inputs.load_inputs([tmp_path / "cut.safetensors"])


def test_mapped_cases_reach_workers_as_files_and_small_ones_in_the_payload(tmp_path):
    np.save(tmp_path / "f32.npy", logits())
    large = inputs.load_inputs([tmp_path / "f32.npy"])[0]
    small = inputs.array_cases([logits(4, 16)])[0]
    header, payload = workers.cases_message([large, small])
    big_ref, small_ref = (c["array"] for c in header["cases"])
    assert big_ref["file"] == str(tmp_path / "f32.npy") and big_ref["offset"] == 128
    assert len(payload) == small.values.nbytes
    seen = protocol.read_array(payload, big_ref)
    np.testing.assert_array_equal(seen, large.values)
    assert type(seen) is np.ndarray and seen.flags.writeable  # copy-on-write
    seen[0, 0] = 7.0
    assert np.load(tmp_path / "f32.npy", mmap_mode="r")[0, 0] != 7.0  # the file is untouched
    np.testing.assert_array_equal(protocol.read_array(payload, small_ref), small.values)


def test_a_mapped_file_that_changed_is_refused_by_the_worker(tmp_path):
    np.save(tmp_path / "f32.npy", logits())
    ref = workers.cases_message(inputs.load_inputs([tmp_path / "f32.npy"]))[0]["cases"][0]
    with open(tmp_path / "f32.npy", "ab") as handle:
        handle.write(b"more")
    with pytest.raises(ValueError, match="changed since the driver read it"):
        protocol.read_array(b"", ref["array"])


def test_large_in_memory_cases_are_written_once_for_the_workers(monkeypatch):
    monkeypatch.setattr(workers, "PIPE_BYTES", 1 << 20)
    case = inputs.array_cases([logits()])[0]
    first = workers.cases_message([case])[0]["cases"][0]["array"]
    again = workers.cases_message([case])[0]["cases"][0]["array"]
    assert first == again and os.path.dirname(first["file"]) == mapped.folder()
    np.testing.assert_array_equal(protocol.read_array(b"", first), case.values)
    del case
    assert not os.path.exists(first["file"])


def worker_input(ref, target):
    worker = worker_main.Worker(out=None)
    worker.adapter = worker_main.backends.resolve(worker_main.backends.BUILTIN["numpy"]).adapter()
    case = {"id": "c", "dim": -1, "keepdim": False, "layout": "contiguous", "array": ref}
    source = protocol.read_array(b"", ref)
    return source, worker._input(target, case, source, bool(target.get("impl")))[0]


def test_workers_hand_builtin_ops_the_mapping_itself_and_impls_a_copy(tmp_path):
    np.save(tmp_path / "f32.npy", logits())
    ref = workers.cases_message(inputs.load_inputs([tmp_path / "f32.npy"]))[0]["cases"][0]
    target = {"framework": "numpy", "device": "cpu", "dtype": "float32"}
    source, x = worker_input(ref["array"], target)
    assert np.shares_memory(x, source)
    source, x = worker_input(ref["array"], {**target, "impl": "mine"})
    assert not np.shares_memory(x, source)
    source, x = worker_input(ref["array"], {**target, "dtype": "float16"})
    assert x.dtype == np.float16


def test_stale_folders_of_dead_drivers_are_removed(map_root):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    os.makedirs(map_root / f"{dead.pid}-5-old")
    (map_root / f"{dead.pid}-5-old" / "x.f32").write_bytes(b"1234")
    os.makedirs(map_root / f"{dead.pid}-results")  # not named as a driver's folder: kept
    os.makedirs(map_root / "1-alive")  # pid 1 lives
    init = f"1-{mapped.started(1)}-x"
    os.makedirs(map_root / init)  # and started then
    if mapped.started(1):  # a process of pid 1 that started at another time is gone
        os.makedirs(map_root / f"1-{mapped.started(1) + 1}-reused")
    os.makedirs(map_root / "not-a-driver")
    mine = mapped.folder()
    assert os.path.basename(mine).startswith(f"{os.getpid()}-{mapped.started(os.getpid())}-")
    assert sorted(os.listdir(map_root)) == sorted([
        "1-alive", init, "not-a-driver", f"{dead.pid}-results", os.path.basename(mine)])


def test_a_root_that_is_a_link_is_refused(tmp_path, map_root):
    os.makedirs(tmp_path / "elsewhere")
    os.makedirs(map_root.parent)
    os.symlink(tmp_path / "elsewhere", map_root)
    with pytest.raises(UserError, match="is a link"):
        mapped.folder()


# --- end to end: the temporary files after a run, Ctrl-C, a killed worker, a killed driver ----


def driver_folders(root):
    return os.listdir(root) if os.path.isdir(root) else []


def start_run(tmp_path, impl, marker=None):
    """Start `audit run` on a large float16 input (converted into a temporary file)."""
    np.save(tmp_path / "f16.npy", logits().astype(np.float16))
    env = dict(os.environ, ARGMAX_TEST_MARKER=str(marker or tmp_path / "called"))
    return subprocess.Popen(
        [sys.executable, "-m", "auditor", *SMALL, "--repeats", "1", "--cases", "user",
         "--input", str(tmp_path / "f16.npy"), "--impl", impl_spec(impl), "--out",
         str(tmp_path / "bundle")], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(path, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
def test_the_temporary_file_is_removed_after_a_run_with_a_killed_worker(tmp_path, map_root):
    proc = start_run(tmp_path, "sigkill.py")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "killed by signal 9" in out
    assert os.path.isdir(map_root) and driver_folders(map_root) == []


@pytest.mark.slow
def test_the_temporary_file_is_removed_after_ctrl_c(tmp_path, map_root):
    proc = start_run(tmp_path, "waits.py")
    wait_for(tmp_path / "called", proc)
    [folder] = driver_folders(map_root)
    assert os.listdir(map_root / folder)  # the converted input, mapped by the worker
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "interrupted" in err, err
    assert driver_folders(map_root) == []


@pytest.mark.slow
def test_the_folder_of_a_killed_driver_goes_with_the_next_run(tmp_path, map_root):
    proc = start_run(tmp_path, "waits.py")
    wait_for(tmp_path / "called", proc)
    [stale] = driver_folders(map_root)
    proc.kill()  # kill -9: no atexit; its worker exits when it sees its parent gone
    proc.communicate(timeout=60)
    assert driver_folders(map_root) == [stale]
    again = start_run(tmp_path, "sigkill.py", marker=tmp_path / "again")
    again.communicate(timeout=300)
    assert driver_folders(map_root) == []


def test_a_pt_tensor_whose_offset_is_unknown_is_copied_into_a_temporary_file(tmp_path,
                                                                             monkeypatch):
    torch = pytest.importorskip("torch")
    values = logits()
    torch.save({"a": torch.from_numpy(values), "b": torch.from_numpy(values.copy())},
               tmp_path / "same-size.pt")
    found = {c.id: c for c in inputs.load_inputs([tmp_path / "same-size.pt"])}
    assert all(c.origin["offset"] is not None for c in found.values())  # both sizes agree
    monkeypatch.setattr(inputs, "data_records", lambda source: {})  # offsets unknown
    for case in inputs.load_inputs([tmp_path / "same-size.pt"]):
        assert case.origin["offset"] is None
        assert mapped.file_ref(case.values)[0].startswith(str(mapped.folder()))
        np.testing.assert_array_equal(case.values, values)


@pytest.mark.slow
def test_a_large_input_gives_the_same_answers_and_findings_mapped_as_read(audit, tmp_path,
                                                                            monkeypatch):
    np.save(tmp_path / "f32.npy", logits())  # mapped from the file
    np.save(tmp_path / "f16.npy", logits(seed=1).astype(np.float16))  # converted, then mapped
    safetensors_file(tmp_path / "t.safetensors", {  # at its offset; widened, then mapped
        "f32": ("F32", logits(seed=2)), "bf16": ("BF16", bfloat16_bits(logits(seed=3)))})
    torch = pytest.importorskip("torch")
    torch.save({"f32": torch.from_numpy(logits(seed=4))}, tmp_path / "t.pt")  # at its offset
    run = [*SMALL, "--cases", "user", "--impl", impl_spec("last_tie.py")]
    for name in ("f32.npy", "f16.npy", "t.safetensors", "t.pt"):
        run += ["--input", name]

    def answers(out):
        found = audit(*run, "--out", str(tmp_path / out))
        assert found.code == 1, found.err  # the planted last-tie fault is found
        document = found.results
        for case in document["cases"]:
            case.pop("note", None)
            (case.get("origin") or {}).pop("offset", None)  # where mapped in place, else None
        return (document["cases"], [(o["target"], o["case"], o["outcomes"])
                                    for o in document["observations"]],
                [(f["kind"], f["case"], f["targets"]) for f in document["findings"]])

    mapped_run = answers("mapped")
    gc.collect()
    assert os.listdir(mapped.folder()) == []  # the converted input went with the run's cases
    monkeypatch.setattr(mapped, "MAP_BYTES", 2**62)
    assert answers("read") == mapped_run
    assert len(mapped_run[0]) == 5
    assert {case for kind, case, _ in mapped_run[2] if kind == "tie_break"} == {
        "user:f32.npy", "user:f16.npy", "user:t.safetensors:f32", "user:t.safetensors:bf16",
        "user:t.pt:f32"}


def test_a_large_pt_that_pickles_code_is_refused_as_a_small_one_is(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"x": torch.from_numpy(logits()), "why": ValueError("no")}, tmp_path / "big.pt")
    torch.save({"x": torch.zeros(2), "why": ValueError("no")}, tmp_path / "small.pt")
    for name in ("big.pt", "small.pt"):
        with pytest.raises(UserError, match=r"refused it: it pickles \S*ValueError, which is not a tensor"):
            inputs.load_inputs([tmp_path / name])
    assert os.listdir(mapped.folder()) == []


@pytest.mark.parametrize("values", [
    np.arange(1000, dtype=np.float16).reshape(10, 100), np.ones((3, 5), bool),
    np.arange(12, dtype=">i8").reshape(3, 4), np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    np.uint64(2**63 + 5) * np.ones(7, np.uint64)])
def test_any_case_array_written_for_the_workers_maps_back_the_same(values):
    kept = mapped.write_raw(values)
    path, offset, stamp = mapped.file_ref(np.asarray(kept))
    ref = {"file": path, "offset": offset, "dtype": kept.dtype.str, "shape": list(kept.shape),
           "stamp": list(stamp)}
    seen = protocol.map_array(ref)
    assert seen.dtype == values.dtype and seen.tobytes() == np.ascontiguousarray(values).tobytes()


def test_a_stored_npz_member_is_mapped_in_place_and_a_compressed_one_extracted(tmp_path):
    np.savez(tmp_path / "stored.npz", big=logits())
    np.savez_compressed(tmp_path / "deflated.npz", big=logits())
    stored, deflated = inputs.load_inputs([tmp_path / "stored.npz", tmp_path / "deflated.npz"])
    path, offset, _ = mapped.file_ref(stored.values)
    assert path == str(tmp_path / "stored.npz") and offset == stored.origin["offset"]
    assert mapped.file_ref(deflated.values)[0].startswith(mapped.folder())
    assert deflated.origin["offset"] is None
    np.testing.assert_array_equal(stored.values, deflated.values)


def test_compressed_members_that_inflate_past_the_limit_are_refused_before_extraction(tmp_path):
    np.savez_compressed(tmp_path / "bomb.npz", zeros=np.zeros((1024, 2048), np.float32))
    assert os.path.getsize(tmp_path / "bomb.npz") < 64 << 10  # 8 MiB of zeros
    with pytest.raises(UserError, match="its large compressed members, extracted to disk, take "
                                        "8.0 MiB, more than the 4.0 MiB memory limit"):
        inputs.load_inputs([tmp_path / "bomb.npz"], limit_bytes=4 << 20)
    assert os.listdir(mapped.folder()) == []
