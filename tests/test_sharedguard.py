"""The fingerprint that conftest.py compares before and after the suite sees every kind of write."""

import os

import pytest

from sharedguard import changes, fingerprint

OLD = 1_600_000_000 * 10**9  # a fixed past mtime (ns): a write now always moves it


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "raw" / "b.txt").write_text("12\n")
    (tmp_path / "link").symlink_to("raw/a.bin")
    for path in (tmp_path / "raw" / "a.bin", tmp_path / "raw" / "b.txt", tmp_path / "raw", tmp_path):
        os.utime(path, ns=(OLD, OLD))
    return tmp_path


def _flip_first_byte_keeping_size_and_mtime(root):
    path = root / "raw" / "a.bin"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(OLD, OLD))


def _retarget_link(root):
    (root / "link").unlink()
    (root / "link").symlink_to("raw/b.txt")
    os.utime(root, ns=(OLD, OLD))


WRITES = {
    "processed folder": (lambda r: (r / "processed").mkdir(),
                         ["added: processed", "changed: . (mtime)"]),
    "removed file": (lambda r: (r / "raw" / "b.txt").unlink(),
                     ["removed: raw/b.txt", "changed: raw (mtime)"]),
    "same size and mtime": (_flip_first_byte_keeping_size_and_mtime, ["changed: raw/a.bin (content)"]),
    "created then deleted": (lambda r: ((r / "raw" / "t").write_text("x"), (r / "raw" / "t").unlink()),
                             ["changed: raw (mtime)"]),
    "chmod": (lambda r: (r / "raw" / "b.txt").chmod(0o600), ["changed: raw/b.txt (mode)"]),
    "link retargeted": (_retarget_link, ["changed: link (content)"]),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_kind_of_write_is_listed(tree, write):
    act, expected = WRITES[write]
    before = fingerprint(tree)
    act(tree)
    assert changes(before, fingerprint(tree)) == expected


def test_reading_changes_nothing(tree):
    before = fingerprint(tree)
    for path in tree.rglob("*"):
        if path.is_file():
            path.read_bytes()
    assert changes(before, fingerprint(tree)) == []


def test_a_missing_folder(tmp_path):
    assert fingerprint(tmp_path / "absent") is None
    assert changes(None, None) == []
    assert changes(None, fingerprint(tmp_path)) == ["folder created"]
    assert changes(fingerprint(tmp_path), None) == ["folder removed"]
