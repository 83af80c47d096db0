"""Metric checks: Linkerd's built-in queries, inline queries and MetricTemplates (flagger-spec 5.2-5.5).

Queries are rendered exactly as Flagger's templates are written (NOT whitespace-collapsed: the Prometheus
client collapses them before sending). Every check emits a :class:`CheckEvaluated`; a failure records
Flagger's Warning wording and ends the tick's analysis.
"""

from __future__ import annotations

import base64
import functools
import re

from canarylab.engine.context import TickContext
from canarylab.engine.durations import format_go_duration, parse_duration
from canarylab.engine.events import CheckEvaluated
from canarylab.engine.kinds import METRIC_TEMPLATE, SECRET
from canarylab.engine.ports import MetricQuery, MetricsError, NoValuesFound
from canarylab.engine.spec import CanaryMetric, SpecError, parse_metric_template

# Flagger's Go templates start with a newline: collapsed, it is the leading space of linkerd_test.go's strings.
SUCCESS_RATE_QUERY = """
sum(
  rate(
    response_total{
      namespace="{{ namespace }}",
      deployment=~"{{ target }}",
      classification!="failure",
      direction="inbound"
    }[{{ interval }}]
  )
)
/
sum(
  rate(
    response_total{
      namespace="{{ namespace }}",
      deployment=~"{{ target }}",
      direction="inbound"
    }[{{ interval }}]
  )
)
* 100"""

DURATION_QUERY = """
histogram_quantile(
  0.99,
  sum(
    rate(
      response_latency_ms_bucket{
        namespace="{{ namespace }}",
        deployment=~"{{ target }}",
        direction="inbound"
      }[{{ interval }}]
    )
  ) by (le)
)"""

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")
_seconds = functools.lru_cache(maxsize=1024)(parse_duration)  # the same few intervals, every tick


class RenderError(Exception):
    """A template names something that does not exist (Go's ``missingkey=error``)."""


def render(template: str, values: dict[str, str], variables: dict[str, str]) -> str:
    """Render Flagger's Go template subset: ``{{ name }}``, ``{{ variables.x }}`` (missing = error)."""

    def sub(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith(("variables.", ".variables.")):
            key = expr.split("variables.", 1)[1]
            if key not in variables:
                raise RenderError(f'template: {expr}: map has no entry for key "{key}"')
            return variables[key]
        name = expr.lstrip(".")
        if name in values:
            return values[name]
        raise RenderError(f'template: function "{expr}" not defined')

    return _ACTION.sub(sub, template)


def go_number(value: float) -> str:
    """A float as Go's ``%v`` prints it: ``99``, ``99.5``."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


@functools.lru_cache(maxsize=4096)
def _builtin_text(metric: str, namespace: str, target: str, interval: str) -> str:
    text = SUCCESS_RATE_QUERY if metric == "request-success-rate" else DURATION_QUERY
    return render(text, {"namespace": namespace, "target": target, "interval": interval}, {})


def builtin_query(ctx: TickContext, metric: CanaryMetric) -> MetricQuery:
    """The rendered Linkerd query for ``request-success-rate`` or ``request-duration``."""
    c = ctx.canary
    interval = metric.interval or "1m"
    query = _builtin_text(metric.name, c.namespace, c.target, interval)
    return MetricQuery(metric=metric.name, query=query, namespace=c.namespace, target=c.target, interval=interval,
                       interval_seconds=_seconds(interval), builtin=metric.name,
                       address=c.spec.metrics_server or ctx.metrics_server)  # fmt: skip


def _values(ctx: TickContext, interval: str) -> dict[str, str]:
    c = ctx.canary
    return {"name": c.name, "namespace": c.namespace, "target": c.target, "service": c.service_name,
            "ingress": "", "route": "", "interval": interval}  # fmt: skip


def _emit(ctx: TickContext, metric: CanaryMetric, value: float | None, ok: bool, unit: str = "",
          error: str = "") -> None:
    c = ctx.canary
    tr = metric.threshold_range
    lo = tr.min if tr else None
    hi = tr.max if tr else (metric.threshold if metric.threshold is not None else None)
    if tr is None and metric.name == "request-success-rate":
        lo, hi = metric.threshold, None
    ctx.emit(CheckEvaluated(time=ctx.now(), namespace=c.namespace, name=c.name, metric=metric.name, value=value,
                            min=lo, max=hi, ok=ok, unit=unit, error=error))  # fmt: skip


async def _ask(ctx: TickContext, q: MetricQuery) -> float:
    """Ask the provider; remember an outage and say once when it is back."""
    try:
        value = await ctx.metrics.query(q)
    except NoValuesFound:
        await _back_online(ctx)
        raise
    except MetricsError:
        ctx.notes.provider_down = True
        raise
    await _back_online(ctx)
    return value


async def _measure(ctx: TickContext, metric: CanaryMetric, q: MetricQuery, *, no_values: str, failed: str,
                   unit: str = "") -> float | None:
    """The value, or ``None`` after reporting why there is none: ``no_values`` / ``failed`` are Flagger's
    wordings for this kind of check, with ``{err}`` for the provider's reason."""
    try:
        return await _ask(ctx, q)
    except NoValuesFound as err:
        _emit(ctx, metric, None, False, unit, f"no values found: {err}")
        await ctx.warn(no_values.replace("{err}", str(err)))
    except MetricsError as err:
        _emit(ctx, metric, None, False, unit, str(err))
        await ctx.warn(failed.replace("{err}", str(err)))
    return None


async def _verdict(ctx: TickContext, metric: CanaryMetric, value: float, message: str, unit: str = "") -> bool:
    """Report a measured check: passed when there is no Halt ``message``."""
    _emit(ctx, metric, value, not message, unit)
    if message:
        await ctx.warn(message)
    return not message


async def _back_online(ctx: TickContext) -> None:
    if ctx.notes.provider_down:
        ctx.notes.provider_down = False
        ctx.notice("the metrics provider answers again")
        await ctx.info("all the metrics providers are available!")


async def _builtin(ctx: TickContext, metric: CanaryMetric) -> bool:
    c = ctx.canary
    q = builtin_query(ctx, metric)
    rate = metric.name == "request-success-rate"
    unit = "%" if rate else "ms"
    # Flagger's Linkerd observer wraps the provider's error ("running query failed: no values found"); its
    # duration variant of the no-values message carries no reason at all.
    suffix = ": running query failed: {err}" if rate else ""
    value = await _measure(
        ctx, metric, q, unit=unit, failed="Prometheus query failed: running query failed: {err}",
        no_values=f"Halt advancement no values found for linkerd metric {metric.name} probably "
                  f"{c.target_key} is not receiving traffic{suffix}",
    )  # fmt: skip
    if value is None:
        return False
    tr = metric.threshold_range
    if rate:
        message = ""
        if tr is not None:
            if tr.min is not None and value < tr.min:
                message = f"Halt {c.key} advancement success rate {value:.2f}% < {go_number(tr.min)}%"
            elif tr.max is not None and value > tr.max:
                message = f"Halt {c.key} advancement success rate {value:.2f}% > {go_number(tr.max)}%"
        elif (metric.threshold or 0) > value:
            message = f"Halt {c.key} advancement success rate {value:.2f}% < {go_number(metric.threshold or 0)}%"
        return await _verdict(ctx, metric, value, message, unit)
    ms = int(value)  # Flagger truncates the P99 to whole milliseconds
    shown = format_go_duration(ms / 1000)
    message = ""
    if tr is not None:
        if tr.min is not None and ms < int(tr.min):
            message = f"Halt {c.key} advancement request duration {shown} < {format_go_duration(int(tr.min) / 1000)}"
        elif tr.max is not None and ms > int(tr.max):
            message = f"Halt {c.key} advancement request duration {shown} > {format_go_duration(int(tr.max) / 1000)}"
    elif ms > int(metric.threshold or 0):
        message = (f"Halt {c.key} advancement request duration {shown} > "
                   f"{format_go_duration(int(metric.threshold or 0) / 1000)}")
    return await _verdict(ctx, metric, float(ms), message, unit)


def _range_message(ctx: TickContext, metric: CanaryMetric, value: float, *, template: bool) -> str:
    c = ctx.canary
    tr = metric.threshold_range
    if tr is not None:
        if tr.min is not None and value < tr.min:
            return f"Halt {c.key} advancement {metric.name} {value:.2f} < {go_number(tr.min)}"
        if tr.max is not None and value > tr.max:
            return f"Halt {c.key} advancement {metric.name} {value:.2f} > {go_number(tr.max)}"
        return ""
    threshold = metric.threshold or 0.0
    # An inline query with no range fails when above its threshold (0 when unset); a template only when > 0.
    if (not template or threshold > 0) and value > threshold:
        return f"Halt {c.key} advancement {metric.name} {value:.2f} > {go_number(threshold)}"
    return ""


async def _inline(ctx: TickContext, metric: CanaryMetric) -> bool:
    c = ctx.canary
    interval = metric.interval or "1m"
    try:
        query = render(metric.query or "", _values(ctx, interval), metric.template_variables)
    except RenderError as err:
        _emit(ctx, metric, None, False, error=str(err))
        await ctx.warn(f"Prometheus query failed for {metric.name}: {err}")
        return False
    q = MetricQuery(metric=metric.name, query=query, namespace=c.namespace, target=c.target, interval=interval,
                    interval_seconds=parse_duration(interval), address=c.spec.metrics_server or ctx.metrics_server)
    value = await _measure(ctx, metric, q, no_values=f"Halt advancement no values found for metric: {metric.name}",
                           failed=f"Prometheus query failed for {metric.name}: {{err}}")
    if value is None:
        return False
    return await _verdict(ctx, metric, value, _range_message(ctx, metric, value, template=False))


async def _templated(ctx: TickContext, metric: CanaryMetric) -> bool:
    c = ctx.canary
    assert metric.template_ref is not None
    ns = metric.template_ref.namespace or c.namespace
    ref = f"{metric.template_ref.name}.{ns}"
    obj = await ctx.cluster.get(METRIC_TEMPLATE, ns, metric.template_ref.name)
    if obj is None:
        error = f'metrictemplate.flagger.app "{metric.template_ref.name}" not found'
        _emit(ctx, metric, None, False, error=error)
        await ctx.warn(f"Metric template {ref} error: {error}")
        return False
    try:
        template = parse_metric_template(obj)
    except SpecError as err:
        _emit(ctx, metric, None, False, error=str(err))
        await ctx.warn(f"Metric template {ref} error: {err}")
        return False
    provider = template.spec.provider
    bearer: str | None = None
    basic: tuple[str, str] | None = None
    if provider.secret_ref and provider.secret_ref.get("name"):
        secret = await ctx.cluster.get(SECRET, ns, provider.secret_ref["name"])
        if secret is None:
            error = f'secrets "{provider.secret_ref["name"]}" not found'
            _emit(ctx, metric, None, False, error=error)
            await ctx.warn(f"Metric template {ref} secret {provider.secret_ref['name']} error: {error}")
            return False
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
        data.update(secret.get("stringData") or {})
        bearer = data.get("token")
        if "username" in data and "password" in data:
            basic = (data["username"], data["password"])
    interval = metric.interval or ""  # no default for templates (flagger-spec 1.6)
    try:
        query = render(template.spec.query, _values(ctx, interval), metric.template_variables)
    except RenderError as err:
        _emit(ctx, metric, None, False, error=str(err))
        await ctx.warn(f"Metric template {ref} query render error: {err}")
        return False
    try:
        seconds = parse_duration(interval) if interval else 0.0
    except ValueError:
        seconds = 0.0
    q = MetricQuery(metric=metric.name, query=query, namespace=c.namespace, target=c.target, interval=interval,
                    interval_seconds=seconds, address=provider.address, provider=provider.type,
                    headers=dict(provider.headers), bearer_token=bearer, basic_auth=basic,
                    insecure_skip_verify=provider.insecure_skip_verify)  # fmt: skip
    value = await _measure(ctx, metric, q,
                           no_values=f"Halt advancement no values found for custom metric: {metric.name}: {{err}}",
                           failed=f"Metric query failed for {metric.name}: {{err}}")
    if value is None:
        return False
    return await _verdict(ctx, metric, value, _range_message(ctx, metric, value, template=True))


async def run_metric_checks(ctx: TickContext) -> bool:
    """Built-in and inline metrics in list order, then templated ones; the first failure ends the checks."""
    metrics = ctx.canary.analysis.metrics
    for metric in metrics:
        if metric.builtin:
            if not await _builtin(ctx, metric):
                return False
        elif metric.query and metric.template_ref is None and not await _inline(ctx, metric):
            return False
    for metric in metrics:
        if metric.template_ref is not None:
            if not await _templated(ctx, metric):
                return False
        elif not metric.builtin and not metric.query:
            _emit(ctx, metric, None, False, error="no usable metrics template and query were configured")
            await ctx.warn("Metric query failed for no usable metrics template and query were configured")
            return False
    return True


async def providers_online(ctx: TickContext) -> str | None:
    """Flagger's ``vector(1)`` check of every provider the Canary uses; an error text, or ``None`` if all answer."""
    c = ctx.canary
    metrics = c.analysis.metrics
    if any(m.builtin or (m.query and m.template_ref is None) for m in metrics):
        address = c.spec.metrics_server or ctx.metrics_server
        if not await ctx.metrics.is_online(address):
            return f"prometheus not available at {address}"
    for m in metrics:
        if m.template_ref is None:
            continue
        ns = m.template_ref.namespace or c.namespace
        obj = await ctx.cluster.get(METRIC_TEMPLATE, ns, m.template_ref.name)
        if obj is None:
            return f'metric template {m.template_ref.name}.{ns} not found'
        template_address: str | None = ((obj.get("spec") or {}).get("provider") or {}).get("address")
        if not await ctx.metrics.is_online(template_address):
            return (f"{m.template_ref.name} in metric template {m.template_ref.name}.{ns} not available at "
                    f"{template_address}")
    return None
