"""Settings read from the environment (prefix AFFORD_) or a .env file; every field has bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AffordSettings(BaseSettings):
    """Engine-wide settings. Build with `AffordSettings()` at an entry point, never at import time."""

    model_config = SettingsConfigDict(env_prefix="AFFORD_", env_file=".env", extra="ignore",
                                      validate_default=True)

    data_root: Path = Field(Path("afford-data"), description="Where tables, checkpoints and caches live.")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d{1,2})?|mps)$",
                        description="Torch device of the training, sampling and evaluation commands when "
                                    "--device is not given: auto picks CUDA when present, else CPU.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of `afford demo` and `afford annotate` when --seed "
                                                           "is not given: sampling, splits and training.")
    rows_per_shard: int = Field(512, ge=1, le=1_000_000,
                                description="Rows per Parquet shard of every table written without an explicit "
                                            "size (about 60 KB a row for a 4096-point sample).")
    rewrite_share: float = Field(0.25, ge=0.0, le=1.0,
                                 description="An upsert keeps a shard's file and lists the rows it replaces as deleted "
                                             "in the manifest while at most this share of the file is deleted; past "
                                             "it the shard is rewritten. 0: every touched shard is rewritten, so "
                                             "plain Parquet readers (DuckDB, pandas) see exactly the table's rows.")
    chunk_shards: int = Field(1, ge=1, le=100_000,
                              description="Input shards per task of the chunked stages (classifier clouds and "
                                          "labels, affordance maps, the annotated join). 1 (512 rows a task) kept "
                                          "peak memory lowest at the same wall time as 4: BENCHMARKS.md block "
                                          "`annotate_scale`, chunk-size table.")
    num_workers: int = Field(2, ge=1, le=256, description="Thread-pool width for shard fan-out.")
    task_runner: Literal["threads", "dask"] = Field("threads", description="Where fanned-out tasks run: Prefect's "
                                                    "thread pool, or prefect-dask's DaskTaskRunner.")
    dask_address: str | None = Field(None, pattern=r"^(tcp|tls|inproc)://\S+$",
                                     description="Dask scheduler to use with task_runner=dask; unset: a local "
                                                 "cluster started for the run.")
    mano_root: Path | None = Field(None, description="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl; "
                                                     "unset: the generated hand under data_root.")
    llm_base_url: str | None = Field(None, pattern=r"^https?://\S+$",
                                     description="OpenAI-compatible endpoint; unset: the embedded one.")
    llm_model: str | None = Field(None, min_length=1, max_length=256, description="Model name to request.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the endpoint (never logged).")
    llm_timeout_s: float = Field(60.0, gt=0, le=3600, description="Per-request timeout, seconds.")
    llm_max_concurrency: int = Field(4, ge=1, le=256, description="Concurrent requests to the endpoint.")
    torch_threads: int | None = Field(None, ge=1, le=1024,
                                      description="torch intra-op threads for training and inference (unset: "
                                                  "torch's default, every core). 1 on a machine other jobs "
                                                  "share: see BENCHMARKS.md block `threads`. Results can differ in "
                                                  "the last bits between thread counts, so keep it fixed to "
                                                  "reproduce a run.")
