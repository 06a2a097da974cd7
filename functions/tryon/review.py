"""The review page of a batch: each look's person and garments beside its result,
with its model, status, timings and, for a look that failed, the error. Pure: the
caller passes the job records and a `link` that turns an s3:// URI into a URL the
browser can load (the API: short-lived presigned URLs; the local driver: paths
relative to the page), so the page is made in this one place for both.

Everything in a record came from outside (look ids, attributes, provider messages,
keys): every text is escaped, and a link is used only if it is https, http on
this machine, or a relative path."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tryon.job_record import UNSUCCESSFUL_STATUSES

# A look ended otherwise than made shows its error (a canceled one says who canceled).
STATUS_ORDER = ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})

# Presigned URLs are bearer credentials: no Referer may carry them elsewhere, and the
# page loads nothing but images from the allowed origins (no script at all).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src https: http://127.0.0.1:* http://localhost:* 'self'; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; background: #f6f6f7; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
.summary { font-weight: 600; margin: .2rem 0; }
.batch { color: #555; margin: .2rem 0 1rem; overflow-wrap: anywhere; }
.look { background: #fff; border: 1px solid #ddd; border-left: 6px solid #999;
        border-radius: 6px; padding: .8rem 1rem; margin: 0 0 1rem; }
.look.status-succeeded { border-left-color: #2e8540; }
.look.status-failed, .look.status-timed_out, .look.status-canceled { border-left-color: #c62828; }
.look h2 { font-size: 1.05rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .5em; border-radius: 3px; font-size: .8rem;
         background: #eee; margin-left: .5em; vertical-align: middle; }
.status-succeeded .badge { background: #dff0e3; color: #1b5e20; }
.status-failed .badge, .status-timed_out .badge, .status-canceled .badge {
  background: #fde2e1; color: #8e1c1c; }
.images { display: flex; flex-wrap: wrap; gap: .8rem; align-items: flex-start; }
figure { margin: 0; text-align: center; }
figure img, .placeholder { display: block; height: 220px; max-width: 180px; object-fit: contain;
                           background: #fafafa; border: 1px solid #e3e3e3; }
figure.result img, figure.result .placeholder { height: 280px; max-width: 230px; }
.placeholder { width: 160px; display: flex; align-items: center; justify-content: center;
               color: #888; font-style: italic; }
figcaption { font-size: .8rem; color: #555; max-width: 180px; overflow-wrap: anywhere; }
.arrow { align-self: center; font-size: 1.6rem; color: #999; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .6rem 0 0; }
dt { color: #666; }
dd { margin: 0; overflow-wrap: anywhere; }
.error { margin: .6rem 0 0; padding: .5rem .7rem; background: #fde2e1; color: #8e1c1c;
         border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; }
.error-code { font-weight: 700; }
"""


def render_review(title: str, jobs: list[dict], link: Callable[[str], str | None], *,
                  batch: dict | None = None, more: str | None = None,
                  counts: dict[str, int] | None = None) -> str:
    """The review page (a whole HTML document) of these job records, in the batch's
    order when there is a batch; `more`: how to ask for the next page of a batch too
    large for one, and `counts` its whole batch's (`total`, then by status), which
    the heading sums up instead of the page's."""
    if batch:  # its order: each job's place (jobs of batches before places: their ids')
        position = {job_id: i for i, job_id in enumerate(batch.get("job_ids") or ())}
        jobs = sorted(jobs, key=lambda job: (job.get("batch_order") or "",
                                             position.get(job.get("job_id"), len(position))))
    looks = "\n".join(_look(job, link, index) for index, job in enumerate(jobs))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
<p class="summary">{_e(_summary(jobs, counts))}</p>
{_batch_line(batch, jobs)}
{f'<p class="batch">{_e(more)}</p>' if more else ''}
</header>
<main>
{looks or '<p class="empty">No looks.</p>'}
</main>
</body>
</html>
"""


def safe_link(url: Any) -> str | None:
    """`url` if a page may load it as an image: https, http on this machine (the
    local stack), or a relative path; None for anything else (javascript:, data:,
    file:, other hosts, //host, backslashes or control characters browsers tidy up)."""
    if not isinstance(url, str) or not url or re.search(r"[\x00-\x20\x7f\\]", url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # a malformed port or IPv6 literal
        return None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host in LOCAL_HOSTS:
        return url
    if not parts.scheme and not parts.netloc and not url.startswith("/"):
        return url
    return None


def timings(timeline: Any) -> dict[str, float | None]:
    """Seconds spent before the provider had the look (checks and queue), at the
    provider, and from upload to the end; None where the timeline lacks an end."""
    times = timeline if isinstance(timeline, dict) else {}

    def span(start: str, end: str) -> float | None:
        try:
            seconds = float(times[end]) - float(times[start])
        except (KeyError, TypeError, ValueError):
            return None
        return seconds if seconds >= 0 else None

    return {"queued": span("received", "submitted"),
            "provider": span("provider_start", "provider_end"),
            "total": span("received", "finalized")}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _status(job: dict) -> str:
    return str(job.get("status") or "UNKNOWN")


def _summary(jobs: list[dict], whole: dict[str, int] | None) -> str:
    if whole:
        total = whole["total"]
        counts = Counter({status.upper(): n for status, n in whole.items()
                          if status != "total" and n})
    else:
        total, counts = len(jobs), Counter(_status(job) for job in jobs)
    known = [status for status in STATUS_ORDER if counts[status]]
    others = sorted(status for status in counts if status not in STATUS_ORDER)
    parts = [f"{counts[status]} {status.lower().replace('_', ' ')}" for status in known + others]
    noun = "look" if total == 1 else "looks"
    return f"{total} {noun}" + (": " + ", ".join(parts) if parts else "")


def _batch_line(batch: dict | None, jobs: list[dict]) -> str:
    facts = []
    if batch:
        facts.append(f"batch {batch.get('batch_id', '')}")
        source = batch.get("source") if isinstance(batch.get("source"), dict) else {}
        if source.get("key"):
            facts.append(f"from s3://{source.get('bucket', '')}/{source['key']}")
        facts.extend(_attributes(batch.get("attributes")))
    received = [t for job in jobs if isinstance(job.get("timeline"), dict)
                and (t := _number(job["timeline"].get("received"))) is not None]
    if received:
        start = datetime.fromtimestamp(min(received), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        facts.append(f"received {start}")
    return f'<p class="batch">{_e(" · ".join(facts))}</p>' if facts else ""


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _attributes(attributes: Any) -> list[str]:
    if not isinstance(attributes, dict):
        return []
    return [f"{key}={value}" for key, value in sorted(attributes.items(), key=str)]


def _look(job: dict, link: Callable[[str], str | None], index: int) -> str:
    status = _status(job)
    look_id = job.get("look_id") or job.get("job_id") or f"look {index + 1}"
    # The status also names a CSS class: only its letters go there.
    css = re.sub(r"[^a-z_]", "", status.lower())
    figures = [_figure(role, uri, link) for role, uri in _inputs(job)]
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    missing = "no result" if status in UNSUCCESSFUL_STATUSES else "no result yet"
    figures.append('<span class="arrow" aria-hidden="true">→</span>')
    figures.append(_figure("result", result.get("uri"), link, missing, css_class="result"))
    return f"""<article class="look status-{css}" id="look-{index + 1}" data-status="{_e(status)}">
<h2>{_e(look_id)}<span class="badge">{_e(status)}</span></h2>
<div class="images">
{chr(10).join(figures)}
</div>
<dl>
{_details(job)}
</dl>
{_error(job, status)}
</article>"""


def _inputs(job: dict) -> list[tuple[str, Any]]:
    """(label, uri) of the look's inputs: the person first, then the garments; a
    dress travels in the top slot."""
    inputs = job.get("inputs") if isinstance(job.get("inputs"), dict) else {}
    labels = {"person": "person", "top": "dress" if job.get("top_is_dress") else "top",
              "bottom": "bottom"}
    ordered = [role for role in labels if role in inputs]
    ordered += sorted((role for role in inputs if role not in labels), key=str)
    return [(labels.get(role, str(role)), inputs[role]) for role in ordered]


def _figure(label: str, uri: Any, link: Callable[[str], str | None],
            missing: str = "no image", css_class: str = "") -> str:
    """An image, or a placeholder saying why there is none: `missing` when there is
    no URI, "no preview" when `link` gave nothing the page may load."""
    has_uri = isinstance(uri, str) and bool(uri)
    url = safe_link(link(uri)) if has_uri else None
    name = uri.rsplit("/", 1)[-1] if has_uri else ""
    if url:
        picture = (f'<a href="{_e(url)}" target="_blank" rel="noreferrer noopener">'
                   f'<img src="{_e(url)}" alt="{_e(label)}: {_e(name)}"></a>')
    else:  # a clear gap rather than a broken image
        reason = "no preview" if has_uri else missing
        picture = (f'<div class="placeholder" role="img" aria-label="{_e(label)}: {_e(reason)}">'
                   f'{_e(reason)}</div>')
    caption = _e(label) + (f"<br>{_e(name)}" if name else "")
    classes = f' class="{css_class}"' if css_class else ""
    return f"<figure{classes}>{picture}<figcaption>{caption}</figcaption></figure>"


def _details(job: dict) -> str:
    model, requested = job.get("model"), job.get("requested_model")
    shown = str(model or requested or "-")
    if requested and model and requested != model:
        shown = f"{requested} → {model} (fallback)"
    spans = timings(job.get("timeline"))
    rows = [("model", shown), ("status", _status(job)),
            ("timings", " · ".join(f"{name} {_seconds(spans[name])}"
                                   for name in ("queued", "provider", "total")))]
    if job.get("keep"):
        rows.append(("keeps", f"the person's own {job['keep']}"))
    if _attributes(job.get("attributes")):
        rows.append(("attributes", ", ".join(_attributes(job.get("attributes")))))
    if isinstance(job.get("duplicate_looks"), list) and job["duplicate_looks"]:
        rows.append(("also for", ", ".join(str(look) for look in job["duplicate_looks"])))
    rows.append(("job", job.get("job_id") or "-"))
    return "\n".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in rows)


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def _error(job: dict, status: str) -> str:
    error = job.get("error") if isinstance(job.get("error"), dict) else None
    if not error and status not in UNSUCCESSFUL_STATUSES:
        return ""
    code = (error or {}).get("code") or status
    message = (error or {}).get("message") or "no error was recorded"
    return (f'<div class="error" role="alert"><span class="error-code">{_e(code)}</span>: '
            f'<span class="error-message">{_e(message)}</span></div>')
