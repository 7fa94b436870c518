"""``reports/index.md``: every table and figure a ``think2seg reproduce`` run wrote, with its provenance.

>>> before = snapshot("reports")
>>> ...                                                   # run a notebook  # doctest: +SKIP
>>> entry = notebook_entry("04_benchmarks", params, snapshot_diff(before, snapshot("reports")), 95.2, "embedded")  # doctest: +SKIP
>>> write_index("reports", [entry], meta)                 # reports/index.md + reports/index.json   # doctest: +SKIP

Each notebook's entry lists the files under ``tables/`` and ``figures/`` that changed while it ran, and
the provenance read from its effective parameters (profile values over the notebook's defaults): the
dataset, the models (prompters, segmenters, training config, rewards), the protocol(s), the date and the
notebook's wall time. ``index.json`` keeps the entries, so a later ``--only 04`` run updates 04's entry
and keeps the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KINDS = ("tables", "figures")
SETTING_KEYS = ("config", "rewards", "policies", "launch")  # training settings, shown as key=value
DATA_KEYS = ("data", "transfer")
PROTOCOL_KEYS = ("protocols", "protocol")


def snapshot(reports_dir: str | Path) -> dict[str, int]:
    """``{path relative to reports_dir: mtime_ns}`` of every file under ``tables/`` and ``figures/``, and of
    the HTML pages at the top (notebook 06's gallery)."""
    root = Path(reports_dir)
    files = [p for kind in KINDS for p in sorted((root / kind).glob("**/*")) if p.is_file()]
    files += sorted(root.glob("*.html"))
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in files}


def snapshot_diff(before: Mapping[str, int], after: Mapping[str, int]) -> list[str]:
    """Files new or modified between two snapshots, sorted."""
    return sorted(p for p, t in after.items() if before.get(p) != t)


def _flat(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [str(v) for v in value.values() if v is not None]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def provenance_of(params: Mapping[str, Any]) -> dict[str, str]:
    """Dataset, models and protocol from a notebook's effective parameters."""
    data = [v for k in DATA_KEYS for v in _flat(params.get(k))]
    if "data" in params and not params["data"]:
        data.insert(0, "synthearth (default)")
    specs = [v for k, v in params.items() if ("prompter" in k or "segmenter" in k or k == "model")
             and not k.startswith("rejection")]
    models = [m for v in specs for m in _flat(v)] + [f"sam2:{s}:random" for s in _flat(params.get("sam2_sizes"))]
    models += [f"{k}={','.join(_flat(params[k]))}" for k in SETTING_KEYS if params.get(k) is not None]
    models = list(dict.fromkeys(models))
    protocols = [v for k in PROTOCOL_KEYS for v in _flat(params.get(k))]
    protocol = ", ".join(dict.fromkeys(protocols)) or ("authors (default)" if models else "-")
    return {"dataset": ", ".join(data) or "-", "models": ", ".join(models) or "-", "protocol": protocol}


def notebook_entry(name: str, params: Mapping[str, Any], files: Sequence[str], seconds: float,
                   profile: str, executed: str | Path | None = None) -> dict[str, Any]:
    return {"notebook": name, "files": list(files), "wall_s": round(seconds, 1), "profile": profile,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "executed": str(executed or ""),
            **provenance_of(params)}


def write_index(reports_dir: str | Path, entries: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> Path:
    """Merge ``entries`` into ``index.json`` (same notebook: replaced) and render ``index.md``; its path."""
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    store = root / "index.json"
    old = json.loads(store.read_text()) if store.is_file() else {}
    by_nb = {e["notebook"]: e for e in old.get("entries", []) if old.get("meta", {}).get("profile") == meta.get("profile")}
    by_nb.update({e["notebook"]: dict(e) for e in entries})
    merged = [by_nb[k] for k in sorted(by_nb)]
    store.write_text(json.dumps({"meta": dict(meta), "entries": merged}, indent=2) + "\n")
    lines = [
        f"# Reports index: profile `{meta.get('profile')}`",
        "",
        f"{meta.get('description', '')}".strip(),
        "",
        f"- git: `{meta.get('git_sha') or 'unknown'}`",
        f"- run started: {meta.get('date', '')}",
        f"- total wall time: {meta.get('total_wall', '?')}",
        f"- peak memory: {meta.get('peak_memory', '?')}",
    ]
    for e in merged:
        lines += [
            "",
            f"## {e['notebook']}",
            "",
            f"profile `{e['profile']}` · git `{meta.get('git_sha') or 'unknown'}` · {e['date']} · "
            f"wall time {e['wall_s']:.0f} s · executed notebook `{e['executed']}`",
            "",
            f"- dataset: {e['dataset']}",
            f"- models: {e['models']}",
            f"- protocol: {e['protocol']}",
            "",
            "| file | kind |",
            "|---|---|",
        ]
        lines += [f"| [{f}]({f}) | {f.split('/')[0][:-1] if '/' in f else 'page'} |" for f in e["files"]] \
            or ["| (none written) | |"]
    md = root / "index.md"
    md.write_text("\n".join(lines) + "\n")
    return md
