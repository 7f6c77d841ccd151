"""Users' input files: every format read to float32 cases, and every bad file refused in one line."""
import json
import sys
import tracemalloc
import warnings
import zipfile

import ml_dtypes
import numpy as np
import pytest

from auditor import inputs
from auditor.errors import UserError
from auditor.inputs import amount, default_limit, load_inputs

LOGITS = np.array([[0.5, 2.0, -1.0, 2.0], [3.25, -0.0, 7.5, 1.0]], dtype=np.float32)


def refused(path, *args, **kwargs):
    """Assert that loading `path` raises one UserError line that names the file; return it."""
    with pytest.raises(UserError) as info:
        load_inputs([path], *args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


def write_safetensors(path, tensors, header=None, extra=b""):
    """Write `tensors` {name: (dtype code, shape, raw bytes)} as safetensors, or `header` as is."""
    if header is None:
        header, offset = {}, 0
        for name, (dtype, shape, data) in tensors.items():
            header[name] = {"dtype": dtype, "shape": list(shape),
                            "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    data = b"".join(raw for _, _, raw in tensors.values())
    path.write_bytes(len(text).to_bytes(8, "little") + text + data + extra)
    return path


def bfloat16_bits(values):
    """Return the bfloat16 bytes of float32 `values`, which bfloat16 must hold exactly."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    assert not (bits & 0xFFFF).any()
    return (bits >> 16).astype("<u2").tobytes()


# --- every format round-trips -------------------------------------------------------------------


def test_npy_round_trips_to_one_case(tmp_path):
    np.save(tmp_path / "logits.npy", LOGITS)
    [case] = load_inputs([tmp_path / "logits.npy"])
    assert case.id == "user:logits.npy"
    assert case.tags == ("user",)
    assert case.dim == -1 and not case.keepdim and case.layout == "contiguous"
    assert case.values.dtype == np.float32 and case.values.flags.c_contiguous
    np.testing.assert_array_equal(case.values, LOGITS)
    assert case.note == f"from {tmp_path / 'logits.npy'}: float32, shape (2, 4)"


def test_npy_fortran_order_and_big_endian_become_c_ordered_float32(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(LOGITS.astype(">f4")))
    [case] = load_inputs([tmp_path / "f.npy"])
    assert case.note.endswith("float32, shape (2, 4)")
    assert case.values.dtype == np.float32 and case.values.flags.c_contiguous
    np.testing.assert_array_equal(case.values, LOGITS)


def test_npz_gives_a_case_per_array_in_file_order(tmp_path):
    np.savez(tmp_path / "run.npz", logits=LOGITS, scores=LOGITS[0].astype(np.float16),
             scalar=np.float64(2.5), empty=np.zeros((3, 0), np.float32))
    cases = load_inputs([tmp_path / "run.npz"])
    assert [c.id for c in cases] == ["user:run.npz:logits", "user:run.npz:scores",
                                     "user:run.npz:scalar", "user:run.npz:empty"]
    logits, scores, scalar, empty = cases
    np.testing.assert_array_equal(logits.values, LOGITS)
    np.testing.assert_array_equal(scores.values, LOGITS[0])
    assert "array 'scores': float16, shape (4,); converted to float32 exactly" in scores.note
    assert scalar.dim is None and scalar.values.shape == () and scalar.values == np.float32(2.5)
    assert empty.values.shape == (3, 0) and empty.dim == -1 and empty.must_raise


def test_compressed_npz_reads_like_npz(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", LOGITS)
    [case] = load_inputs([tmp_path / "c.npz"])
    assert case.id == "user:c.npz:arr_0"
    np.testing.assert_array_equal(case.values, LOGITS)


@pytest.mark.parametrize("dtype, raw, name", [
    ("F32", LOGITS.astype("<f4").tobytes(), "float32"),
    ("F64", LOGITS.astype("<f8").tobytes(), "float64"),
    ("F16", LOGITS.astype("<f2").tobytes(), "float16"),
    ("BF16", bfloat16_bits(LOGITS), "bfloat16"),
    ("F8_E4M3", LOGITS.astype(ml_dtypes.float8_e4m3fn).tobytes(), "float8_e4m3fn"),
    ("I64", LOGITS.astype("<i8").tobytes(), "int64"),
    ("I16", LOGITS.astype("<i2").tobytes(), "int16"),
    ("U8", np.abs(LOGITS).astype("u1").tobytes(), "uint8"),
])
def test_safetensors_round_trips_every_dtype_exactly(tmp_path, dtype, raw, name):
    path = write_safetensors(tmp_path / "m.safetensors", {"logits": (dtype, (2, 4), raw)})
    [case] = load_inputs([path])
    stored = {"BF16": LOGITS, "F8_E4M3": LOGITS.astype(ml_dtypes.float8_e4m3fn),
              "U8": np.abs(LOGITS).astype("u1")}.get(dtype, LOGITS.astype(name))
    np.testing.assert_array_equal(case.values, stored.astype(np.float32))
    assert case.id == "user:m.safetensors:logits" and case.tags == ("user",) and case.dim == -1
    assert f"array 'logits': {name}, shape (2, 4)" in case.note
    assert name == "float32" or case.note.endswith("converted to float32 exactly")


def test_safetensors_gives_a_case_per_tensor_in_data_order_and_skips_metadata(tmp_path):
    header = {"__metadata__": {"format": "pt"},
              "b": {"dtype": "F32", "shape": [], "data_offsets": [8, 12]},
              "a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}
    raw = bfloat16_bits([[1.5, -2.0], [3.140625, 0.0]]) + np.float32(7).tobytes()
    path = write_safetensors(tmp_path / "m.safetensors", {"": ("", (), raw)}, header=header)
    a, b = load_inputs([path])
    assert (a.id, b.id) == ("user:m.safetensors:a", "user:m.safetensors:b")
    np.testing.assert_array_equal(a.values, [[1.5, -2.0], [3.140625, 0.0]])
    assert b.values.shape == () and b.dim is None and b.values == 7


def test_lossy_conversions_say_how_many_values_were_rounded(tmp_path):
    np.savez(tmp_path / "wide.npz", f64=np.array([0.1, 0.5, 1e300, -1e300]),
             i64=np.array([2**24 + 1, 3, -(2**40) - 1]), i32=np.array([7, -8], np.int32))
    f64, i64, i32 = load_inputs([tmp_path / "wide.npz"])
    assert f64.note.endswith("float64, shape (4,); converted to float32, 3 of 4 values rounded "
                             "(2 overflowed to inf)")
    np.testing.assert_array_equal(f64.values, np.float32([0.1, 0.5, np.inf, -np.inf]))
    assert i64.note.endswith("int64, shape (3,); converted to float32, 2 of 3 values rounded")
    assert i32.note.endswith("int32, shape (2,); converted to float32 exactly")


def test_nan_and_signed_zero_survive_float64_exactly(tmp_path):
    np.save(tmp_path / "n.npy", np.array([np.nan, -0.0, np.inf, 1.0]))
    [case] = load_inputs([tmp_path / "n.npy"])
    assert case.note.endswith("converted to float32 exactly")
    assert np.isnan(case.values[0]) and np.signbit(case.values[1])


def test_pt_dict_of_tensors_gives_a_case_per_tensor_keys_joined(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"logits": torch.tensor(LOGITS, dtype=torch.bfloat16),
                "layers": [torch.tensor(LOGITS), (torch.tensor([1, 5, 2]),)],
                "weight": torch.nn.Parameter(torch.tensor(LOGITS[0]))}, tmp_path / "out.pt")
    cases = load_inputs([tmp_path / "out.pt"])
    assert [c.id for c in cases] == ["user:out.pt:logits", "user:out.pt:layers.0",
                                     "user:out.pt:layers.1.0", "user:out.pt:weight"]
    logits, layer, ints, weight = cases
    np.testing.assert_array_equal(logits.values, LOGITS)  # these values are exact in bfloat16
    assert "array 'logits': bfloat16, shape (2, 4); converted to float32 exactly" in logits.note
    assert "array 'layers.1.0': int64, shape (3,)" in ints.note
    np.testing.assert_array_equal(weight.values, LOGITS[0])
    assert all(c.values.dtype == np.float32 and c.tags == ("user",) for c in cases)


def test_pt_single_tensor_has_the_file_name_as_id(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.tensor(LOGITS, dtype=torch.float16), tmp_path / "x.pth")
    [case] = load_inputs([tmp_path / "x.pth"], dim=0)
    assert case.id == "user:x.pth" and case.dim == 0
    assert case.note == f"from {tmp_path / 'x.pth'}: float16, shape (2, 4); converted to float32 " \
                        "exactly"


# --- dims and ids -----------------------------------------------------------------------------


def test_dim_is_applied_to_every_array_and_0d_arrays_reduce_whole(tmp_path):
    np.savez(tmp_path / "d.npz", a=np.zeros((2, 3, 4)), s=np.float32(1))
    a, s = load_inputs([tmp_path / "d.npz"], dim=1)
    assert (a.dim, s.dim) == (1, None)
    a, s = load_inputs([tmp_path / "d.npz"], dim=None)
    assert (a.dim, s.dim) == (None, None)


@pytest.mark.parametrize("dim", [2, -3])
def test_a_dim_out_of_range_names_file_array_and_the_valid_dims(tmp_path, dim):
    np.savez(tmp_path / "d.npz", ok=np.zeros((2, 3, 4)), flat=np.zeros((2, 3)))
    message = refused(tmp_path / "d.npz", dim=dim)
    assert "array 'flat'" in message and f"dim {dim} (--input-dim) is out of range" in message
    assert "shape (2, 3)" in message and "from -2 to 1" in message


def test_same_name_in_two_folders_gets_the_folder_and_a_repeated_file_is_read_once(tmp_path):
    for folder in ("run1", "run2"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "logits.npy", LOGITS)
    np.save(tmp_path / "other.npy", LOGITS)
    paths = [tmp_path / "run1/logits.npy", tmp_path / "run2/logits.npy", tmp_path / "other.npy",
             tmp_path / "run1/../run1/logits.npy"]
    assert [c.id for c in load_inputs(paths)] == ["user:run1/logits.npy", "user:run2/logits.npy",
                                                  "user:other.npy"]


def test_ids_stay_unique_and_on_one_line(tmp_path):
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name planted here
        for name in ("a\nb.npy", "x.npy", "x.npy"):
            with archive.open(name, "w", force_zip64=False) as member:
                np.lib.format.write_array(member, LOGITS)
    ids = [c.id for c in load_inputs([tmp_path / "odd.npz"])]
    assert ids == ["user:odd.npz:a\\nb", "user:odd.npz:x", "user:odd.npz:x#2"]


# --- bad files --------------------------------------------------------------------------------


def test_missing_file_directory_and_unknown_extension_are_refused(tmp_path):
    assert "cannot read it: No such file or directory" in refused(tmp_path / "gone.npy")
    (tmp_path / "folder.npz").mkdir()
    assert "is a folder, not a regular file" in refused(tmp_path / "folder.npz")
    (tmp_path / "scores.csv").write_text("1,2,3\n")
    message = refused(tmp_path / "scores.csv")
    assert "unknown file type '.csv'" in message
    assert ".npy, .npz, .pt, .pth, .safetensors" in message


def test_pickled_object_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)
    assert "Python objects, which are not unpickled" in refused(tmp_path / "obj.npy")


@pytest.mark.parametrize("values, words", [
    (np.array(["cat", "dog"]), "holds strings"),
    (np.array([1 + 2j, 3j]), "complex numbers"),
    (np.array([True, False]), "bool values"),
    (np.zeros(3, dtype=[("a", "f4")]), "raw bytes or records"),
])
def test_non_numeric_arrays_are_refused_in_npy_and_npz(tmp_path, values, words):
    np.save(tmp_path / "v.npy", values)
    assert words in refused(tmp_path / "v.npy")
    np.savez(tmp_path / "v.npz", good=LOGITS, bad=values)
    message = refused(tmp_path / "v.npz")
    assert words in message and "array 'bad'" in message


def test_corrupt_and_truncated_npy_are_refused(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"this is not numpy at all")
    assert "not a valid .npy file" in refused(tmp_path / "junk.npy")
    np.save(tmp_path / "cut.npy", LOGITS)
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-5])
    assert "is truncated: its header says 32 bytes of data, the file holds 27" in refused(
        tmp_path / "cut.npy")
    with open(tmp_path / "negative.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (-1, -4)})
        handle.write(bytes(16))
    assert "shape (-1, -4) has a negative size" in refused(tmp_path / "negative.npy")


def test_truncated_corrupt_and_empty_npz_are_refused(tmp_path):
    np.savez(tmp_path / "full.npz", a=LOGITS)
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert "not a valid .npz (zip) file" in refused(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("hello")
    assert "not a valid .npz (zip) file" in refused(tmp_path / "text.npz")
    np.savez(tmp_path / "empty.npz")
    assert refused(tmp_path / "empty.npz").endswith("holds no arrays")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as archive:
        archive.writestr("readme.txt", "hi")
    assert "member 'readme.txt' is not a .npy array" in refused(tmp_path / "other.npz")


def test_npz_member_whose_header_promises_more_than_it_holds_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as archive:
        with archive.open("a.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
            member.write(b"\0" * 16)
    assert "is truncated: its header says 4398046511104 bytes" in refused(
        tmp_path / "lie.npz", limit_bytes=2**50)


class Planted:
    """An object whose unpickling would write a marker file: it must never be unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (write_marker, (self.marker,))


def write_marker(path):
    with open(path, "w") as handle:
        handle.write("code ran while loading")


def test_pt_with_a_pickled_object_is_refused_without_running_its_code(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "marker"
    torch.save({"logits": torch.tensor(LOGITS), "payload": Planted(str(marker))},
               tmp_path / "evil.pt")
    message = refused(tmp_path / "evil.pt")
    assert "torch.load(weights_only=True) refused it: it pickles" in message
    assert "write_marker" in message
    assert not marker.exists()


def test_pt_with_a_model_a_string_or_a_number_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pt")
    assert "it pickles torch.nn.modules.linear.Linear" in refused(tmp_path / "model.pt")
    torch.save("hello", tmp_path / "str.pt")
    assert refused(tmp_path / "str.pt").endswith("holds a value of type str, not a tensor")
    torch.save({"logits": torch.tensor(LOGITS), "epoch": 3}, tmp_path / "ckpt.pt")
    assert "array 'epoch': holds a value of type int, not a tensor" in refused(tmp_path / "ckpt.pt")
    torch.save({}, tmp_path / "none.pt")
    assert refused(tmp_path / "none.pt").endswith("holds no arrays")


def test_pt_with_bool_complex_or_a_cycle_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"mask": torch.tensor([True, False])}, tmp_path / "bool.pt")
    assert "array 'mask': holds bool values" in refused(tmp_path / "bool.pt")
    torch.save(torch.tensor([1j]), tmp_path / "complex.pt")
    assert "complex numbers" in refused(tmp_path / "complex.pt")
    loop = [torch.zeros(1)]
    loop.append(loop)
    torch.save(loop, tmp_path / "loop.pt")
    assert "holds a container inside itself" in refused(tmp_path / "loop.pt")


def test_corrupt_pt_is_refused(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    message = refused(tmp_path / "junk.pt")
    assert "not a file torch.load(weights_only=True) can read (UnpicklingError: Unsupported" \
        in message


def test_pt_without_torch_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    (tmp_path / "x.pt").write_bytes(b"anything")
    assert "needs PyTorch: pip install torch" in refused(tmp_path / "x.pt")


# --- hostile safetensors headers --------------------------------------------------------------

F32 = np.zeros(4, "<f4").tobytes()


def entry(dtype="F32", shape=(4,), offsets=(0, 16)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


HOSTILE = {
    "length past the end": (b"", "header length 1152921504606846976 is more than the"),
    "length over 100 MB": (b" " * 16, "is over 100 MB"),
    "not json": (b"{not json", "the header is not JSON"),
    "not an object": (b"[1, 2]", "the header is not a JSON object"),
    "duplicate key": (b'{"a": {}, "a": {}}', "key 'a' appears twice"),
    "entry not an object": ({"a": 5}, "tensor 'a' is not described by a JSON object"),
    "unknown dtype": ({"a": entry(dtype="F128")}, "has dtype 'F128', not one of F64, F32"),
    "bool dtype": ({"a": entry(dtype="BOOL", shape=(16,))}, "holds bool values"),
    "offsets past the buffer": ({"a": entry(offsets=(0, 2**62))},
                                "data_offsets [0, 4611686018427387904], not a range within "
                                "the 16-byte data buffer"),
    "negative offsets": ({"a": entry(offsets=(-16, 0))}, "not a range within"),
    "reversed offsets": ({"a": entry(offsets=(16, 0))}, "not a range within"),
    "three offsets": ({"a": entry(offsets=(0, 8, 16))}, "not a range within"),
    "float offsets": ({"a": entry(offsets=(0.0, 16.0))}, "not a range within"),
    "negative size": ({"a": entry(shape=(-4,))}, "has shape [-4], not a list of sizes"),
    "bool size": ({"a": entry(shape=(True,))}, "not a list of sizes"),
    "shape against bytes": ({"a": entry(shape=(5,))}, "takes 20 bytes, but its data_offsets "
                                                      "give 16"),
    "2**60 shape": ({"a": entry(shape=(2**60,))}, "takes 4611686018427387904 bytes"),
    "2**60 squared": ({"a": entry(shape=(2**60, 2**60))}, "but its data_offsets give 16"),
    "overlap": ({"a": entry(shape=(3,), offsets=(0, 12)), "b": entry(shape=(3,), offsets=(4, 16))},
                "tensor 'b' overlaps the tensor before it"),
    "hole": ({"a": entry(shape=(2,), offsets=(8, 16))}, "leaves bytes 0 to 8 unused"),
    "short": ({"a": entry(shape=(2,), offsets=(0, 8))}, "the tensors take 8 bytes of the 16"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_safetensors_header_is_refused_without_allocating(tmp_path, name):
    header, words = HOSTILE[name]
    path = tmp_path / "bad.safetensors"
    write_safetensors(path, {"": ("", (), F32)}, header=header)
    if name == "length past the end":
        path.write_bytes((2**60).to_bytes(8, "little") + b"{}")
    if name == "length over 100 MB":  # a sparse file: its size is all the check looks at
        path.write_bytes((100_000_001).to_bytes(8, "little"))
        with open(path, "r+b") as handle:
            handle.truncate(100_000_100)
    tracemalloc.start()
    try:
        message = refused(path, limit_bytes=2**62)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "not a valid safetensors file" in message or words == "holds bool values"
    assert words in message
    assert peak < 2**20, peak


def test_safetensors_shorter_than_its_length_prefix_is_refused(tmp_path):
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    assert "2 bytes is too short" in refused(tmp_path / "tiny.safetensors")


# --- memory limit -----------------------------------------------------------------------------


def test_files_larger_than_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("data read past the memory limit")

    monkeypatch.setattr(np.lib.format, "read_array", never)
    monkeypatch.setattr(inputs, "safetensors_values", never)
    np.save(tmp_path / "big.npy", np.zeros(1000, np.float64))
    np.savez(tmp_path / "big.npz", a=np.zeros(1000, np.float64))
    write_safetensors(tmp_path / "big.safetensors", {"a": ("F64", (1000,), bytes(8000))})
    for name in ("big.npy", "big.npz", "big.safetensors"):
        message = refused(tmp_path / name, limit_bytes=4096)
        assert "its arrays take 7.8 KiB, more than the 4.0 KiB memory limit" in message


def test_pt_larger_than_the_limit_is_refused_before_torch_loads_it(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    torch.save(torch.zeros(1000), tmp_path / "big.pt")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran"))
    assert "the file takes" in refused(tmp_path / "big.pt", limit_bytes=1024)


def test_arrays_whose_float32_copies_pass_the_limit_are_refused(tmp_path):
    np.save(tmp_path / "bytes.npy", np.zeros(1000, np.int8))
    message = refused(tmp_path / "bytes.npy", limit_bytes=2000)
    assert "its float32 copy takes 3.9 KiB, more than the 2.0 KiB memory limit" in message
    np.save(tmp_path / "first.npy", np.zeros(400, np.float32))
    np.save(tmp_path / "second.npy", np.zeros(400, np.float32))
    with pytest.raises(UserError, match="second.npy.*3.1 KiB with the inputs before it"):
        load_inputs([tmp_path / "first.npy", tmp_path / "second.npy"], limit_bytes=3000)
    assert len(load_inputs([tmp_path / "second.npy"], limit_bytes=1600)) == 1


def test_default_limit_is_half_the_available_memory():
    assert 0 < default_limit() < 2**50


@pytest.mark.parametrize("nbytes, words", [(100, "100 bytes"), (3 * 2**10, "3.0 KiB"),
                                           (2**20 + 2**19, "1.5 MiB"), (5 * 2**30, "5.0 GiB")])
def test_amounts_read_in_binary_units(nbytes, words):
    assert amount(nbytes) == words
