"""Static files are compressed when they are new or changed, and left alone at the next start otherwise."""

import gzip
import os

from refloop.lib.staticfiles import FreshCompressedStaticFilesStorage


def _compress(storage, *names):
    return sorted(compressed for _, compressed, _ in storage.post_process({name: (storage, name) for name in names}))


def test_a_file_is_compressed_once_then_again_only_when_it_changes(tmp_path):
    storage = FreshCompressedStaticFilesStorage(location=tmp_path, base_url="/static/")
    (tmp_path / "app.js").write_text("function refloop() { return 'closed loop'; }\n" * 200)
    (tmp_path / "site.css").write_text("body { margin: 0; padding: 0; }\n" * 200)

    first = _compress(storage, "app.js", "site.css")
    assert "app.js.gz" in first and "site.css.gz" in first
    assert _compress(storage, "app.js", "site.css") == []  # nothing changed: nothing compressed again

    (tmp_path / "app.js").write_text("function refloop() { return 'sent back'; }\n" * 200)
    later = os.stat(tmp_path / "app.js.gz").st_mtime + 5
    os.utime(tmp_path / "app.js", (later, later))  # collectstatic copied a changed file: newer than its copies
    again = _compress(storage, "app.js", "site.css")
    assert "app.js.gz" in again and not any(name.startswith("site.css") for name in again)
    assert b"sent back" in gzip.decompress((tmp_path / "app.js.gz").read_bytes())
