"""LeRobot's dataset folder (v2 layout), read from a local folder and written for tests/exports.

``meta/info.json`` (``fps``, ``features``: name → dtype and shape, ``data_path``),
``meta/episodes.jsonl`` (``episode_index``, ``tasks``, ``length``), ``meta/tasks.jsonl``
(``task_index``, ``task``) and one parquet file per episode under ``data/chunk-XXX/`` with
columns ``observation.state``, ``observation.images.<cam>`` (image features: a struct of PNG
``bytes`` and ``path``), ``action``, ``episode_index``, ``frame_index``, ``timestamp``, ``index``
and ``task_index``. Video features (frames in mp4 files) are refused with a clear message: no
video decoder is a dependency here. pyarrow and PIL are imported when a folder is read.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalforge.errors import DataError
from modalforge.io import atomic_dir
from modalforge_robotics.data.episode import check_episode, check_finite_actions
from modalforge_robotics.data.normalize import NormalizeMode
from modalforge_robotics.data.windows import EpisodeReader

DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
CHUNK_SIZE = 1000
IMAGES = "observation.images."


def write_lerobot(
    folder: str | Path, episodes: Sequence[Mapping[str, Any]], *, fps: int = 10
) -> Path:
    """Write ``episodes`` as a LeRobot v2 folder (atomically: a temporary folder, renamed).

    Observation ``rgb`` becomes image feature ``observation.images.front`` (``<cam>_image`` /
    ``<cam>_rgb``: ``observation.images.<cam>``), ``state`` ``observation.state``, other keys
    ``observation.<key>``; ``success`` and ``meta`` are kept in ``meta/episodes.jsonl``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from modalforge_robotics.data.windows import default_cameras

    checked = [check_episode(ep, f"episode {i}") for i, ep in enumerate(episodes)]
    if not checked:
        raise DataError(f"{folder}: no episodes to write", hint="collect at least one episode")
    info0 = {k: (v.shape, v.dtype) for k, v in checked[0]["obs"].items()}
    cams = default_cameras(info0)
    names = {k: f"{IMAGES}{cams[k]}" if k in cams else f"observation.{k}" for k in info0}
    tasks = list(dict.fromkeys(ep["instruction"] for ep in checked))
    features: dict[str, Any] = {}
    for key, (shape, dtype) in info0.items():
        kind = "image" if key in cams else str(np.dtype(dtype))
        features[names[key]] = {"dtype": kind, "shape": list(shape[1:])}
    features["action"] = {"dtype": "float32", "shape": [checked[0]["actions"].shape[1]]}
    for col in ("episode_index", "frame_index", "index", "task_index"):
        features[col] = {"dtype": "int64", "shape": [1]}
    features["timestamp"] = {"dtype": "float32", "shape": [1]}
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    with atomic_dir(folder) as tmp:
        (tmp / "meta").mkdir()
        index = 0
        for e, ep in enumerate(checked):
            steps = len(ep["actions"])
            cols: dict[str, Any] = {}
            for key, arr in ep["obs"].items():
                if key in cams:
                    cols[names[key]] = pa.array(
                        [{"bytes": _png(Image, frame), "path": None} for frame in arr], image_type
                    )
                else:
                    cols[names[key]] = pa.array(list(arr.reshape(steps, -1)))
            cols["action"] = pa.array(list(ep["actions"]))
            cols["episode_index"] = pa.array(np.full(steps, e, dtype=np.int64))
            cols["frame_index"] = pa.array(np.arange(steps, dtype=np.int64))
            cols["timestamp"] = pa.array(np.arange(steps, dtype=np.float32) / fps)
            cols["index"] = pa.array(np.arange(index, index + steps, dtype=np.int64))
            task = tasks.index(ep["instruction"])
            cols["task_index"] = pa.array(np.full(steps, task, dtype=np.int64))
            index += steps
            out = tmp / DATA_PATH.format(episode_chunk=e // CHUNK_SIZE, episode_index=e)
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(cols), out)
        info = {
            "codebase_version": "v2.1",
            "fps": fps,
            "total_episodes": len(checked),
            "total_frames": index,
            "total_tasks": len(tasks),
            "chunks_size": CHUNK_SIZE,
            "data_path": DATA_PATH,
            "features": features,
            "splits": {"train": f"0:{len(checked)}"},
        }
        (tmp / "meta/info.json").write_text(json.dumps(info, indent=2))
        lines = [
            {
                "episode_index": e,
                "tasks": [ep["instruction"]],
                "length": len(ep["actions"]),
                "success": ep["success"],
                "meta": ep["meta"],
            }
            for e, ep in enumerate(checked)
        ]
        _jsonl(tmp / "meta/episodes.jsonl", lines)
        _jsonl(
            tmp / "meta/tasks.jsonl", [{"task_index": i, "task": t} for i, t in enumerate(tasks)]
        )
    return Path(folder)


def _png(image_module: Any, frame: np.ndarray) -> bytes:  # noqa: ANN401
    buf = io.BytesIO()
    image_module.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path} does not exist", hint="a LeRobot folder has meta/*.jsonl files")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON lines: {exc}") from None


class LeRobotStore:
    """A LeRobot folder's episodes in memory (images as PNG bytes, decoded on access)."""

    def __init__(self, folder: str | Path) -> None:
        import pyarrow.parquet as pq

        self.path = Path(folder)
        info_path = self.path / "meta/info.json"
        if not info_path.is_file():
            raise DataError(
                f"{self.path} is not a LeRobot dataset folder (no meta/info.json)",
                hint="give the folder holding meta/ and data/ (LeRobot's v2 layout)",
            )
        try:
            info = json.loads(info_path.read_text())
            features = dict(info["features"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{info_path} is not valid LeRobot metadata: {exc}") from None
        videos = [k for k, f in features.items() if f.get("dtype") == "video"]
        if videos:
            raise DataError(
                f"{self.path}: feature {videos[0]!r} is stored as video, which this reader does "
                "not decode",
                hint="convert the videos to image features (PNG frames in the parquet files), "
                "e.g. with LeRobot's own tools",
            )
        self.fps = info.get("fps")
        tasks = {r["task_index"]: r["task"] for r in _read_jsonl(self.path / "meta/tasks.jsonl")}
        rows = sorted(
            _read_jsonl(self.path / "meta/episodes.jsonl"), key=lambda r: r["episode_index"]
        )
        if not rows:
            raise DataError(f"{self.path}: meta/episodes.jsonl lists no episodes")
        data_path = info.get("data_path", DATA_PATH)
        chunk = int(info.get("chunks_size", CHUNK_SIZE))
        self.names, self.actions, self.obs_info, self._instr = [], [], [], []
        self._cols: list[dict[str, Any]] = []
        self.filter_keys: dict[str, list[str]] = {}
        self.meta = rows
        obs_keys = [k for k in features if k.startswith("observation.")]
        for row in rows:
            e = int(row["episode_index"])
            name = f"episode_{e:06d}"
            file = self.path / data_path.format(episode_chunk=e // chunk, episode_index=e)
            if not file.is_file():
                raise DataError(f"{self.path}: {name} has no data file {file}")
            try:
                table = pq.read_table(file)
            except Exception as exc:  # noqa: BLE001 - any parquet error means an unreadable file
                raise DataError(f"{file} is not a readable parquet file: {exc}") from None
            where = f"{self.path}: episode {name}"
            if "action" not in table.column_names:
                raise DataError(f"{where} has no 'action' column (it has {table.column_names})")
            actions = np.asarray(table.column("action").to_pylist(), dtype=np.float32)
            actions = actions.reshape(len(actions), -1)
            check_finite_actions(actions, where)
            cols, info_e = {}, {}
            for key in obs_keys:
                if key not in table.column_names:
                    continue
                values = table.column(key).to_pylist()
                if features[key].get("dtype") == "image":
                    cols[key] = [v["bytes"] if isinstance(v, dict) else v for v in values]
                    shape = _decode(cols[key][0]).shape if values else ()  # the real layout
                    info_e[key] = ((len(values), *shape), np.dtype(np.uint8))
                else:
                    arr = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
                    cols[key] = arr
                    info_e[key] = (arr.shape, arr.dtype)
                if len(values) != len(actions):
                    raise DataError(
                        f"{where}: observation {key!r} has {len(values)} steps but 'action' has "
                        f"{len(actions)}"
                    )
            tis = (
                table.column("task_index").to_pylist() if "task_index" in table.column_names else []
            )
            task = tasks.get(tis[0]) if tis else (row.get("tasks") or [""])[0]
            self.names.append(name)
            self.actions.append(actions)
            self.obs_info.append(info_e)
            self._cols.append(cols)
            self._instr.append(str(task or ""))

    def lengths(self) -> np.ndarray:
        return np.array([len(a) for a in self.actions], dtype=np.int64)

    def instruction(self, episode: int) -> str:
        return self._instr[episode]

    def frames(self, episode: int, key: str, index: slice | np.ndarray) -> np.ndarray:
        col = self._cols[episode][key]
        if isinstance(col, np.ndarray):
            return col[index]
        picks = range(len(col))[index] if isinstance(index, slice) else index
        return np.stack([_decode(col[int(i)]) for i in picks])


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def default_lerobot_cameras(info: Mapping[str, Any]) -> dict[str, str]:
    """Feature ``observation.images.<cam>`` → camera ``<cam>``."""
    return {k: k[len(IMAGES) :] for k in info if k.startswith(IMAGES)}


def default_lerobot_state_keys(info: Mapping[str, Any]) -> list[str]:
    """``observation.state`` when the data set has it, else no state."""
    return ["observation.state"] if "observation.state" in info else []


class LeRobotDataset(EpisodeReader):
    """``lerobot``: behaviour-cloning windows from a local LeRobot v2 dataset folder.

    Image features ``observation.images.<cam>`` become ``image_<cam>`` (``cameras`` overrides),
    ``state_keys`` (default ``observation.state``) are concatenated into ``state``, ``task_index``
    gives the instruction. Windows, splits by episode and action normalisation as ``robomimic``.
    """

    reader_name = "lerobot"

    def __init__(
        self,
        path: str,
        cameras: dict[str, str] | None = None,
        depth: dict[str, str] | None = None,
        state_keys: list[str] | None = None,
        history: int = 1,
        chunk: int = 1,
        val_fraction: float = 0.1,
        seed: int = 0,
        normalize: NormalizeMode = "minmax",
    ) -> None:
        store = LeRobotStore(path)
        info = store.obs_info[0]
        if state_keys is None:
            state_keys = default_lerobot_state_keys(info)
        self._setup(
            store,
            cameras=default_lerobot_cameras(info) if cameras is None else cameras,
            depth={} if depth is None else depth,
            state_keys=state_keys,
            history=history,
            chunk=chunk,
            val_fraction=val_fraction,
            seed=seed,
            normalize=normalize,
        )
