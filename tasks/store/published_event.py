"""The `annotated.published` event: an annotate run's last step says which version of which annotated table it
committed, so a deployment can start training on exactly that version (prefect.yaml's train-grasp trigger,
disabled by default).

    emit_published(layout.annotated, data_root)   # -> event id; the payload carries table, version, data_root
"""

from __future__ import annotations

from pathlib import Path

from tasks.store.read import read_manifest

EVENT = "annotated.published"
RESOURCE_PREFIX = "afford.annotated."


def resource_id(data_root: Path) -> str:
    """"afford.annotated.<data root folder name>": what a trigger's `match` names (a glob such as
    afford.annotated.* matches every data root)."""
    return f"{RESOURCE_PREFIX}{Path(data_root).resolve().name}"


def emit_published(table: Path, data_root: Path) -> str:
    """Emit the event for the table's current version; its id. RuntimeError when no events API answers (a flow run
    always has one: the configured server, or the temporary one)."""
    from prefect.events import emit_event

    _, manifest = read_manifest(table)
    event = emit_event(event=EVENT,
                       resource={"prefect.resource.id": resource_id(data_root),
                                 "prefect.resource.name": Path(data_root).resolve().name},
                       payload={"table": str(Path(table).resolve()), "version": manifest.version,
                                "data_root": str(Path(data_root).resolve())})
    if event is None:
        raise RuntimeError(f"{EVENT} for {table} (version {manifest.version}) was not emitted: events need a "
                           f"Prefect API (PREFECT_API_URL or the temporary server)")
    return str(event.id)
