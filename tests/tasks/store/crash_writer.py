"""Child process for the crash test: writes a new version of a table and stops to be killed.

    python -m tests.tasks.store.crash_writer TABLE START COUNT ROWS_PER_SHARD [EVENT_KIND NTH]

Prints each write event as it happens; on the NTH event of EVENT_KIND it prints PAUSED and sleeps, so
the parent can SIGKILL it at exactly that point of the write.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from schemas.rows import Sample
from tasks.store.write import WriteEvent, write_table
from tests.factories import sample_dicts


def main(argv: list[str]) -> None:
    table, start, count, rows_per_shard = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    pause_kind, pause_nth = (argv[4], int(argv[5])) if len(argv) > 5 else (None, 0)
    seen: dict[str, int] = {}

    def progress(event: WriteEvent) -> None:
        seen[event.kind] = seen.get(event.kind, 0) + 1
        print(f"{event.kind} {event.name}", flush=True)
        if event.kind == pause_kind and seen[event.kind] == pause_nth:
            print("PAUSED", flush=True)
            time.sleep(60)

    rows = sample_dicts(count, start=start, num_points=512, intent="new")
    write_table(table, rows, Sample, rows_per_shard=rows_per_shard, progress=progress)
    print("DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
