"""run_all.sh's driver: every papermill job of a profile in order, skipping the jobs whose results are current, with
`--status`, `--rerun`, `--dry-run` and profile overrides (`--set`, `--profile-file`: amuro_utils.study.overrides).

A job is done when its marker (results/<profile>/jobs/<job>.done, an artifact of amuro_utils.store.artifacts) carries the
settings identity the profile gives now: the identities of everything its stage (amuro_utils.study.stages) writes and
reads — records, training records, forgetting and sensitivity rows, the local ladder — and, for a job that judges
claims, the claims code's version and the settings the claims read. A changed setting therefore re-runs exactly the
jobs it affects, and inside a job only the results whose own identity changed are recomputed (amuro_utils.pipeline);
stale ones are kept aside.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import reporter
from ..config.paths import REPO_ROOT, figures_dir, results_dir
from ..config.profiles import Profile, runs_models
from ..models import ladder
from ..store import artifacts, identity, results
from ..study import overrides, plan, stages

# The artifacts besides records, sensitivity and forgetting rows that the scorecard's "Beyond the paper" section
# reads (pipeline.scorecard_identity gives the same).
SCORECARD_BEYOND = ("training", "dynamics", "probes")


@dataclass
class JobState:
    """Where one papermill job stands: done, stale (why) or missing, and the state of every record and other artifact
    it writes."""

    job: plan.NotebookJob
    state: str  # "done" | "stale" | "missing"
    why: list[str]
    records: list[tuple[dict, results.RecordStatus]]
    artifacts: list[tuple[str, artifacts.Status]] = field(default_factory=list)  # (what, its state)


def _store(profile: Profile, job: plan.NotebookJob) -> results.Store:
    """The records store a job's model jobs write (the fine-tune-to-convergence schedule has its own)."""
    kind = job.model_jobs[0].kind if job.model_jobs else "base"
    return results.Store(plan.records_dir(profile, kind))


def _checkpoint(profile: Profile, label: str, cache: dict) -> ladder.Checkpoint | None:
    """A ladder label resolved once per call of the caller (None when its ladder is not built or not reachable)."""
    return plan.resolved(profile, label, cache)


def _requests(profile: Profile, jobs: list[plan.Job], cache: dict) -> list[tuple[dict, dict]] | None:
    out = []
    for job in jobs:
        point = _checkpoint(profile, job.ckpt, cache)
        if point is None:
            return None
        out += plan.record_requests(job, identity.model_identity(point.repo, point.commit))
    return out


def _artifacts(profile: Profile, job: plan.NotebookJob, cache: dict, *, reads: bool = True) -> dict[str, list] | None:
    """Artifact kind -> [(what, path, identity)] of the artifacts besides records that a job writes (and, with
    `reads`, reads), as its stage says; None while a checkpoint cannot be resolved. The scorecard is not among them:
    its identity is made of what it reads (`_scorecard`)."""
    stage = stages.get(job.notebook)
    out = {}
    for kind in stages.ARTIFACT_KINDS:
        written = kind in stage.writes and (job.model_jobs or kind == "ladder")
        read = reads and kind in job.reads
        if kind == "scorecard" or not (written or read):
            continue
        jobs = (list(job.model_jobs) if written else []) + (plan.read_jobs(profile, job.reads) if read else [])
        found = plan.artifacts(profile, kind, jobs, lambda label: _checkpoint(profile, label, cache))
        if found is None:
            return None
        if found:
            out[kind] = list({str(path): (what, path, wanted) for what, path, wanted in found}.values())
    return out


def _scorecard(profile: Profile, job: plan.NotebookJob, cache: dict) -> dict | None:
    """The identity the scorecard must carry: the identities of everything the job that writes it reads."""
    if not runs_models(profile):
        return plan.scorecard_identity(profile, released=identity.source_digest(profile.results_source))
    reads, made = _requests(profile, plan.read_jobs(profile, job.reads), cache), _artifacts(profile, job, cache)
    if reads is None or made is None:
        return None
    digests = {kind: [identity.digest(w) for _, _, w in made.get(kind, [])]
               for kind in ("sensitivity", "forgetting", *SCORECARD_BEYOND)}
    return plan.scorecard_identity(profile, records=[identity.digest(w) for _, w in reads], **digests)


def job_identity(profile: Profile, job: plan.NotebookJob, cache: dict | None = None) -> dict | None:
    """What a job's result depends on (None while a checkpoint it needs cannot be resolved, e.g. before the local
    ladder is built): the identity hashes of the records and other artifacts it writes and reads, and, where it
    judges claims, the analysis identity (the claims code's version, the settings the claims read)."""
    cache = {} if cache is None else cache
    writes = _requests(profile, list(job.model_jobs), cache)
    reads = _requests(profile, plan.read_jobs(profile, job.reads), cache)
    made = _artifacts(profile, job, cache)
    if writes is None or reads is None or made is None:
        return None
    out = {"writes": sorted(identity.digest(i) for _, i in writes),
           "reads": sorted(identity.digest(i) for _, i in reads)}
    out.update({kind: sorted(identity.digest(wanted) for _, _, wanted in found) for kind, found in made.items()})
    if job.reads:  # it judges its claims
        out["analysis"] = plan.analysis_identity(profile)
    if not runs_models(profile):  # figures from read numbers (released, published, lm-eval): their content decides
        out["released"] = identity.source_digest(profile.results_source)
    return json.loads(json.dumps(identity.plain(out)))  # as it reads back from the marker file


def _written(profile: Profile, job: plan.NotebookJob, cache: dict) -> list[tuple[str, artifacts.Status]]:
    """(what, state) of each artifact besides records that a job writes."""
    made = _artifacts(profile, job, cache, reads=False) or {}
    out = [(what, artifacts.status(path, w)) for found in made.values() for what, path, w in found]
    wanted = _scorecard(profile, job, cache) if "scorecard" in job.writes else None
    if wanted is not None:
        out.append(("scorecard", artifacts.status(plan.scorecard_path(profile), wanted)))
    return out


def job_state(profile: Profile, job: plan.NotebookJob, cache: dict | None = None) -> JobState:
    """Done (its marker matches the current settings), stale (marker from other settings: what changed) or missing;
    with the state of every record and other artifact it writes."""
    cache = {} if cache is None else cache
    store = _store(profile, job)
    writes = _requests(profile, list(job.model_jobs), cache)
    if writes is None:  # identities unknown until the checkpoints resolve: every record counts as missing
        records = [(key, results.RecordStatus("missing", ("checkpoint not resolvable yet",), store.path(**key)))
                   for model_job in job.model_jobs for key, _ in plan.record_keys(model_job)]
    else:
        records = [(key, store.status(key, wanted)) for key, wanted in writes]
    wanted = job_identity(profile, job, cache)
    others = _written(profile, job, cache)
    path = plan.marker_path(profile, job.id)
    marker, problem = artifacts.read(path)
    if marker is None and problem is None:
        return JobState(job, "missing", [], records, others)
    if problem:
        return JobState(job, "stale", [f"unreadable marker {path}"], records, others)
    if "identity" not in marker:
        return JobState(job, "stale", ["marker without settings identity (written by an older version)"], records,
                        others)
    if wanted is not None and artifacts.status(path, wanted).state == "done":
        return JobState(job, "done", [], records, others)
    why = sorted({field for _, status in records if status.state == "stale" for field in status.changed})
    if wanted is None:
        why.append("its checkpoints cannot be resolved yet")
    else:
        old = marker["identity"] or {}
        for part in [*wanted, *(p for p in old if p not in wanted)]:
            if old.get(part) == wanted.get(part):
                continue
            if part in ("writes", "reads"):
                why.append(f"{len(set(wanted.get(part, [])) - set(old.get(part, [])))} records it {part[:-1]}s have "
                           "new settings")
            else:
                why.append(f"{part} changed")
    return JobState(job, "stale", why, records, others)


def _detail(state) -> str:
    """' (changed: …)' for a stale result, ' (why)' for a corrupt one, '' otherwise."""
    if state.state == "stale":
        return f" (changed: {', '.join(state.changed)})"
    return f" ({state.changed[0]})" if state.state == "corrupt" and state.changed else ""


def status(profile: Profile) -> str:
    """Every job, record and other artifact of the plan: done, stale (with the changed fields) or missing."""
    cache: dict = {}
    lines = [f"Status of profile {profile.name!r} ({results_dir(profile.name)}):"]
    counts: dict[str, int] = {}
    for job in plan.notebook_jobs(profile):
        st = job_state(profile, job, cache)
        lines.append(f"job {job.id}: {st.state}" + (f" ({'; '.join(st.why)})" if st.why else ""))
        store = "converge/" if job.model_jobs and job.model_jobs[0].kind == plan.CONVERGE else ""
        for key, rec in st.records:
            counts[rec.state] = counts.get(rec.state, 0) + 1
            run = results.run_name(key["fine_tune"], key["method"], key["seed"])
            lines.append(f"    {rec.state:<8} {store}{key['ckpt']}/{run}/{key['eval_set']}/{key['format']}"
                         f"{_detail(rec)}")
        for what, art in st.artifacts:
            lines.append(f"    {art.state:<8} {what}{_detail(art)}")
            stuck = what.endswith(" forgetting") and art.state != "done" and not profile.keep_weights
            if stuck and all(rec.state == "done" for _, rec in st.records):
                lines.append(f"             fix: {plan.forgetting_fix(profile, job.id)}")
    if any(_checkpoint(profile, c, cache) is None for c in profile.ckpts) and plan.jobs(profile):
        lines.append("(some checkpoints cannot be resolved yet — the local ladder is built by pretrain_probe, hub "
                     "checkpoints need the hub or a filled HF cache — so their records show as missing)")
    lines.append("records: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else
                 "records: none planned")
    return "\n".join(lines)


def rerun(profile: Profile, target: str) -> list[str]:
    """Force `target` ('all' or a job id) to run again from scratch: its marker is removed, the records, training
    records, forgetting and sensitivity rows it writes are set aside and its kept fine-tuned weights are deleted."""
    jobs = plan.notebook_jobs(profile)
    chosen = jobs if target == "all" else [j for j in jobs if j.id == target]
    if not chosen:
        raise SystemExit(f"unknown job {target!r}; jobs of profile {profile.name!r}: {[j.id for j in jobs]} or 'all'")
    cache: dict = {}
    for job in chosen:
        store = _store(profile, job)
        plan.marker_path(profile, job.id).unlink(missing_ok=True)
        for key, _ in _requests(profile, list(job.model_jobs), cache) or []:
            if store.path(**key).is_file():
                store.set_aside(store.path(**key))
        for kind, found in (_artifacts(profile, job, cache, reads=False) or {}).items():
            for _, path, _ in found if kind != "ladder" else ():
                if path.is_file():
                    artifacts.set_aside(results_dir(profile.name), path)
        for model_job in job.model_jobs:
            for spec in model_job.fine_tunes:
                shutil.rmtree(plan.weights_dir(profile, model_job.ckpt, spec), ignore_errors=True)
    return [j.id for j in chosen]


def dry_run(profile: Profile) -> str:
    """The plan: one papermill command per job (with its GPU-hour estimate where it runs a model on a GPU)."""
    from ..study import cost

    out_dir = f"results/{profile.name}/notebooks"
    costed = profile.requires_gpu and bool(plan.jobs(profile))
    throughput = cost.load_throughput() if costed else None
    lines = [f"# plan for profile '{profile.name}' (one papermill command per job; run them in this order, or as a "
             "job array per stage)"]
    for nb in plan.notebook_jobs(profile):
        line = f"papermill notebooks/{nb.notebook}.ipynb {out_dir}/{nb.id}.ipynb {nb.papermill_args()}"
        if costed and nb.model_jobs:
            hours = sum(cost.estimate(j, throughput) for j in nb.model_jobs)
            line += f"  # ≈ {hours:.2f} GPU-hours (estimate)"
        lines.append(line)
    if costed:
        lines += ["", cost.report(profile, throughput)]
    budget = cost.budget_report(profile)
    if budget:
        lines += ["", budget]
    return "\n".join(lines)


def write_marker(profile: Profile, job: plan.NotebookJob, seconds: float) -> None:
    """Record that `job` finished under the current settings."""
    artifacts.write(results_dir(profile.name), plan.marker_path(profile, job.id), job_identity(profile, job),
                    {"seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class _Watch:
    """The progress line of one running job: what its notebook says it is doing, where that is on the ladder, and an
    ETA: the work still ahead of the event's place on the cost model's timeline of the job (cost.job_timeline, in
    run order), each kind of work (pre-training, training, evaluation, the probes, …) at the pace measured on that
    kind so far. Kinds slow down differently on a busy machine. A kind's pace starts at the job's overall pace and
    moves to its own as its work is measured (a prior worth PRIOR of its modelled seconds), so the estimate moves
    smoothly from the model to the measurement."""

    PRIOR = 0.1  # the prior pace counts as much as this share of the work measured

    def __init__(self, profile: Profile, job: plan.NotebookJob):
        from ..study import cost

        self.profile, self.job, self.start = profile, job, time.time()
        try:
            self.timeline = cost.job_timeline(profile, job) or []
        except (KeyError, ValueError, OSError):
            self.timeline = []
        self.total = sum(s for _, s in self.timeline)
        self.kind_total: dict[str, float] = {}
        for unit, seconds in self.timeline:
            self.kind_total[self.kind(unit)] = self.kind_total.get(self.kind(unit), 0.0) + seconds
        self.measured: dict[str, float] = {}  # kind -> seconds it took
        self.modelled: dict[str, float] = {}  # kind -> the model's seconds of that work
        self.previous: tuple[float, float] | None = None  # (place, time) of the last event taken in
        self.last = None

    @staticmethod
    def unit(event: dict) -> tuple | None:
        """The timeline unit an event names (cost.job_timeline's keys); None if it names none."""
        unit = event.get("unit")
        if unit == "probes":
            return ("probes", event.get("ckpt"))
        if unit:
            return (unit,)
        if event.get("ckpt") is None:
            return None
        task = event.get("task")
        phase = event.get("phase") or ("evaluate" if task == results.BASE else "train")
        return (event["ckpt"], task, int(event.get("run") or 0), phase)

    @staticmethod
    def kind(unit: tuple) -> str:
        """The kind of work of a timeline unit: 'start', 'ladder', 'train', 'evaluate', 'sensitivity', 'probes',
        'rest'."""
        return unit[-1] if len(unit) == 4 else unit[0]

    def _place(self, event: dict) -> float | None:
        """The model's seconds of the job's work before the event (None if the plan has no place for it)."""
        key, done = self.unit(event), 0.0
        for unit, seconds in self.timeline:
            if unit == key:  # a unit that says how far it is (the ladder's steps) counts that share as done
                return done + min(max(float(event.get("fraction") or 0.0), 0.0), 1.0) * seconds
            done += seconds
        return None

    def _kinds(self, start: float, stop: float) -> dict[str, float]:
        """The model's seconds between two places on the timeline, by kind of work."""
        out, done = {}, 0.0
        for unit, seconds in self.timeline:
            low, high = max(start, done), min(stop, done + seconds)
            if high > low:
                out[self.kind(unit)] = out.get(self.kind(unit), 0.0) + high - low
            done += seconds
        return out

    def observe(self, event: dict) -> None:
        """Take an event in: the time since the previous one is what the work between their places took, shared
        among its kinds by the model's seconds."""
        place, when = self._place(event), event.get("t")
        if place is None or when is None:
            return
        if self.previous is not None and place > self.previous[0]:
            between = self._kinds(self.previous[0], place)
            modelled, took = sum(between.values()), when - self.previous[1]
            for kind, seconds in between.items():
                self.measured[kind] = self.measured.get(kind, 0.0) + took * seconds / modelled
                self.modelled[kind] = self.modelled.get(kind, 0.0) + seconds
        self.previous = (place, when)

    def eta(self, event: dict, now: float | None = None) -> float | None:
        """Seconds the job still needs after `event` (at `now`, default: now), or None where the plan has no place
        for it."""
        place = self._place(event)
        if self.total <= 0 or place is None:
            return None
        elapsed = (time.time() if now is None else now) - self.start
        prior = self.PRIOR * self.total
        overall = (elapsed + prior) / (place + prior)
        remaining = 0.0
        for kind, seconds in self._kinds(place, self.total).items():
            weight = self.PRIOR * self.kind_total[kind]
            pace = (self.measured.get(kind, 0.0) + weight * overall) / (self.modelled.get(kind, 0.0) + weight)
            remaining += seconds * pace
        return remaining

    def line(self, event: dict, now: float | None = None) -> str | None:
        """Take the event in and return the line to print ('   sft: fine-tuning mnli at step424000 (rung 4/8), ETA
        1 min 40 s'); None when nothing changed."""
        self.observe(event)
        what = (event.get("what"), event.get("ckpt"), event.get("task"))
        if what == self.last:
            return None
        self.last = what
        text = f"   {self.job.notebook}: {event['what']}"
        ckpt = event.get("ckpt")
        if ckpt in self.profile.ckpts:
            text += f" at {ckpt} (rung {list(self.profile.ckpts).index(ckpt) + 1}/{len(self.profile.ckpts)})"
        elif ckpt:
            text += f" at {ckpt}"
        eta = self.eta(event, now)
        return text if eta is None else f"{text}, ETA {_duration(eta)}"

def run_job(profile: Profile, job: plan.NotebookJob, state: JobState | None = None) -> bool:
    """Run one papermill job unless it is done; mark it finished on success. False (after printing the failing
    cell's error) when its notebook fails. run_all.sh and every SLURM array task run jobs through this.

    While it runs, a line says what the notebook is doing and the ETA (reporter.progress, cost.job_timeline);
    papermill's and the kernel's own output go to results/<profile>/notebooks/<job>.log."""
    from ..config.reporter import PROGRESS_ENV, read_progress

    state = state or job_state(profile, job)
    if state.state == "done":
        reporter.say(f"== {job.id}: done earlier, skipped")
        return True
    if state.state == "stale":
        reporter.say(f"== {job.id}: stale ({'; '.join(state.why)}), running again")
    out_dir = results_dir(profile.name) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    output, log, progress = (out_dir / f"{job.id}{ext}" for ext in (".ipynb", ".log", ".progress.jsonl"))
    reporter.log_event(progress, "job started")
    args = [sys.executable, "-m", "papermill", f"notebooks/{job.notebook}.ipynb", str(output)]
    for name, value in job.params:
        args += ["-p", name, value]
    args += ["--log-level", "WARNING", "--no-progress-bar", "--stderr-file", str(out_dir / f"{job.id}.stderr.log")]
    reporter.say(f"== {job.id}: papermill notebooks/{job.notebook}.ipynb {output} {job.papermill_args()}")
    t0, watch = time.perf_counter(), _Watch(profile, job)
    with open(log, "w") as sink:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, PROGRESS_ENV: str(progress)})
        seen = 1  # the runner's own "job started"
        while proc.poll() is None:
            time.sleep(0.5)
            events = read_progress(progress)  # every event, also those between two polls
            for event in events[seen:]:
                line = watch.line(event)
                if line:
                    reporter.say(line)
            seen = max(seen, len(events))
    if proc.returncode != 0:
        reporter.say(f"!! notebook '{job.notebook}' failed (job {job.id}). The partial executed notebook is {output}; "
                     f"papermill's output: {log};\n"
                     f"!! the failing cell's error:\n{cell_error(output) if output.exists() else 'no notebook written'}",
                     error=True)
        return False
    seconds = time.perf_counter() - t0
    reporter.log_event(progress, "job finished")
    write_marker(profile, job, seconds)
    reporter.say(f"== {job.id}: finished in {_duration(seconds)}")
    return True


def unfinished_jobs(profile: Profile) -> list[plan.NotebookJob]:
    """The profile's papermill jobs, in run order, that are not done under the current settings."""
    cache: dict = {}
    return [job for job in plan.notebook_jobs(profile) if job_state(profile, job, cache).state != "done"]


def run(profile: Profile, *, over_budget: bool = False) -> int:
    """Run every job of the profile in order, skipping done ones; stop at the first failing notebook (exit 1).
    A CPU profile whose estimated wall time exceeds its budget is refused first (exit 2) unless `over_budget`, and so
    is a GPU profile with unfinished jobs on a machine without a GPU (cost.gpu_refusal)."""
    from ..study import cost

    try:
        line = cost.check_budget(profile)
    except cost.BudgetError as err:
        if not over_budget:
            reporter.say(f"!! {err}", error=True)
            return 2
        line = f"{err.args[0]} Running anyway (--over-budget)."
    if line:
        reporter.say(f"== {line}")
    # every notebook's set-up would refuse a GPU profile on a machine without one: refuse the plan before any job
    refusal = None if cost.force_cpu() else cost.gpu_refusal(profile)
    if refusal and unfinished_jobs(profile):
        reporter.say(f"!! {refusal}", error=True)
        return 2
    start_all = time.perf_counter()
    for job in plan.notebook_jobs(profile):
        if not run_job(profile, job):
            return 1
    reporter.say(f"== all jobs of profile '{profile.name}' finished in {_duration(time.perf_counter() - start_all)}")
    reporter.say(summary(profile))
    return 0


def summary(profile: Profile) -> str:
    """The end of a run: the scorecard's headline, where the figures are, and the report (written now)."""
    from ..figures import report

    figures = figures_dir(profile.name)
    lines = []
    card = figures / "claims.md"
    if card.is_file():
        headline = next((line for line in card.read_text().splitlines() if line.startswith("Verdicts: ")), "")
        lines.append(f"   scorecard: {headline.split(' *Robust*')[0]} ({card})")
    index = report.write_report(profile.name)
    lines += [f"   figures and tables: {figures}/   executed notebooks: {results_dir(profile.name) / 'notebooks'}/",
              f"   report: {index} (open it in a browser)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    """`python -m amuro_utils.run.runner --profile P [--set FIELD=VALUE]... [--check | --dry-run | --status | --jobs |
    --rerun JOB|all]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    overrides.add_arguments(parser, "tiny")
    parser.add_argument("--dry-run", action="store_true", help="print one papermill command per job (and costs)")
    parser.add_argument("--status", action="store_true", help="list every job and record: done, stale or missing")
    parser.add_argument("--jobs", action="store_true", help="tab-separated job list (id, notebook, parameters)")
    parser.add_argument("--rerun", metavar="JOB", help="force a job (or 'all') to run again, then run the study")
    parser.add_argument("--job", metavar="JOB", help="run this one job (unless done) and mark it; for array tasks")
    parser.add_argument("--over-budget", action="store_true", help="run a CPU profile over its budget_s anyway")
    parser.add_argument("--check", action="store_true",
                        help="preflight: every checkpoint and dataset source of the plan, before any download")

    args = parser.parse_args(argv)
    try:
        profile = overrides.from_args(args)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if args.check:
        from ..study import hubcheck

        return hubcheck.run_check(profile)
    if args.dry_run:
        print(dry_run(profile))
        return 0
    if args.status:
        print(status(profile))
        return 0
    if args.jobs:
        print("\n".join(f"{nb.id}\t{nb.notebook}\t{nb.papermill_args()}" for nb in plan.notebook_jobs(profile)))
        return 0
    if args.job:
        jobs = {j.id: j for j in plan.notebook_jobs(profile)}
        if args.job not in jobs:
            print(f"unknown job {args.job!r}; jobs of profile {profile.name!r}: {list(jobs)}", file=sys.stderr)
            return 2
        return 0 if run_job(profile, jobs[args.job]) else 1
    if args.rerun:
        print(f"== forcing a rerun of {', '.join(rerun(profile, args.rerun))} (old records kept in "
              f"records/{results.STALE_DIR}/)", flush=True)
    return run(profile, over_budget=args.over_budget)


def cell_error(path: str | Path) -> str:
    """The error (name, value and the last traceback lines) of the first failing cell of an executed notebook."""
    import nbformat  # here, not at import: nbformat's schema validator costs every kernel ~1.5 s to import

    nb = nbformat.read(str(path), as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                source = cell.source.strip().splitlines()
                head = source[0] if source else ""
                return (f"cell {index} ({head[:80]!r}): {output['ename']}: {output['evalue']}")
    return f"no cell of {path} holds an error (the kernel may have died or been killed)"


if __name__ == "__main__":
    sys.exit(main())
