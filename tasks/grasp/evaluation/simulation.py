"""Simulation displacement: does the grasp hold the object under gravity? (GraspTTA / FastGrasp convention)

PyBullet in DIRECT mode. The hand is a static (mass 0) concave triangle mesh; the object is a dynamic body of
mass 1 kg made of pybullet's own V-HACD convex decomposition (a concave trimesh cannot be dynamic in Bullet),
its base frame at the object's volume centroid so the centre of mass is where a solid of uniform density has it.
Lateral friction 3 on both bodies, time step 1/240 s, gravity 9.8 m/s^2 along `gravity_axis`, `steps` steps.
The figure is |p_end - p_start| of the centre of mass, in cm.

Defaults and why:
- steps = 35 (0.146 s): GraspTTA's short drop, so the figures compare with the published tables. A free object
  falls 0.5 g t^2 = 10.4 cm in that time (10.7 cm with Bullet's semi-implicit Euler: g dt^2 n (n + 1) / 2),
  which caps the metric.
- gravity along -z: the synthetic objects (tasks/synth/objects.py) and the object frame the grasps are
  generated in are z-up. Camera-frame datasets (HO-3D, ObMan) use +y (y points down): pass (0, 1, 0).
- restitution 0 (hand) and 0.5 (object), 150 solver iterations: GraspTTA's settings.
- linear and angular damping 0, so a free fall matches the closed form (Bullet's default 0.04 slows it ~0.3 %).
- the hand goes in as MANO's open mesh: a static concave trimesh collides by its triangles, so the wrist hole
  does not matter here (it does for the inside tests of penetration, which use ops/hand_mesh.py).
- V-HACD at pybullet's default resolution (100 000 voxels): ~1-2 s per synthetic object on this CPU, paid once
  per object; its output is cached by mesh hash in the work folder.

A simulation that cannot run (V-HACD fails or writes nothing, a non-finite position) comes back as a SimResult
with ok False and the reason; it is never replaced by a number.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import trimesh

from ops.mesh_check import check_mesh

M_TO_CM = 100.0


@dataclass(frozen=True)
class SimConfig:
    """Settings of one drop test; bounds checked in __post_init__."""

    steps: int = 35  # 35 x 1/240 s: GraspTTA's short drop (see the module docstring)
    time_step: float = 1.0 / 240.0
    gravity: float = 9.8  # m/s^2
    gravity_axis: tuple[float, float, float] = (0.0, 0.0, -1.0)  # direction gravity pulls, object frame
    object_mass: float = 1.0  # kg
    friction: float = 3.0  # lateral friction of hand and object (Bullet multiplies the two)
    hand_restitution: float = 0.0
    object_restitution: float = 0.5
    solver_iterations: int = 150
    vhacd_resolution: int = 100_000  # voxels of pybullet's V-HACD: its default; 1e6 is ~5x slower

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0 < self.time_step <= 0.1:
            raise ValueError(f"time_step must be in (0, 0.1] s, got {self.time_step}")
        if self.object_mass <= 0:
            raise ValueError(f"object_mass must be > 0, got {self.object_mass}")
        if self.friction < 0 or self.gravity < 0:
            raise ValueError(f"friction and gravity must be >= 0, got {self.friction}, {self.gravity}")
        axis = np.asarray(self.gravity_axis, dtype=np.float64)
        if axis.shape != (3,) or not np.isfinite(axis).all() or np.linalg.norm(axis) < 1e-9:
            raise ValueError(f"gravity_axis must be a non-zero 3-vector, got {self.gravity_axis}")

    @property
    def gravity_vector(self) -> np.ndarray:
        """(3,) m/s^2: g times the unit gravity axis."""
        axis = np.asarray(self.gravity_axis, dtype=np.float64)
        return self.gravity * axis / np.linalg.norm(axis)


class SimResult(NamedTuple):
    """displacement_cm: |COM_end - COM_start| in cm, or None when the simulation failed (reason says why)."""

    displacement_cm: float | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.displacement_cm is not None

    @staticmethod
    def failed(reason: str) -> SimResult:
        return SimResult(None, reason)


class Decomposition(NamedTuple):
    """An object ready for simulation: V-HACD hulls written as OBJ (centred at the centroid), and the centroid."""

    obj_path: Path | None
    centroid: np.ndarray  # (3,) metres, object frame
    reason: str = ""  # why decomposition failed (obj_path None)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """V-HACD's C++ code prints its progress to file descriptor 1; silence it at the descriptor level."""
    try:
        saved = os.dup(1)
    except OSError:  # no stdout at all: nothing to silence
        yield
        return
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def object_key(vertices: np.ndarray, faces: np.ndarray) -> str:
    """sha256 prefix of the mesh bytes: the cache key of its decomposition."""
    digest = hashlib.sha256(np.ascontiguousarray(vertices, np.float64).tobytes())
    digest.update(np.ascontiguousarray(faces, np.int64).tobytes())
    return digest.hexdigest()[:16]


def decompose_object(vertices: np.ndarray, faces: np.ndarray, out_dir: str | Path,
                     config: SimConfig = SimConfig()) -> Decomposition:
    """Convex-decompose the object (metres) with pybullet.vhacd into out_dir/<key>_vhacd.obj.

    vertices: (V, 3), faces: (F, 3), watertight. The mesh is shifted so its volume centroid is the origin (the
    body's frame and centre of mass). Failure comes back in `reason`, never raised, so one bad object cannot
    stop an evaluation run; malformed input (empty, NaN) still raises ValueError.
    """
    import pybullet

    vertices, faces = check_mesh("object", vertices, faces)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    # Volume centroid: sum over tetrahedra; meaningless (and unstable) for an open or inside-out mesh.
    centroid = np.asarray(mesh.center_mass if mesh.is_volume else vertices.mean(0), dtype=np.float64)
    if not mesh.is_volume:
        return Decomposition(None, centroid, "object mesh is not a watertight volume; V-HACD needs one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = object_key(vertices, faces)
    source, target = out_dir / f"{key}.obj", out_dir / f"{key}_vhacd.obj"
    if target.is_file() and target.stat().st_size > 0:
        return Decomposition(target, centroid)
    trimesh.Trimesh(vertices - centroid, faces, process=False).export(source)
    # Written under a per-process name and renamed into place, so the cache never serves a half-written file.
    partial = out_dir / f"{key}_vhacd.{os.getpid()}.tmp.obj"
    try:
        with _quiet_stdout():
            pybullet.vhacd(str(source), str(partial), str(out_dir / f"{key}_vhacd.log"),
                           resolution=config.vhacd_resolution)
    except Exception as exc:  # pybullet raises its own error type for a file it cannot read
        return Decomposition(None, centroid, f"vhacd failed: {exc}")
    if not partial.is_file() or partial.stat().st_size == 0:
        return Decomposition(None, centroid, "vhacd wrote no convex hulls")
    os.replace(partial, target)
    return Decomposition(target, centroid)


def _write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    trimesh.Trimesh(vertices, faces, process=False).export(path)


def simulate_grasp(decomposition: Decomposition, hand_verts: np.ndarray | None, hand_faces: np.ndarray | None,
                   config: SimConfig = SimConfig()) -> SimResult:
    """Drop the object in the static hand for `config.steps` steps; displacement of its centre of mass in cm.

    hand_verts: (778, 3) metres in the object frame (any closed or open surface works), hand_faces: (1538, 3);
    both None simulates the object alone (a free fall: the metric's known answer).
    """
    if decomposition.obj_path is None:
        return SimResult.failed(decomposition.reason or "object has no convex decomposition")
    if (hand_verts is None) != (hand_faces is None):
        raise ValueError("give hand_verts and hand_faces together, or neither")
    if hand_verts is not None:
        hand_verts, hand_faces = check_mesh("hand", hand_verts, hand_faces)
    import pybullet

    client = pybullet.connect(pybullet.DIRECT)
    try:
        with tempfile.TemporaryDirectory(prefix="afford-sim-") as tmp:
            return _run(pybullet, client, decomposition, hand_verts, hand_faces, config, Path(tmp))
    except pybullet.error as exc:
        return SimResult.failed(f"pybullet: {exc}")
    finally:
        pybullet.disconnect(physicsClientId=client)


def _run(pb, client: int, decomposition: Decomposition, hand_verts: np.ndarray | None,
         hand_faces: np.ndarray | None, config: SimConfig, tmp: Path) -> SimResult:
    pb.setPhysicsEngineParameter(fixedTimeStep=config.time_step, numSolverIterations=config.solver_iterations,
                                 enableFileCaching=0, physicsClientId=client)
    pb.setGravity(*config.gravity_vector.tolist(), physicsClientId=client)
    if hand_verts is not None:
        hand_path = tmp / "hand.obj"
        _write_obj(hand_path, hand_verts, hand_faces)
        # GEOM_FORCE_CONCAVE_TRIMESH: the hand's exact surface (static bodies may be concave in Bullet).
        shape = pb.createCollisionShape(pb.GEOM_MESH, fileName=str(hand_path),
                                        flags=pb.GEOM_FORCE_CONCAVE_TRIMESH, physicsClientId=client)
        hand = pb.createMultiBody(baseMass=0, baseCollisionShapeIndex=shape, physicsClientId=client)
        pb.changeDynamics(hand, -1, lateralFriction=config.friction, restitution=config.hand_restitution,
                          physicsClientId=client)
    shape = pb.createCollisionShape(pb.GEOM_MESH, fileName=str(decomposition.obj_path), physicsClientId=client)
    start = decomposition.centroid
    body = pb.createMultiBody(baseMass=config.object_mass, baseCollisionShapeIndex=shape,
                              basePosition=start.tolist(), physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=config.friction, restitution=config.object_restitution,
                      linearDamping=0.0, angularDamping=0.0, physicsClientId=client)
    for _ in range(config.steps):
        pb.stepSimulation(physicsClientId=client)
    end = np.asarray(pb.getBasePositionAndOrientation(body, physicsClientId=client)[0], dtype=np.float64)
    if not np.isfinite(end).all():
        return SimResult.failed("object position became non-finite")
    return SimResult(float(np.linalg.norm(end - start)) * M_TO_CM)


class SimJob(NamedTuple):
    """One grasp to simulate: hand (778, 3) metres + faces, and the key of its object's decomposition."""

    hand_verts: np.ndarray | None
    hand_faces: np.ndarray | None
    object_key: str


def _decompose_job(args: tuple[np.ndarray, np.ndarray, str, SimConfig]) -> Decomposition:
    try:
        return decompose_object(*args)
    except ValueError as exc:  # an empty or NaN object fails its own grasps, not the whole run
        return Decomposition(None, np.zeros(3), str(exc))


def _simulate_job(args: tuple[SimJob, Decomposition, SimConfig]) -> SimResult:
    job, decomposition, config = args
    try:
        return simulate_grasp(decomposition, job.hand_verts, job.hand_faces, config)
    except ValueError as exc:  # a malformed hand is this grasp's failure, not the run's
        return SimResult.failed(str(exc))


def sim_pool(workers: int = 0) -> ProcessPoolExecutor:
    """A process pool for `simulate_many`; 0 workers: one per CPU. Reuse it across calls: every pool's workers
    import the caller's main module again (forkserver and spawn both do), which costs seconds when it imports
    torch.

    forkserver (spawn where unavailable), never fork: after a Prefect flow ran in this process a forked child
    inherits its threads and locks and can hang or die on exit (see tasks/store/torch_dataset.py)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                               mp_context=multiprocessing.get_context(method))


def simulate_many(jobs: Sequence[SimJob], objects: dict[str, tuple[np.ndarray, np.ndarray]], work_dir: str | Path,
                  config: SimConfig = SimConfig(), workers: int = 0,
                  pool: ProcessPoolExecutor | None = None) -> list[SimResult]:
    """Simulate every job, one result per job in order; each object is decomposed once.

    objects: key -> (vertices (V, 3), faces (F, 3)) metres; keys are the jobs' object_key. pool: a `sim_pool`
    to run in (left open); without one, `workers` processes are started for this call (0: one per CPU; 1: run
    here, no pool). A job whose object failed to decompose gets a failed SimResult.
    """
    missing = {job.object_key for job in jobs} - set(objects)
    if missing:
        raise ValueError(f"jobs name objects that were not given: {sorted(missing)[:5]}")
    decompose_args = [(v, f, str(Path(work_dir) / "vhacd"), config) for v, f in objects.values()]
    if pool is None and (workers == 1 or len(jobs) <= 1):
        decompositions = dict(zip(objects, map(_decompose_job, decompose_args), strict=True))
        return [_simulate_job((job, decompositions[job.object_key], config)) for job in jobs]
    if pool is None:
        with sim_pool(workers) as own:
            return simulate_many(jobs, objects, work_dir, config, pool=own)
    decompositions = dict(zip(objects, pool.map(_decompose_job, decompose_args), strict=True))
    sim_args = [(job, decompositions[job.object_key], config) for job in jobs]
    chunk = max(1, len(jobs) // (4 * (os.cpu_count() or 1)))  # a few chunks per worker: balance vs overhead
    return list(pool.map(_simulate_job, sim_args, chunksize=chunk))
