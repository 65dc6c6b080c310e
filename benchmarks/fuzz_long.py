"""Long fuzzing session for piece: thousands of mutated scores and texts, in worker processes.

The strategies and the property are those of ``tests/test_fuzz.py`` (the CI profile); here they
run far longer, undetermined (a new seed each run unless ``--seed``), with no shrinking, each
example in a worker process with a hard timeout (a hung or crashed worker is killed, counted and
replaced). Three properties, run one after the other:

* plan   — mutated score + text (+ command-line options) through ``score.load`` → ``plan.resolve``
* render — mostly-valid mutations through ``render.render`` too (pieces over 20 s are only resolved)
* bytes  — raw byte mutations of the base score's TOML (truncation, flips, splices) through load/resolve

    PYTHONPATH=. python benchmarks/fuzz_long.py                      # 2000 plan, 300 render, 500 bytes
    PYTHONPATH=. python benchmarks/fuzz_long.py --examples 5000 --renders 500 --seed 1 --failures /tmp/f

Prints, per property, the counts of successes (rendered / resolved), ScoreErrors by key path and
failures by signature (exception type and the innermost frame in ``audio/``), and writes each
failing example (``piece.toml``, ``piece.txt``, ``options.json``, ``outcome.txt``) into the
failures folder, at most ``--keep`` per signature. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (str(REPO), str(REPO / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- workers

def _worker(conn, cache_dir: str):
    """Run examples sent over ``conn`` until it sends None; each reply is (job id, outcome dict)."""
    os.environ["PIECE_CACHE_DIR"] = cache_dir
    for p in (str(REPO), str(REPO / "tests")):
        if p not in sys.path:
            sys.path.insert(0, p)
    import test_fuzz as fz
    from audio.speech.cache import ClipCache
    cache = ClipCache()
    while True:
        job = conn.recv()
        if job is None:
            return
        job_id, folder, score_bytes, text, opts, render_it, timeout_s, ffmpeg_check = job
        try:
            outcome = fz.run_example(Path(folder), score_bytes, text, opts, render_it=render_it,
                                     timeout_s=timeout_s, cache=cache, ffmpeg_check=ffmpeg_check)
            reply = {"kind": outcome.kind, "key": outcome.key, "detail": outcome.detail,
                     "info": json.loads(json.dumps(outcome.info, default=str))}
        except BaseException as e:  # noqa: BLE001 - reported, never lost
            reply = {"kind": "failure", "key": f"fuzzer error: {type(e).__name__}", "detail": repr(e), "info": {}}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        conn.send((job_id, reply))


class Pool:
    """Worker processes with a hard per-job timeout: a job past it gets its worker killed."""

    def __init__(self, n: int, cache_dir: str, timeout_s: float, on_result):
        self.ctx = mp.get_context("spawn")  # no fork: the parent has espeak-ng's threads loaded
        self.cache_dir, self.timeout_s, self.on_result = cache_dir, timeout_s, on_result
        self.workers = [self._start() for _ in range(n)]

    def _start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.cache_dir), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "job": None, "since": 0.0}

    def _poll(self, wait_s: float):
        busy = [w for w in self.workers if w["job"] is not None]
        if not busy:
            return
        ready = mp.connection.wait([w["conn"] for w in busy], timeout=wait_s)
        now = time.monotonic()
        for i, w in enumerate(self.workers):
            if w["job"] is None:
                continue
            job = w["job"]
            if w["conn"] in ready:
                try:
                    job_id, reply = w["conn"].recv()
                except (EOFError, OSError):
                    reply = {"kind": "failure", "key": f"worker died (exit code {w['proc'].exitcode})",
                             "detail": "the worker process ended while running this example", "info": {}}
                    self._replace(i)
                    self.on_result(job, reply)
                    continue
                w["job"] = None
                self.on_result(job, reply)
            elif now - w["since"] > self.timeout_s:
                reply = {"kind": "failure", "key": f"hang (over {self.timeout_s:g} s, worker killed)",
                         "detail": f"no result after {now - w['since']:.0f} s", "info": {}}
                self._replace(i)
                self.on_result(job, reply)

    def _replace(self, i):
        w = self.workers[i]
        w["proc"].kill()
        w["proc"].join(5)
        shutil.rmtree(w["job"]["folder"], ignore_errors=True)
        self.workers[i] = self._start()

    def submit(self, job: dict):
        while True:
            free = [w for w in self.workers if w["job"] is None]
            if free:
                w = free[0]
                w["job"], w["since"] = job, time.monotonic()
                w["conn"].send((job["id"], job["folder"], job["score"], job["text"], job["options"],
                                job["render"], self.timeout_s - 5, job["ffmpeg"]))
                return
            self._poll(1.0)

    def drain(self):
        while any(w["job"] is not None for w in self.workers):
            self._poll(1.0)

    def close(self):
        for w in self.workers:
            try:
                w["conn"].send(None)
            except OSError:
                pass
        for w in self.workers:
            w["proc"].join(10)
            if w["proc"].is_alive():
                w["proc"].kill()


# ----------------------------------------------------------------------------- the session

class Session:
    def __init__(self, args, work: Path, failures: Path):
        self.args, self.work, self.failures = args, work, failures
        self.counts = collections.defaultdict(collections.Counter)  # property -> outcome kind -> n
        self.keys = collections.defaultdict(collections.Counter)  # property -> ScoreError key -> n
        self.failed = collections.defaultdict(collections.Counter)  # property -> failure signature -> n
        self.examples_of = collections.defaultdict(list)  # signature -> folders written
        self.known = {}  # signature -> name in test_fuzz.KNOWN_BUGS (of its first example), or None
        self.next_id = 0
        self.done = 0
        self.started = time.monotonic()

    def on_result(self, job, reply):
        prop = job["property"]
        if reply["kind"] == "failure" and reply["key"] not in self.known:
            import test_fuzz as fz
            self.known[reply["key"]] = fz.known_bug(fz.Outcome(**reply))
        self.counts[prop][reply["kind"]] += 1
        self.done += 1
        if "ebur128" in reply["info"]:
            self.counts[prop]["checked by ffmpeg ebur128"] += 1
        if reply["kind"] == "score_error":
            self.keys[prop][reply["key"]] += 1
            if "\n" in reply["detail"]:  # the README promises one line per error: noted, not failed
                self.counts[prop]["ScoreError message over several lines"] += 1
                sig = "note: ScoreError message over several lines"
                if len(self.examples_of[sig]) < self.args.keep:
                    self._save(job, {**reply, "key": sig})
        elif reply["kind"] == "failure":
            sig = reply["key"]
            self.failed[prop][sig] += 1
            if sum(f"/{prop}-" in f for f in self.examples_of[sig]) < self.args.keep:  # per property
                self._save(job, reply)
        if self.done % 100 == 0:
            log(f"{self.done} examples ({self.done / (time.monotonic() - self.started):.1f}/s); "
                + ", ".join(f"{p}: {dict(c)}" for p, c in self.counts.items()))

    def _save(self, job, reply):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", reply["key"]).strip("-")[:80] or "failure"
        folder = self.failures / f"{slug}" / f"{job['property']}-{job['id']:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "piece.toml").write_bytes(job["score"])
        (folder / "piece.txt").write_bytes(job["text"].encode("utf-8", "surrogatepass"))
        (folder / "options.json").write_text(json.dumps({"options": job["options"], "render": job["render"],
                                                         "notes": job["notes"], "text_label": job["label"]},
                                                        indent=2, ensure_ascii=False, default=str) + "\n")
        (folder / "outcome.txt").write_text(f"{reply['kind']}: {reply['key']}\n\n{reply['detail']}\n\n"
                                            f"{json.dumps(reply['info'], indent=2, default=str)}\n")
        self.examples_of[reply["key"]].append(str(folder))

    def job(self, prop, score_bytes, text, options, render, notes, label):
        self.next_id += 1
        folder = Path(tempfile.mkdtemp(prefix=f"{prop}-{self.next_id:05d}-", dir=self.work))
        every = self.args.ebur128_every
        return {"id": self.next_id, "property": prop, "folder": str(folder), "score": score_bytes, "text": text,
                "options": options, "render": render, "notes": notes, "label": label,
                "ffmpeg": bool(render and every and self.next_id % every == 0)}


def run(args) -> int:
    from hypothesis import HealthCheck, Phase, given, seed, settings

    import test_fuzz as fz

    work = Path(tempfile.mkdtemp(prefix="piece-fuzz-"))
    cache_dir = os.environ.get("PIECE_CACHE_DIR") or str(work / "cache")
    os.environ["PIECE_CACHE_DIR"] = cache_dir
    failures = Path(args.failures or work / "failures")
    failures.mkdir(parents=True, exist_ok=True)
    session = Session(args, work, failures)
    pool = Pool(args.workers, cache_dir, args.timeout, session.on_result)
    run_seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    log(f"seed {run_seed}; work folder {work}; failures into {failures}; {args.workers} workers")

    def session_settings(n):
        return settings(max_examples=n, deadline=None, database=None, derandomize=False,
                        phases=[Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)

    timings = {}
    if args.examples:
        t0 = time.monotonic()

        @seed(run_seed)
        @session_settings(args.examples)
        @given(fz.examples(slow=args.slow))
        def plan_property(example):
            doc, label, text, opts, notes = example
            pool.submit(session.job("plan", fz.toml_dumps(doc).encode(), text, opts, False, notes, label))
        log(f"plan property: {args.examples} examples")
        plan_property()
        pool.drain()
        timings["plan"] = time.monotonic() - t0

    if args.renders:
        t0 = time.monotonic()

        @seed(run_seed + 1)
        @session_settings(args.renders)
        @given(fz.examples(slow=False, for_render=True))
        def render_property(example):
            doc, label, text, opts, notes = example
            pool.submit(session.job("render", fz.toml_dumps(doc).encode(), text, opts, True, notes, label))
        log(f"render property: {args.renders} examples")
        render_property()
        pool.drain()
        timings["render"] = time.monotonic() - t0

    if args.bytes:
        t0 = time.monotonic()

        @seed(run_seed + 2)
        @session_settings(args.bytes)
        @given(fz.byte_mutations())
        def bytes_property(mutation):
            data, notes = mutation
            pool.submit(session.job("bytes", data, fz.BASE_TEXT, None, False, notes, "base"))
        log(f"bytes property: {args.bytes} examples")
        bytes_property()
        pool.drain()
        timings["bytes"] = time.monotonic() - t0
    pool.close()

    # ------------------------------------------------------------------ report
    out = sys.stdout
    total_failed = 0
    print(f"\npiece fuzz session — seed {run_seed}, {session.done} examples in "
          f"{time.monotonic() - session.started:.0f} s", file=out)
    for prop in ("plan", "render", "bytes"):
        c = session.counts.get(prop)
        if not c:
            continue
        n = sum(c[k] for k in ("rendered", "planned", "score_error", "failure"))
        print(f"\n== {prop}: {n} examples in {timings.get(prop, 0):.0f} s ==", file=out)
        print(f"  rendered on target : {c['rendered']}", file=out)
        print(f"  resolved only      : {c['planned']}", file=out)
        print(f"  ScoreError         : {c['score_error']}", file=out)
        print(f"  FAILURES           : {c['failure']}", file=out)
        if prop == "render":
            print(f"  (of the renders, {c['checked by ffmpeg ebur128']} were also measured by ffmpeg's ebur128)",
                  file=out)
        if c["ScoreError message over several lines"]:
            print(f"  note: {c['ScoreError message over several lines']} ScoreError messages span several lines "
                  f"(e.g. {session.examples_of['note: ScoreError message over several lines'][0]})", file=out)
        if session.keys[prop]:
            print("  ScoreErrors by key path:", file=out)
            for key, k in session.keys[prop].most_common():
                print(f"    {k:6d}  {key}", file=out)
        if session.failed[prop]:
            print("  failures by signature:", file=out)
            for sig, k in session.failed[prop].most_common():
                total_failed += k
                known = session.known.get(sig)
                print(f"    {k:6d}  {sig}" + (f"   [known bug: {known}]" if known else "   [NEW]"), file=out)
                for folder in [f for f in session.examples_of.get(sig, []) if f"/{prop}-" in f][:1]:
                    print(f"            e.g. {folder}", file=out)
    summary = {"seed": run_seed, "counts": {p: dict(c) for p, c in session.counts.items()},
               "score_errors": {p: dict(c) for p, c in session.keys.items()},
               "failures": {p: dict(c) for p, c in session.failed.items()},
               "examples": dict(session.examples_of), "timings_s": timings}
    (failures / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfailing examples and summary.json in {failures}", file=out)
    if not args.keep_work:
        for child in work.iterdir():  # the speech cache and leftovers; never the failures
            if child.resolve() != failures.resolve():
                shutil.rmtree(child, ignore_errors=True)
    return 1 if total_failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=2000, help="examples of the load/resolve property (2000)")
    ap.add_argument("--renders", type=int, default=300, help="examples of the full-render property (300)")
    ap.add_argument("--bytes", type=int, default=500, help="raw byte mutations of the TOML (500)")
    ap.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds before an example counts as a hang")
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random, printed)")
    ap.add_argument("--slow", action=argparse.BooleanOptionalAction, default=True,
                    help="include the one 5,000-character line among the texts (default on)")
    ap.add_argument("--failures", default=None, help="folder for failing examples (default: in the work folder)")
    ap.add_argument("--ebur128-every", type=int, default=2,
                    help="measure every Nth render example's files with ffmpeg's ebur128 too (2; 0 = never)")
    ap.add_argument("--keep", type=int, default=5, help="failing examples written per signature (5)")
    ap.add_argument("--keep-work", action="store_true", help="keep the work folder (speech cache) afterwards")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
