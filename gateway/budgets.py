"""Tenant budgets (contract section 4.3): money per period by currency, and jobs per UTC day.

A submit is admitted before any vendor is called. Money: the spend the usage ledger has recorded in the current
period (UTC day or calendar month; a vendor's cost is known when its job ends, so jobs still running are not
counted yet); a currency whose spend has reached its limit refuses every new submit until the period ends. Jobs:
each admitted submit takes one of the day's jobs in the store (`Store.reserve_budget_job`, atomic across concurrent
submits and replicas), given back when the submit then fails without making a job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.config import BudgetConfig
from gateway.store.base import Store
from gateway.store.ledger import from_micros, to_micros
from gateway.usage import money


class BudgetExceeded(Exception):
    """A submit over the tenant's budget (402 `budget_exceeded`); `budget` is the current spend and limits."""

    def __init__(self, message: str, budget: dict[str, Any], retry_after_s: float) -> None:
        super().__init__(message)
        self.budget = budget
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Reservation:
    """One of the day's jobs taken by an admitted submit."""

    tenant: str
    day: str


def period_bounds(now: datetime, period: str) -> tuple[datetime, datetime]:
    """The UTC period (day or calendar month) holding `now`: [start, end)."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    start = day.replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


@dataclass
class Budgets:
    """The configured budgets by tenant, checked against the store."""

    store: Store
    budgets: dict[str, BudgetConfig]

    def of(self, tenant: str) -> BudgetConfig | None:
        return self.budgets.get(tenant)

    async def status(self, tenant: str, now: datetime) -> dict[str, Any] | None:
        """The tenant's budget now: limits, what is spent and used, and when each resets; None without a budget."""
        budget = self.budgets.get(tenant)
        if budget is None:
            return None
        out: dict[str, Any] = {}
        if budget.money:
            start, end = period_bounds(now, budget.period)
            spent = await self.store.spend(tenant, since=start)
            out["money"] = {
                "period": budget.period,
                "period_start": _iso(start),
                "resets_at": _iso(end),
                "currencies": {
                    currency: {"limit": limit, "spent": money(spent.get(currency, 0))}
                    for currency, limit in sorted(budget.money.items())
                },
            }
        if budget.jobs_per_day is not None:
            start, end = period_bounds(now, "day")
            used = await self.store.budget_jobs(tenant, start.date().isoformat())
            out["jobs"] = {"limit": budget.jobs_per_day, "used": used, "resets_at": _iso(end)}
        return out

    async def admit(self, tenant: str, now: datetime) -> Reservation | None:
        """Admit one submit: BudgetExceeded when a currency's spend has reached its limit or the day's jobs are
        used up; else the day's job taken for it (None when the tenant has no jobs-per-day limit)."""
        budget = self.budgets.get(tenant)
        if budget is None:
            return None
        if budget.money:
            start, end = period_bounds(now, budget.period)
            spent = await self.store.spend(tenant, since=start)
            over = [c for c, limit in sorted(budget.money.items()) if spent.get(c, 0) >= to_micros(limit)]
            if over:
                report = await self.status(tenant, now) or {}
                amounts = ", ".join(f"{from_micros(spent[c])} of {budget.money[c]:g} {c}" for c in over)
                raise BudgetExceeded(
                    f"the {budget.period}'s budget is spent ({amounts})", report, (end - now).total_seconds()
                )
        if budget.jobs_per_day is None:
            return None
        start, end = period_bounds(now, "day")
        day = start.date().isoformat()
        if await self.store.reserve_budget_job(tenant, day, budget.jobs_per_day) is None:
            report = await self.status(tenant, now) or {}
            raise BudgetExceeded(f"the day's {budget.jobs_per_day} jobs are used", report, (end - now).total_seconds())
        return Reservation(tenant, day)

    async def release(self, reservation: Reservation | None) -> None:
        """Give the day's job back: the submit it was taken for made no job."""
        if reservation is not None:
            await self.store.release_budget_job(reservation.tenant, reservation.day)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
