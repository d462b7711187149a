from schemas.rows import Reject, Sample
from tasks.demo import DEMO_CORRUPTIONS, check_counts, write_demo_tables
from tasks.table_read import open_table


def test_demo_tables_account_for_every_input(tables_dir):
    counts = write_demo_tables(tables_dir, n_samples=30, seed=0, rows_per_shard=8)
    check_counts(counts)
    assert counts.inputs == 30 and counts.rejects == len(DEMO_CORRUPTIONS) and counts.rows == 27
    rejects = list(open_table(counts.rejects_path, Reject).iter_rows())
    assert sorted(r.field for r in rejects) == ["affordance", "hand_pose", "object_points"]
    assert all(r.stage == "demo" and r.reason for r in rejects)
    assert open_table(counts.samples_path, Sample).num_rows == 27


def test_running_the_demo_twice_does_not_duplicate(tables_dir):
    write_demo_tables(tables_dir, n_samples=20, seed=0, rows_per_shard=8)
    counts = write_demo_tables(tables_dir, n_samples=20, seed=0, rows_per_shard=8)
    assert open_table(counts.samples_path).num_rows == 17 and open_table(counts.rejects_path).num_rows == 3
