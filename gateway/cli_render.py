"""How the client commands show things: short summaries and tables (rich) for people, a live display while
`wait` follows a job on a terminal, and plain lines when stdout is not a terminal."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from gateway.models import Job, Result
from gateway.server.schemas import ProviderInfo
from gateway.server.usage_schemas import UsageReport
from gateway.states import Issue

STATE_STYLES = {
    "queued": "grey62",
    "running": "bold blue",
    "action_required": "bold magenta",
    "succeeded": "bold green",
    "completed_with_issues": "bold yellow",
    "failed": "bold red",
    "cancelled": "bold bright_black",
    "unknown": "dim",
}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def plain_line(job: Job, elapsed: float | None = None) -> str:
    """One line per version, for logs and pipes: `job_… running vendor=PENDING stage=- progress=40% v3 +1.2s`."""
    parts = [job.id, job.state.value, f"vendor={job.vendor_status or '-'}", f"stage={job.stage or '-'}"]
    if job.progress is not None:
        parts.append(f"progress={job.progress}%")
    parts.append(f"v{job.version}")
    if job.stale:
        parts.append("(stale)")
    if elapsed is not None:
        parts.append(f"+{elapsed:.1f}s")
    return " ".join(parts)


def job_summary(console: Console, job: Job) -> None:
    """A short summary of a job: who, where, what state, and what went wrong if anything did."""
    head = Text.assemble((job.id, "bold"), "  ", job.provider, "  ", state_text(job.state.value), f"  v{job.version}")
    if job.stale:
        head.append("  (stale: not confirmed by the vendor lately)", style="yellow")
    console.print(head)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("vendor status", job.vendor_status or "-"),
        ("stage", job.stage or "-"),
        ("progress", "-" if job.progress is None else f"{job.progress}%"),
        ("created", ago(job.created_at)),
        ("updated", ago(job.updated_at)),
    ]
    if job.route:
        rows.append(("route", f"{job.route}: " + ", ".join(f"{a['provider']} {a['outcome']}" for a in job.attempts)))
    if job.error:
        rows.append(("error", Text(f"{job.error.code}: {job.error.message}", style="red")))
    if job.action:
        rows.append(("action", f"{job.action.kind}" + (f": {job.action.message}" if job.action.message else "")))
    if job.result_available:
        rows.append(("result", f"gateway result {job.id}"))
    for label, value in rows:
        grid.add_row(label, Text(value) if isinstance(value, str) else value)
    console.print(grid)
    issues_table(console, job.issues)


def issues_table(console: Console, issues: list[Issue]) -> None:
    if not issues:
        return
    table = new_table(console, title=f"{len(issues)} issue(s)", title_justify="left", title_style="bold yellow")
    for column in ("code", "target", "message", "hint"):
        table.add_column(column, overflow="fold")
    for issue in issues:
        table.add_row(*(Text(v) for v in (issue.code, issue.target or "", issue.message or "", issue.hint or "")))
    console.print(table)


def result_view(console: Console, result: Result) -> None:
    console.print(Text.assemble((result.job_id, "bold"), "  ", result.provider, "  ", state_text(result.state.value)))
    if result.outputs:
        table = new_table(console)
        table.add_column("#", style="dim")
        table.add_column("source", overflow="fold")
        table.add_column("target", overflow="fold")
        if any(o.status for o in result.outputs):
            table.add_column("status")
        if any(o.quality is not None for o in result.outputs):
            table.add_column("quality", justify="right")
        for index, output in enumerate(result.outputs):
            row = [output.name or str(index), output.source or "-", output.target or "-"]
            if any(o.status for o in result.outputs):
                row.append(output.status or "-")
            if any(o.quality is not None for o in result.outputs):
                row.append("-" if output.quality is None else f"{output.quality:g}")
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
    if result.artifact:
        name = result.artifact.filename or result.artifact.href
        console.print(Text(f"output file: {name} ({result.artifact.content_type or 'unknown type'})"))
        console.print(Text(f"  gateway artifact {result.job_id} -o {result.artifact.filename or 'FILE'}", style="dim"))
    if result.usage:
        usage = result.usage
        cost = f", cost {usage.cost.amount:g} {usage.cost.currency}" if usage.cost else ""
        console.print(
            f"usage: {usage.input_tokens or '-'} tokens in, {usage.output_tokens or '-'} out{cost}", style="dim"
        )
    issues_table(console, result.issues)


def new_table(console: Console, **options: Any) -> Table:
    """A table with borders on a terminal, plain aligned columns otherwise (for pipes and logs)."""
    return Table(box=box.SIMPLE_HEAVY if console.is_terminal else None, **options)


def jobs_table(console: Console, jobs: list[Job]) -> None:
    table = new_table(console)
    for column in ("job", "provider", "state", "vendor status", "stage", "progress", "v", "updated"):
        table.add_column(column, justify="right" if column in ("progress", "v") else "left", no_wrap=column == "job")
    for job in jobs:
        table.add_row(
            job.id,
            job.provider,
            state_text(job.state.value),
            Text(job.vendor_status or "-"),
            Text(job.stage or "-"),
            "-" if job.progress is None else f"{job.progress}%",
            str(job.version),
            ago(job.updated_at),
        )
    console.print(table)


def providers_table(console: Console, providers: list[ProviderInfo]) -> None:
    table = new_table(console)
    for column in ("provider", "name", "inputs", "also", "vendor statuses"):
        table.add_column(column, justify="right" if column == "vendor statuses" else "left")
    for p in providers:
        caps = p.capabilities
        can = [k for k in ("cancel", "artifact", "progress") if caps.get(k)]
        inputs = ", ".join(k for k in caps.get("input_kinds", []) if k != "native") or "native"
        table.add_row(p.name, Text(p.display_name), inputs, ", ".join(can) or "-", str(len(p.mapping)))
    console.print(table)
    console.print("each provider's status mapping: gateway providers", style="dim")


def usage_table(console: Console, report: UsageReport) -> None:
    """One row per group: jobs by outcome, what the vendors billed, and attempt durations per provider."""
    table = new_table(console)
    for column in (report.group_by, "jobs ok/issues/failed", "failed attempts", "cost", "tokens in/out", "p50 / p90"):
        table.add_column(column)
    for g in report.groups:
        jobs = g.jobs
        durations = ", ".join(f"{d.p50_s:g}s / {d.p90_s:g}s" for d in g.durations.values())
        table.add_row(
            Text(f"{g.key or '-'}{' (shadow)' if g.shadow else ''}"),
            f"{jobs.get('succeeded', 0)}/{jobs.get('completed_with_issues', 0)}/{jobs.get('failed', 0)}",
            str(g.attempts.get("failed", 0)),
            ", ".join(f"{amount:g} {currency}" for currency, amount in g.usage.cost.items()) or "-",
            f"{g.usage.input_tokens}/{g.usage.output_tokens}",
            durations or "-",
        )
    console.print(table)
    console.print(f"attempts that ended from {report.from_} to {report.to}", style="dim")


class WaitDisplay:
    """What `wait` shows while it follows a job: on a terminal a live line (state, stage, vendor status, a
    progress bar where the vendor reports progress, elapsed time); otherwise one plain line per version."""

    def __init__(self, console: Console, *, live: bool) -> None:
        self.console = console
        self.started = time.monotonic()
        self.progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("", total=None)
        self.status = Text()
        self.live = Live(Group(self.progress, self.status), console=console, refresh_per_second=8) if live else None

    def __enter__(self) -> WaitDisplay:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, job: Job) -> None:
        if self.live is None:
            print(plain_line(job, time.monotonic() - self.started), flush=True)
            return
        style = STATE_STYLES.get(job.state.value, "")
        description = (
            f"[bold]{job.id}[/] [{style}]{job.state.value}[/]" if style else f"[bold]{job.id}[/] {job.state.value}"
        )
        if job.stage:
            description += f" · {escape(job.stage)}"
        self.progress.update(
            self.task,
            description=description,
            total=None if job.progress is None else 100,
            completed=job.progress or 0,
        )
        if job.terminal:
            self.progress.update(self.task, total=100, completed=100 if job.state.has_result else job.progress or 0)
            self.progress.stop_task(self.task)
        vendor = f"vendor status {job.vendor_status or '-'} · v{job.version} · {job.provider}"
        self.status = Text(vendor + ("  (stale)" if job.stale else ""), style="dim")
        self.live.update(Group(self.progress, self.status))

    def finish(self, job: Job) -> None:
        elapsed = time.monotonic() - self.started
        if self.live is None:
            print(f"{job.id} ended {job.state.value} after {elapsed:.1f}s (v{job.version})", flush=True)
            for issue in job.issues:
                print(f"issue {issue.code} target={issue.target or '-'}: {issue.message or ''}", flush=True)
            if job.error:
                print(f"error {job.error.code}: {job.error.message}", flush=True)
            return
        self.console.print(Text.assemble("ended ", state_text(job.state.value), f" after {elapsed:.1f} s"))
        if job.error:
            self.console.print(Text(f"error {job.error.code}: {job.error.message}", style="red"))
        issues_table(self.console, job.issues)
