"""Corpus downloads against a real HTTP server on 127.0.0.1 serving generated archives."""

import contextlib
import hashlib
import http.server
import io
import tarfile
import threading
import time
import zipfile

import pytest

from vocalab.datasets.config import DataConfig
from vocalab.datasets.download import download_archive, extract_archive
from vocalab.errors import FetchError
from vocalab.errors import ParamsError
from vocalab.params import from_mapping


def zip_bytes(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


CORPUS = zip_bytes({f"Actor_01/03-01-0{e}-01-01-01-01.wav": bytes([e]) * 50_000 for e in range(1, 6)})
SHA = "sha256:" + hashlib.sha256(CORPUS).hexdigest()


@contextlib.contextmanager
def server(files, *, ranges=True, cut_first=0, stall_s=0.0):
    """Serves ``files`` (path -> bytes). ``cut_first``: the first N GETs send half the body and close;
    ``stall_s``: the first GET sends half the body, then goes silent that long."""
    log = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            log.append((self.path, self.headers.get("Range")))
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if ranges and self.headers.get("Range"):
                start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            first = len(log) == 1
            if (len(log) <= cut_first) or (stall_s and first):
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                if stall_s and first:
                    time.sleep(stall_s)
                self.close_connection = True
                return
            self.wfile.write(chunk)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verifies_then_caches(tmp_path):
    with server({"/ravdess.zip": CORPUS}) as (url, log):
        path = download_archive(f"{url}/ravdess.zip", SHA, directory=tmp_path, progress=False)
        assert path.read_bytes() == CORPUS and (tmp_path / "ravdess.zip.ok").is_file()
        assert download_archive(f"{url}/ravdess.zip", SHA, directory=tmp_path, progress=False) == path
        assert len(log) == 1  # the rerun did nothing


def test_interrupted_download_resumes_with_range(tmp_path):
    with server({"/c.zip": CORPUS}, cut_first=1) as (url, log):
        with pytest.raises(FetchError, match="truncated: .* Run again to resume"):
            download_archive(f"{url}/c.zip", SHA, directory=tmp_path, progress=False)
        kept = (tmp_path / "c.zip.part").stat().st_size
        assert 0 < kept < len(CORPUS)
        path = download_archive(f"{url}/c.zip", SHA, directory=tmp_path, progress=False)
    assert path.read_bytes() == CORPUS and not (tmp_path / "c.zip.part").exists()
    assert log[1][1] == f"bytes={kept}-"  # only the rest was asked for


def test_a_server_without_range_support_restarts_from_zero(tmp_path):
    with server({"/c.zip": CORPUS}, ranges=False, cut_first=1) as (url, log):
        with pytest.raises(FetchError, match="truncated"):
            download_archive(f"{url}/c.zip", SHA, directory=tmp_path, progress=False)
        path = download_archive(f"{url}/c.zip", SHA, directory=tmp_path, progress=False)
    assert path.read_bytes() == CORPUS


def test_a_stalled_server_is_a_clear_error_and_resumable(tmp_path):
    with server({"/c.zip": CORPUS}, stall_s=3.0) as (url, _):
        with pytest.raises(FetchError, match="stalled for over 0.5 s"):
            download_archive(f"{url}/c.zip", SHA, directory=tmp_path, timeout_s=0.5, progress=False)
        assert download_archive(f"{url}/c.zip", SHA, directory=tmp_path, progress=False).read_bytes() == CORPUS


def test_a_corrupted_byte_fails_the_checksum_and_is_deleted(tmp_path):
    bad = bytearray(CORPUS)
    bad[1000] ^= 0xFF
    with server({"/c.zip": bytes(bad)}) as (url, _):
        with pytest.raises(FetchError, match="sha256 is .* expected .* it was deleted"):
            download_archive(f"{url}/c.zip", SHA, directory=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_and_unreachable_hosts(tmp_path):
    with server({}) as (url, _):
        with pytest.raises(FetchError, match="answered HTTP 404"):
            download_archive(f"{url}/missing.zip", SHA, directory=tmp_path, progress=False)
    with pytest.raises(FetchError, match="could not reach http://127.0.0.1:9/"):
        download_archive("http://127.0.0.1:9/c.zip", SHA, directory=tmp_path, progress=False)
    with pytest.raises(FetchError, match="is not 'md5:<32 hex>'"):
        download_archive("http://127.0.0.1:9/c.zip", "crc:1234", directory=tmp_path, progress=False)


def test_extraction_unpacks_zip_and_tar(tmp_path):
    archive = tmp_path / "c.zip"
    archive.write_bytes(CORPUS)
    assert extract_archive(archive, tmp_path / "raw") == 5
    assert (tmp_path / "raw/Actor_01/03-01-01-01-01-01-01.wav").read_bytes() == bytes([1]) * 50_000
    tar_path = tmp_path / "c.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("corpus/a.wav")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    assert extract_archive(tar_path, tmp_path / "raw") == 1  # replaces the previous corpus whole
    assert sorted(p.name for p in (tmp_path / "raw").rglob("*") if p.is_file()) == ["a.wav"]


@pytest.mark.parametrize("entry", ["../evil.wav", "/etc/evil.wav", "a/../../evil.wav", "C:/evil.wav"])
def test_zip_slip_entries_are_refused_and_nothing_is_left(tmp_path, entry):
    archive = tmp_path / "slip.zip"
    archive.write_bytes(zip_bytes({"ok.wav": b"1", entry: b"2"}))
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "previous.wav").write_bytes(b"0")
    with pytest.raises(FetchError, match="would land outside the corpus folder"):
        extract_archive(archive, tmp_path / "raw")
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["previous.wav"]  # untouched
    assert not (tmp_path / "raw.tmp").exists() and not (tmp_path.parent / "evil.wav").exists()


def test_links_in_archives_are_refused(tmp_path):
    tar_path = tmp_path / "link.tar"
    with tarfile.open(tar_path, "w") as tf:
        link = tarfile.TarInfo("corpus/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(FetchError, match="a link or special file"):
        extract_archive(tar_path, tmp_path / "raw")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("corpus/passwd")
        info.external_attr = (0o120777 << 16)  # a symbolic link
        zf.writestr(info, "/etc/passwd")
    (tmp_path / "link.zip").write_bytes(buffer.getvalue())
    with pytest.raises(FetchError, match="symbolic link"):
        extract_archive(tmp_path / "link.zip", tmp_path / "raw")
    (tmp_path / "junk.zip").write_bytes(b"not an archive")
    with pytest.raises(FetchError, match="neither a zip nor a tar"):
        extract_archive(tmp_path / "junk.zip", tmp_path / "raw")


def test_data_params_for_downloads():
    config = from_mapping(DataConfig, {"source": "ravdess"}, section="data")
    assert config.archive().checksum == "md5:bc696df654c87fed845eb13823edef8a"
    assert config.corpus_layout == config.dataset == "ravdess"
    mirror = from_mapping(DataConfig, {"source": "ravdess", "url": "http://mirror/r.zip", "sha256": "a" * 64},
                          section="data")
    assert mirror.archive().url == "http://mirror/r.zip" and mirror.archive().checksum == "sha256:" + "a" * 64
    with pytest.raises(ParamsError, match=r"'data\.url' is set without 'data\.sha256'"):
        from_mapping(DataConfig, {"source": "ravdess", "url": "http://mirror/r.zip"}, section="data")
    with pytest.raises(ParamsError, match=r"'crema_d': this corpus has no single archive"):
        from_mapping(DataConfig, {"source": "crema_d"}, section="data")
    with pytest.raises(ParamsError, match=r"'data\.sha256' = 'abc' is not a SHA-256"):
        from_mapping(DataConfig, {"source": "tess", "url": "http://m/t.zip", "sha256": "abc"}, section="data")
