"""Every crafted bad input (tests/faults/corpus.py, over 100 across the four formats) ends as exactly one reject
naming its file, through the real ingest (table and rejects table written); every good file is still a row; no
pickle ran code; the run finished within a bounded memory."""

from __future__ import annotations

from collections import Counter

import pytest

from schemas.rows import Sample
from schemas.text import REASON_LIMIT
from tasks.store.read import open_table
from tests.faults.corpus import FORMATS, MARKER, ingest_corpus_alone

pytestmark = pytest.mark.slow  # the standing fault suite (tests/faults) is tiered slow

# Peak RSS of the process that synthesizes and ingests the corpus (a fresh one: the test process's own peak holds
# what earlier tests allocated). That takes about 0.6 GB here; a crafted input that got its way (a 2 GB bytearray,
# a 16 GB array) would be far above.
PEAK_RSS_LIMIT_GB = 1.5


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    done, peak_gb = ingest_corpus_alone(tmp_path_factory.mktemp("faults"))
    return done.root, done.corpus, done.good, done.counts, done.rejects, peak_gb


def test_the_corpus_is_large_and_covers_every_format(ingested):
    _, corpus, *_ = ingested
    per_format = Counter(c.fmt for c in corpus)
    assert len(corpus) >= 100 and set(per_format) == set(FORMATS), per_format


def test_each_crafted_input_is_exactly_one_reject_naming_its_file(ingested):
    _, corpus, _, _, rejects, _ = ingested
    by_source = Counter((r.dataset, r.source) for r in rejects)
    for crafted in corpus:
        count = by_source[crafted.fmt, crafted.source]
        if crafted.fmt == "grab" and count == 0:
            count = sum(n for (d, s), n in by_source.items() if d == "grab" and s == crafted.source)
        assert count == 1, f"{crafted.fmt} {crafted.mode}: {count} rejects for {crafted.source}"
    crafted_sources = {(c.fmt, c.source) for c in corpus}
    assert not [r for r in rejects if (r.dataset, r.source) not in crafted_sources], "a good file was rejected"


def test_reasons_name_the_file_and_are_bounded(ingested):
    _, corpus, _, _, rejects, _ = ingested
    for reject in rejects:
        assert len(reject.reason) <= REASON_LIMIT, reject.reason[:100]
        # The reason starts with the file at fault: the input itself, or a file it names (its mesh), relative
        # to the dataset root.
        named = reject.reason.split(": ")[0]
        assert named == reject.source or (not named.startswith("/") and "/" in named), reject.reason
    passwd = next(r for r in rejects if r.source.endswith(
        next(c.source for c in corpus if c.mode == "source.txt: a link to /etc/passwd")))
    assert "daemon" not in passwd.reason and len(passwd.reason) < 200, passwd.reason  # the first line's head only


def test_every_good_input_is_still_a_row_and_inputs_add_up(ingested):
    root, corpus, good, counts, *_ = ingested
    crafted = Counter(c.fmt for c in corpus)
    for fmt in FORMATS:
        c = counts[fmt]
        assert c.inputs == c.rows + c.rejects
        rows = open_table(root / "tables" / fmt, Sample).manifest.num_rows
        assert rows == good[fmt], f"{fmt}: {rows} rows from {good[fmt]} good inputs"
        assert c.rejects == crafted[fmt], f"{fmt}: {c.rejects} rejects for {crafted[fmt]} crafted inputs"


def test_no_pickle_ran_code_and_memory_stayed_bounded(ingested):
    root, *_, peak_gb = ingested
    assert not list(root.rglob(MARKER))
    assert peak_gb < PEAK_RSS_LIMIT_GB, f"peak RSS {peak_gb:.2f} GB of the ingesting process"
