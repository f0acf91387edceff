"""Static files: compressed once, not at every start.

`refloop serve` runs collectstatic before gunicorn starts. whitenoise's CompressedStaticFilesStorage compresses
every file again each time (gzip and brotli, plotly.js included): about a minute of CPU, so a web server restarted
after a crash answered nothing for 20-30 s on two cores. This storage compresses a file only when one of its
compressed copies is missing or older than the file itself; collectstatic copies a changed file anew, which makes
it newer than its old copies.
"""

from __future__ import annotations

import os
from typing import Any

from whitenoise.storage import CompressedStaticFilesStorage

COMPRESSED_SUFFIXES = (".gz", ".br")


class FreshCompressedStaticFilesStorage(CompressedStaticFilesStorage):
    def post_process(self, paths: dict[str, Any], dry_run: bool = False, **options: Any):
        stale = {path: found for path, found in paths.items() if not self._compressed_is_current(path)}
        return super().post_process(stale, dry_run=dry_run, **options)

    def _compressed_is_current(self, path: str) -> bool:
        full = self.path(path)
        try:
            modified = os.stat(full).st_mtime
        except FileNotFoundError:
            return False
        copies = [os.stat(full + suffix).st_mtime for suffix in COMPRESSED_SUFFIXES if os.path.exists(full + suffix)]
        # No copy at all: never compressed, or too small to gain from it; whitenoise decides again (cheaply).
        return bool(copies) and all(copy >= modified for copy in copies)
