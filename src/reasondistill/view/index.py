"""The trace browser's in-memory index of a run folder, built once by streaming its files.

One :class:`Row` per generation: every teacher trace (``generate/traces.jsonl``, with its
verdict, its curation fate and its problem's difficulty) and every evaluated answer
(``eval/<model>/samples.jsonl``). A row keeps what the filters and the list need and the byte
offset of its record; the full record is read back from the file when a row is opened, so the
page never holds more than one page of rows. Search runs ``str.find`` over one lowercased corpus
of every row's text (and one of every problem's), equality filters start from precomputed
buckets of row numbers, and the last few filtered results are cached, so turning pages or
re-sorting one result costs nothing.

The run folder is only read: files are opened read-only, nothing is written or created. When a
file changes (a run still writing), :meth:`Index.stale` says so and the server rebuilds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from bisect import bisect_right
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..layout import Layout

log = logging.getLogger(__name__)

EVAL_MODELS = ("teacher", "student_before", "student_after")  # eval/<model>/ folders the pipeline writes
PREVIEW = 140  # characters of a problem's prompt shown in the list
MAX_LIMIT = 200  # rows per page at most
SORTS = ("", "tokens", "-tokens", "difficulty", "-difficulty")
CACHED_RESULTS = 16  # filtered results kept, so paging through one result does not filter again
SEP = "\x00"  # between the rows' texts in the search corpus (never in a query)


@dataclass(slots=True)
class Row:
    kind: str  # "trace" (a teacher trace of a training problem) | "eval" (an evaluated answer)
    id: str  # the trace id, or <model>/<problem_id>/<sample_idx>
    problem_id: str
    source: str  # the teacher that wrote a trace, or the evaluated model
    passed: bool | None  # the verdict (None: not verified)
    hinted: bool
    tokens: int | None  # completion tokens, when recorded
    chars: int
    answer: str | None  # the extracted / final answer
    fate: str  # trace: kept | negative | rejected: <reason> | "" (not curated); eval: ""
    file: int  # index into Index.files
    offset: int  # byte offset of the record's line
    sample_idx: int = 0
    reason: str = ""  # the verifier's reason
    finish: str = "stop"
    difficulty: float | None = None  # 1 - the teacher's pass rate on the problem (unhinted samples)


@dataclass(slots=True)
class ProblemEntry:
    split: str  # "train" | "eval"
    file: int
    offset: int
    preview: str
    answer: str
    pass_rate: float | None = None
    rows: list[int] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``(line_number, byte_offset, object)`` of each non-blank JSONL line, read-only."""
    offset = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise InputError(f"invalid JSON ({e})", file=path, line=lineno) from None
            if not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {type(obj).__name__}", file=path, line=lineno)
            yield lineno, start, obj


def _tokens(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _meta_trace_id(obj: dict[str, Any]) -> str | None:
    meta = obj.get("meta")
    return meta.get("trace_id") if isinstance(meta, dict) else None


class Index:
    """Everything the browser filters, pages and opens. Build with :meth:`build`."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.layout = Layout(self.run_dir)
        self.files: list[Path] = []
        self.rows: list[Row] = []
        self.problems: dict[str, ProblemEntry] = {}
        self.notes: list[str] = []
        self.build_seconds = 0.0
        self._by_id: dict[str, int] = {}
        self._hays: list[str] = []  # while building; then joined into the corpus
        self._corpus, self._starts = "", [0]
        self._problem_corpus, self._problem_starts, self._problem_ids = "", [0], []
        self._buckets: dict[tuple[str, Any], list[int]] = defaultdict(list)
        self._results: OrderedDict[tuple, list[int]] = OrderedDict()
        self._lock = threading.Lock()  # the server answers requests on several threads
        self._signature: dict[str, tuple[int, int]] = {}

    # -- building

    def _watched(self) -> list[Path]:
        lay = self.layout
        return [lay.train_problems, lay.eval_problems, lay.traces, lay.verdicts, lay.curated, lay.negatives,
                lay.rejected, lay.pass_rates, *(lay.eval_file(m, "samples") for m in EVAL_MODELS)]

    def signature(self) -> dict[str, tuple[int, int]]:
        """``{path: (size, mtime_ns)}`` of the files the index reads (absent files left out)."""
        out = {}
        for p in self._watched():
            try:
                st = p.stat()
            except OSError:
                continue
            out[str(p)] = (st.st_size, st.st_mtime_ns)
        return out

    def stale(self) -> bool:
        return self.signature() != self._signature

    def _file(self, path: Path) -> int:
        self.files.append(path)
        return len(self.files) - 1

    def _read(self, path: Path, what: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """The file's records; a missing file is a note, a malformed one stops there with a note."""
        if not path.is_file():
            self.notes.append(f"no {what}: {path.relative_to(self.run_dir) if path.is_relative_to(self.run_dir) else path}"
                              " not found")
            return
        try:
            yield from _lines(path)
        except (InputError, OSError) as e:
            self.notes.append(f"{what}: stopped reading at {e}")

    @classmethod
    def build(cls, run_dir: str | Path) -> Index:
        index = cls(run_dir)
        if not index.run_dir.is_dir():
            raise InputError("not a run folder (no such folder)", file=index.run_dir)
        started = time.perf_counter()
        index._signature = index.signature()
        index._build()
        index._finish()
        index.build_seconds = time.perf_counter() - started
        log.info("view: indexed %d rows over %d problems in %.2f s", len(index.rows), len(index.problems),
                 index.build_seconds)
        return index

    def _build(self) -> None:
        lay = self.layout
        for split, path in (("train", lay.train_problems), ("eval", lay.eval_problems)):
            f = self._file(path)
            for _, off, obj in self._read(path, f"{split} problems"):
                pid, prompt = obj.get("id"), str(obj.get("prompt", ""))
                if not isinstance(pid, str) or pid in self.problems:
                    continue
                answer = str(obj.get("answer", ""))
                self.problems[pid] = ProblemEntry(split, f, off, " ".join(prompt.split())[:4 * PREVIEW], answer)
                self._problem_ids.append(pid)
                self._hays.append(f"{prompt}\n{answer}\n{pid}")

        self._strip_common_prefix()
        self._problem_corpus, self._problem_starts = _corpus(self._hays)
        self._hays = []
        difficulty: dict[str, float] = {}
        for _, _, obj in self._read(lay.pass_rates, "pass rates"):
            rate, pid = obj.get("pass_rate"), obj.get("problem_id")
            if isinstance(rate, (int, float)) and isinstance(pid, str):
                difficulty[pid] = 1.0 - float(rate)
                if pid in self.problems:
                    self.problems[pid].pass_rate = float(rate)

        verdicts: dict[str, tuple[bool, str, str | None]] = {}
        for _, _, obj in self._read(lay.verdicts, "verdicts"):
            if isinstance(obj.get("trace_id"), str):
                verdicts[obj["trace_id"]] = (bool(obj.get("passed")), str(obj.get("reason", "")), obj.get("extracted"))

        fates: dict[str, str] = {}
        for path, fate in ((lay.curated, "kept"), (lay.negatives, "negative")):
            for _, _, obj in self._read(path, f"curated {fate} traces"):
                if isinstance(tid := _meta_trace_id(obj), str):
                    fates[tid] = fate
        for _, _, obj in self._read(lay.rejected, "rejected traces"):
            if isinstance(obj.get("trace_id"), str):
                fates[obj["trace_id"]] = f"rejected: {obj.get('reason', '?')}"

        f = self._file(lay.traces)
        for _, off, obj in self._read(lay.traces, "teacher traces"):
            tid, pid = obj.get("id"), obj.get("problem_id")
            if not isinstance(tid, str) or not isinstance(pid, str):
                continue
            text = str(obj.get("raw") or f"{obj.get('reasoning', '')}\n{obj.get('answer_text', '')}")
            passed, reason, extracted = verdicts.get(tid, (None, "", None))
            usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
            self._add(Row("trace", tid, pid, str(obj.get("teacher", "")), passed, bool(obj.get("hinted")),
                          _tokens(usage.get("completion_tokens")), len(text),
                          extracted if extracted is not None else obj.get("answer_text"), fates.get(tid, ""), f, off,
                          int(obj.get("sample_idx") or 0), reason, str(obj.get("finish_reason", "")),
                          difficulty.get(pid)), f"{text}\n{tid}")

        for model in EVAL_MODELS:
            path = lay.eval_file(model, "samples")
            if not path.is_file():
                continue
            f = self._file(path)
            for _, off, obj in self._read(path, f"{model} answers"):
                pid = obj.get("problem_id")
                if not isinstance(pid, str):
                    continue
                text, idx = str(obj.get("text", "")), int(obj.get("sample_idx") or 0)
                rid = f"{model}/{pid}/{idx}"
                self._add(Row("eval", rid, pid, model, bool(obj["passed"]) if "passed" in obj else None, False,
                              _tokens(obj.get("completion_tokens")), len(text), obj.get("extracted"), "", f, off,
                              idx, "", str(obj.get("finish_reason", "")), difficulty.get(pid)), f"{text}\n{rid}")

    def _strip_common_prefix(self) -> None:
        """Drop the instruction every prompt starts with from the list previews (whole words only),
        so the list shows what tells problems apart."""
        previews = [p.preview for p in self.problems.values()]
        common = os.path.commonprefix(previews) if len(previews) > 1 else ""
        cut = common.rfind(" ") + 1 if common not in previews else 0
        for p in self.problems.values():
            p.preview = ("…" + p.preview[cut:] if cut >= 20 else p.preview)[:PREVIEW]

    def _add(self, row: Row, text: str) -> None:
        i = len(self.rows)
        self.problems.setdefault(row.problem_id, ProblemEntry("?", -1, -1, "", ""))
        self.problems[row.problem_id].rows.append(i)
        self._by_id.setdefault(row.id, i)
        for key in (("kind", row.kind), ("source", row.source), ("passed", row.passed), ("hinted", row.hinted),
                    ("fate", row.fate)):
            self._buckets[key].append(i)
        self._hays.append(text)
        self.rows.append(row)

    def _finish(self) -> None:
        self._corpus, self._starts = _corpus(self._hays)
        self._hays = []
        self._buckets = dict(self._buckets)

    # -- reading

    def facets(self) -> dict[str, Any]:
        """What the filters offer, and counts for the header."""
        tokens = [r.tokens for r in self.rows if r.tokens is not None]
        fates = Counter(r.fate for r in self.rows if r.fate)
        fate_values = sorted(fates)
        if any(f.startswith("rejected: ") for f in fates):
            fate_values.insert(0, "rejected")
        return {
            "run": str(self.run_dir), "rows": len(self.rows), "problems": len(self.problems),
            "kinds": dict(Counter(r.kind for r in self.rows)),
            "sources": sorted({r.source for r in self.rows}),
            "fates": fate_values,
            "tokens": [min(tokens), max(tokens)] if tokens else None,
            "has_difficulty": any(r.difficulty is not None for r in self.rows),
            "notes": self.notes, "build_seconds": round(self.build_seconds, 3),
        }

    def query(self, params: dict[str, str]) -> dict[str, Any]:
        """One page of rows matching the filters in ``params`` (strings, as in a query string):
        ``kind``, ``result`` (correct | incorrect | unverified), ``hinted`` (yes | no), ``source``,
        ``fate`` (a fate, or ``rejected`` for any reason), ``dmin``/``dmax`` (difficulty 0..1),
        ``lmin``/``lmax`` (completion tokens), ``q`` (case-insensitive text search over the trace,
        its problem and ids), ``sort`` (one of :data:`SORTS`), ``offset``, ``limit``."""
        started = time.perf_counter()
        sort = params.get("sort", "")
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(s or '(file order)' for s in SORTS)}")
        offset = max(0, _int(params, "offset", 0))
        limit = min(MAX_LIMIT, max(1, _int(params, "limit", 50)))
        matched = self._matching(params, sort)
        page = [self.rows[i] for i in matched[offset: offset + limit]]
        return {"total": len(self.rows), "matched": len(matched), "offset": offset, "limit": limit,
                "items": [self._summary(r) for r in page], "ms": round(1000 * (time.perf_counter() - started), 1)}

    def _matching(self, params: dict[str, str], sort: str) -> list[int]:
        """Row numbers matching ``params``, in ``sort`` order (cached per filter and sort)."""
        dmin, dmax = _float(params, "dmin"), _float(params, "dmax")
        lmin, lmax = _float(params, "lmin"), _float(params, "lmax")
        q = " ".join(params.get("q", "").replace(SEP, " ").split()).lower()
        key = (params.get("kind", ""), params.get("result", ""), params.get("hinted", ""), params.get("source", ""),
               params.get("fate", ""), dmin, dmax, lmin, lmax, q, sort)
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]

        # candidates: the smallest of the equality buckets and the search hits, intersected with the rest
        seeds: list[list[int]] = []
        if kind := params.get("kind"):
            seeds.append(self._bucket("kind", kind))
        result = params.get("result")
        if result:
            if result not in ("correct", "incorrect", "unverified"):
                raise ValueError("result must be correct, incorrect or unverified")
            seeds.append(self._bucket("passed", {"correct": True, "incorrect": False, "unverified": None}[result]))
        if params.get("hinted") in ("yes", "no"):
            seeds.append(self._bucket("hinted", params["hinted"] == "yes"))
        if source := params.get("source"):
            seeds.append(self._bucket("source", source))
        if fate := params.get("fate"):
            prefix = fate + ": "
            seeds.append(sorted(i for (name, value), rows in self._buckets.items()
                                if name == "fate" and (value == fate or value.startswith(prefix)) for i in rows))
        if q:
            seeds.append(self._search(q))
        if seeds:
            seeds.sort(key=len)
            matched = seeds[0]
            for other in seeds[1:]:
                if not matched:
                    break
                keep = set(other)
                matched = [i for i in matched if i in keep]
        else:
            matched = list(range(len(self.rows)))

        rows = self.rows
        if dmin is not None or dmax is not None:
            lo, hi = -1.0 if dmin is None else dmin, 2.0 if dmax is None else dmax
            matched = [i for i in matched if (d := rows[i].difficulty) is not None and lo <= d <= hi]
        if lmin is not None or lmax is not None:
            tlo, thi = -1.0 if lmin is None else lmin, float("inf") if lmax is None else lmax
            matched = [i for i in matched if (t := rows[i].tokens) is not None and tlo <= t <= thi]
        if sort:
            field_ = sort.lstrip("-")
            present = [i for i in matched if getattr(rows[i], field_) is not None]
            present.sort(key=lambda i: getattr(rows[i], field_), reverse=sort.startswith("-"))
            matched = present + [i for i in matched if getattr(rows[i], field_) is None]

        with self._lock:
            self._results[key] = matched
            while len(self._results) > CACHED_RESULTS:
                self._results.popitem(last=False)
        return matched

    def forget_results(self) -> None:
        """Drop the cached filtered results (the next query filters again)."""
        with self._lock:
            self._results.clear()

    def _bucket(self, name: str, value: Any) -> list[int]:
        return self._buckets.get((name, value), [])

    def _search(self, q: str) -> list[int]:
        """Rows whose text or id contains ``q`` (lowercase), or whose problem's prompt, answer or id does."""
        hits = set(_find(self._corpus, self._starts, q))
        for p in _find(self._problem_corpus, self._problem_starts, q):
            hits.update(self.problems[self._problem_ids[p]].rows)
        return sorted(hits)

    def _summary(self, r: Row) -> dict[str, Any]:
        p = self.problems.get(r.problem_id)
        return {"kind": r.kind, "id": r.id,
                "problem_id": r.problem_id, "split": p.split if p else "?", "prompt": p.preview if p else "",
                "source": r.source, "passed": r.passed, "hinted": r.hinted, "tokens": r.tokens, "chars": r.chars,
                "answer": r.answer, "fate": r.fate, "difficulty": r.difficulty, "sample_idx": r.sample_idx,
                "finish": r.finish}

    def record(self, row: Row) -> dict[str, Any]:
        """The row's full record, read back from its file at its offset."""
        return self._record_at(self.files[row.file], row.offset)

    def _record_at(self, path: Path, offset: int) -> dict[str, Any]:
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                obj = json.loads(fh.readline())
        except (OSError, ValueError):
            obj = None
        if not isinstance(obj, dict):
            raise InputError("the run folder changed since it was indexed; reload the page", file=path)
        return obj

    def row_by_id(self, rid: str) -> Row | None:
        i = self._by_id.get(rid)
        return None if i is None else self.rows[i]

    def detail(self, rid: str) -> dict[str, Any] | None:
        """A row opened: its full record, its problem, the teacher's other traces of that problem,
        and the answers of teacher / student before / student after side by side."""
        row = self.row_by_id(rid)
        if row is None:
            return None
        rec = self.record(row)
        if rec.get("id", rec.get("problem_id")) not in (row.id, row.problem_id):
            raise InputError("the run folder changed since it was indexed; reload the page", file=self.files[row.file])
        p = self.problems.get(row.problem_id)
        problem: dict[str, Any] = {"id": row.problem_id, "split": p.split if p else "?", "prompt": "",
                                   "answer": p.answer if p else "", "pass_rate": p.pass_rate if p else None,
                                   "difficulty": row.difficulty}
        if p and p.file >= 0:
            prec = self._record_at(self.files[p.file], p.offset)
            problem.update(prompt=str(prec.get("prompt", "")), answer=str(prec.get("answer", "")),
                           meta=prec.get("meta") if isinstance(prec.get("meta"), dict) else {})
        siblings = [self.rows[i] for i in (p.rows if p else [])]
        traces = [r for r in siblings if r.kind == "trace"]
        answers: dict[str, Any] = {}
        for model in EVAL_MODELS:
            mine = sorted((r for r in siblings if r.kind == "eval" and r.source == model), key=lambda r: r.sample_idx)
            if mine:
                answers[model] = {**self._summary(mine[0]), "text": self._text(mine[0]), "n_samples": len(mine),
                                  "n_passed": sum(bool(r.passed) for r in mine)}
        return {"row": {**self._summary(row), "reason": row.reason, "text": self._text(row, rec)},
                "record": {k: v for k, v in rec.items() if k != "logprobs"}, "problem": problem,
                "traces": [{**self._summary(r), "text": self._text(r)} for r in traces[:20]],
                "n_traces": len(traces), "answers": answers}

    def _text(self, row: Row, rec: dict[str, Any] | None = None) -> str:
        rec = rec if rec is not None else self.record(row)
        if row.kind == "eval":
            return str(rec.get("text", ""))
        return str(rec.get("raw") or f"{rec.get('reasoning', '')}\n{rec.get('answer_text', '')}")


def _int(params: dict[str, str], key: str, default: int) -> int:
    try:
        return int(params.get(key, default))
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be an integer, got {params.get(key)!r}") from None


def _float(params: dict[str, str], key: str) -> float | None:
    raw = params.get(key, "")
    if raw in ("", None):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {raw!r}") from None


def _corpus(texts: list[str]) -> tuple[str, list[int]]:
    """The texts lowercased and joined by :data:`SEP`, and where each starts."""
    lowered = [t.replace(SEP, " ").lower() for t in texts]  # lowercasing may change a text's length
    starts, at = [], 0
    for t in lowered:
        starts.append(at)
        at += len(t) + 1
    return SEP.join(lowered), starts


def _find(corpus: str, starts: list[int], q: str) -> Iterator[int]:
    """The numbers of the texts of ``corpus`` that contain ``q``, each once, in order."""
    pos = corpus.find(q)
    while pos >= 0:
        i = bisect_right(starts, pos) - 1
        yield i
        pos = corpus.find(q, starts[i + 1]) if i + 1 < len(starts) else -1
