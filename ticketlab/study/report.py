"""The study report: what the tickets of a study share, each number beside what chance gives.

:func:`write_report` reads ``study.json`` (the manifest the runner writes) and the ticket files it
names, and writes into the study folder ``report.md`` (figures as PNGs in ``report_figures/``),
``report.html`` (the same content, figures embedded as base64 data URIs, no external resource;
every string is HTML-escaped) and ``results.csv`` (one tidy row per number of the report).

Per (model, dataset) and per density:

1. Overlap: Jaccard of every pair of tickets (bit-packed popcounts, ``pairwise_matrix``) and its
   lift over the per-layer-density null, i.e. random masks with each ticket's per-layer kept
   counts. The expected Jaccard of every pair comes from matrix products of the kept counts
   ``K`` (tickets x layers) and layer sizes ``n``: ``E X_ij = sum_l K_il K_jl / n_l`` and
   ``Var X_ij = sum_l U_il U_jl / (n_l^2 (n_l - 1))`` with ``U = K (n - K)`` (hypergeometric
   moments), then the delta approximation of ``chance.expected_jaccard_delta``, as ``compare``
   does for the whole network; the one-sided ``p`` is its normal approximation of
   ``P(X >= x)`` with a continuity correction. Method pairs are aggregated over seed pairs:
   different methods over same-seed pairs (the same initial weights), a method with itself
   over pairs of different seeds.
2. Within-method vs across-method lift, with a two-sided permutation test of the difference of
   the means (:data:`N_PERMUTATIONS` permutations, seed :data:`PERMUTATION_SEED`).
3. Lift vs density per method pair.
4. Per-layer density profiles and Jensen-Shannon distances of the allocation profiles (the
   distance behind the ``profile_js`` metric), beside the distance to a uniform allocation.
5. Graph metrics (``effective_sparsity`` as effective density, ``dead_units``, ``log10_paths``,
   ``spectral_gap``) and ``sign_kept`` per method, beside a random mask with the same
   per-layer kept counts.
6. Test accuracy of trained tickets beside ``1 / num_classes``.
7. A paragraph generated from the numbers, with the thresholds :data:`LIFT_THRESHOLD` and
   :data:`ALPHA` stated in it.
8. Ticket health (:func:`ticketlab.health`): unhealthy tickets (a collapsed layer, a class without
   an input-to-output path, an accuracy at chance) are marked with :data:`MARK` in every table and
   figure (on the method, or on the ticket's label) and listed with their reasons; the generated
   paragraph's claims use only pairs of healthy tickets (and tickets of unknown health), and say
   how many tickets were left out and why.

Spreads are min-max over seeds or seed pairs throughout.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> a = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)})
    >>> mean, var, expected = expected_jaccard_matrix([a, a])
    >>> float(mean[0, 1]), round(float(var[0, 1]), 4)
    (1.0, 0.3333)
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ticketlab.atomic import atomic_write_text
from ticketlab.errors import ConfigError, TicketlabError
from ticketlab.metrics._plot import plain
from ticketlab.text import csv_cell, visible
from ticketlab.progress import NullProgress
from ticketlab.study.run import read_manifest
from ticketlab.study.safepath import StudyFolder, StudyFolderError
from ticketlab.study.verify import check_job_entry, check_provenance
from ticketlab.ticket import Ticket

#: A method pair "shares more than chance" when its mean Jaccard lift is at least this and every
#: seed pair's one-sided p is below :data:`ALPHA`; "less than chance" below ``1 / LIFT_THRESHOLD``.
LIFT_THRESHOLD = 1.1
#: Significance level of the generated paragraph (hypergeometric and permutation p-values).
ALPHA = 0.01
#: Permutations of the within- vs across-method test, and the seed of their generator.
N_PERMUTATIONS = 10_000
PERMUTATION_SEED = 0
#: Seed of the random baseline masks of the graph-metric tables.
BASELINE_SEED = 0
#: Folder (in the study folder) of the report's PNGs.
FIGURE_DIR = "report_figures"
#: The list of the PNGs that ticketlab wrote in :data:`FIGURE_DIR` (the only ones it ever deletes).
WRITTEN = f"{FIGURE_DIR}/written.json"
#: Names of the report's figures (``NN-slug.png``); a listed name of another shape is ignored.
_FIGURE_NAME = re.compile(r"[0-9]{2,4}-[A-Za-z0-9-]{1,40}\.png")
#: Largest list of written figures read (bytes); a longer one is refused.
_WRITTEN_BYTES = 1 << 20
#: Columns of ``results.csv``.
COLUMNS = (
    "section", "model", "dataset", "density", "method_a", "method_b", "seed_a", "seed_b", "label_a", "label_b",
    "layer", "metric", "value", "expected", "lift", "z", "p", "spread", "spread_lo", "spread_hi", "n", "note",
)
#: Graph metrics of section 5 (registered names) and the label of their table column.
GRAPH_METRICS = {
    "effective_sparsity": "effective density", "dead_units": "dead units",
    "log10_paths": "log10 paths", "spectral_gap": "spectral gap",
}
SPREAD = "min-max"
#: Appended to the name of a method with an unhealthy ticket (and to such a ticket's label).
MARK = " †"
_DONE = ("done", "skipped")


# ------------------------------------------------------------------------------ manifest
@dataclass
class _Entry:
    """One loaded ticket of the study."""

    label: str
    job_id: str
    method: str
    seed: int
    density: float
    ticket: Ticket
    health: Any = None  # ticketlab.metrics.health.Health

    @property
    def unhealthy(self) -> bool:
        return self.health is not None and self.health.healthy is False


def _mark(name: str, sick: bool) -> str:
    return f"{name}{MARK}" if sick else name


def _sick(entries: Iterable[_Entry]) -> set[str]:
    """Methods with at least one unhealthy ticket among ``entries``."""
    return {e.method for e in entries if e.unhealthy}


@dataclass
class _Study:
    name: str
    version: str
    jobs: list[dict[str, Any]]
    groups: dict[tuple[str, str], dict[float, list[_Entry]]]
    methods: list[str]  # in the order the manifest first names them
    problems: list[tuple[str, str]]  # (job id, one-line reason) of every job that gave no ticket


def _text(x: Any) -> str:
    return "" if x is None else str(x)


def _load_study(study_dir: Path, progress: Any) -> _Study:
    """Every finished job's ticket, verified against its job (:func:`ticketlab.study.verify.check_provenance`);
    every fact (method, model, data set, seed, density) is the ticket's. A ticket that disagrees with its
    job, or a path that is a link, stops the report (:class:`StudyFolderError`, one line naming the file);
    a missing or unreadable ticket is listed among the failures."""
    from ticketlab.fileformat import load
    from ticketlab.metrics.health import health

    folder = StudyFolder(study_dir)
    data = read_manifest(study_dir)
    jobs = [j for j in data["jobs"] if isinstance(j, dict)]
    groups: dict[tuple[str, str], dict[float, list[_Entry]]] = {}
    methods: list[str] = []
    problems: list[tuple[str, str]] = []
    with progress.task("report: load tickets", total=len(jobs)) as task:
        for job in jobs:
            task.advance()
            jid = _text(job.get("id"))
            if job.get("status") not in _DONE:
                continue
            check_job_entry(job)
            path = folder.file(f"tickets/{jid}.h5", missing_ok=True)
            if path is None:
                problems.append((jid, f"output file 'tickets/{jid}.h5' does not exist"))
                continue
            try:
                t = load(path, scores=False, history=False)
            except TicketlabError as exc:
                problems.append((jid, str(exc)))
                continue
            layers = {n: (int(np.count_nonzero(m)), int(m.size)) for n, m in t.masks.items()}
            facts = check_provenance(t.provenance, layers, job, path)
            method, model, dataset = (str(facts[k]) for k in ("method", "model", "dataset"))
            seed, density = int(facts["seed"]), float(facts["density"])
            if method not in methods:
                methods.append(method)
            groups.setdefault((model, dataset), {}).setdefault(density, []).append(
                _Entry(f"{method}/s{seed}", jid, method, seed, density, t, health(t)))
    for by_density in groups.values():
        for d, entries in by_density.items():
            entries.sort(key=lambda e: (methods.index(e.method), e.seed, e.job_id))
            ok = [entries[0]]
            for e in entries[1:]:  # every ticket of a group must have the first one's architecture
                ref = ok[0].ticket.masks
                if list(ref) != list(e.ticket.masks) or any(ref[n].shape != m.shape for n, m in e.ticket.masks.items()):
                    problems.append((e.job_id, f"its masks differ from those of {ok[0].job_id} (same model expected)"))
                else:
                    ok.append(e)
            seen: dict[str, int] = {}
            for e in ok:
                seen[e.label] = seen.get(e.label, 0) + 1
            for e in ok:
                if seen[e.label] > 1:
                    e.label = f"{e.label}#{e.job_id[-6:]}"
            by_density[d] = ok
    return _Study(_text(data.get("name")), _text(data.get("ticketlab_version")), jobs, groups, methods, problems)


# ------------------------------------------------------------------------------ numbers
def _kept_sizes(tickets: Sequence[Ticket]) -> tuple[np.ndarray, np.ndarray]:
    """Kept counts ``K`` (tickets x layers) and layer sizes ``n`` as float64."""
    k = np.array([[np.count_nonzero(m) for m in t.masks.values()] for t in tickets], dtype=np.float64)
    n = np.array([m.size for m in tickets[0].masks.values()], dtype=np.float64)
    return k.reshape(len(tickets), len(n)), n


def expected_jaccard_matrix(tickets: Sequence[Ticket]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(E X, Var X, E J)`` for every pair of ``tickets`` under the per-layer-density null.

    ``X`` is the whole-network intersection when each layer's masks are random with the tickets'
    kept counts (a sum of independent hypergeometric laws); ``E J`` is the delta approximation of
    ``ticketlab.metrics.chance.expected_jaccard_delta``, the same as ``compare``'s expected Jaccard.

    Example:
        >>> import numpy as np
        >>> t = Ticket(masks={"w": np.array([1, 0, 0, 0], bool)})
        >>> [round(float(x[0, 1]), 4) for x in expected_jaccard_matrix([t, t])]  # exact E J: 0.25
        [0.25, 0.1875, 0.2128]
    """
    from ticketlab.metrics.chance import expected_jaccard_delta

    k, n = _kept_sizes(tickets)
    mean = (k / n) @ k.T
    u = k * (n - k)
    denom = n * n * (n - 1.0)
    var = (u / np.where(denom > 0, denom, np.inf)) @ u.T
    tot = k.sum(axis=1)
    s = tot[:, None] + tot[None, :]
    expected = np.vectorize(expected_jaccard_delta, otypes=[np.float64])(mean, var, s)
    return mean, var, expected


@dataclass
class _Overlap:
    """Pairwise overlap of one (group, density): Jaccard, chance, lift, one-sided p."""

    entries: list[_Entry]
    jaccard: np.ndarray
    expected: np.ndarray
    lift: np.ndarray
    z: np.ndarray
    p: np.ndarray
    order: list[int]
    order_note: str | None = None
    pairs: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)


def _overlap(entries: list[_Entry]) -> _Overlap:
    from scipy.special import ndtr

    from ticketlab.metrics.many import pairwise_matrix

    tickets = [e.ticket for e in entries]
    mat = pairwise_matrix(tickets, "jaccard", labels=[e.label for e in entries])  # bit-packed popcounts
    jac = mat.values
    mean, var, expected = expected_jaccard_matrix(tickets)
    tot = _kept_sizes(tickets)[0].sum(axis=1)
    s = tot[:, None] + tot[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = jac / expected
        x = np.rint(np.nan_to_num(jac * s / (1.0 + jac)))  # the intersection, from J = X / (s - X)
        sd = np.sqrt(var)
        z = (x - mean) / sd
        # as compare's whole-network p: normal approximation with continuity correction
        p = np.where(var > 0, ndtr(-(x - 0.5 - mean) / np.where(var > 0, sd, 1.0)), (x >= mean).astype(float))
    try:
        order, note = mat.order(), None
    except ConfigError as exc:
        order, note = list(range(len(entries))), f"not clustered: {exc}"
    pairs: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            b = entries[j]
            if a.method == b.method and a.seed != b.seed:
                pairs.setdefault((a.method, a.method), []).append((i, j))
            elif a.method != b.method and a.seed == b.seed:
                pairs.setdefault((a.method, b.method), []).append((i, j))
    return _Overlap(entries, jac, expected, lift, z, p, order, note, pairs)


def permutation_test(x: Sequence[float], y: Sequence[float], n_permutations: int = N_PERMUTATIONS,
                     seed: int = PERMUTATION_SEED) -> float:
    """Two-sided permutation p of ``mean(x) - mean(y)``: ``(1 + #{|d*| >= |d|}) / (1 + N)``.

    Example:
        >>> permutation_test([5.0, 5.1, 4.9, 5.2], [1.0, 1.1, 0.9, 1.0], 2000) < 0.05
        True
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    pooled = np.concatenate([x, y])
    nx, m = len(x), len(pooled)
    if nx == 0 or nx == m:
        return math.nan
    obs = abs(x.mean() - y.mean())
    tol = 1e-12 * max(1.0, obs)
    rng = np.random.default_rng(seed)
    total, hits, done = pooled.sum(), 0, 0
    chunk = max(1, min(n_permutations, 2_000_000 // m))
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        idx = rng.permuted(np.broadcast_to(np.arange(m), (b, m)), axis=1)[:, :nx]
        sx = pooled[idx].sum(axis=1)
        d = np.abs(sx / nx - (total - sx) / (m - nx))
        hits += int(np.count_nonzero(d >= obs - tol))
        done += b
    return (1 + hits) / (1 + n_permutations)


def js_matrix(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distances (base 2) between every row of ``p`` and every row of ``q``.

    Example:
        >>> js_matrix(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])).tolist()
        [[1.0, 0.0]]
    """
    a, b = p[:, None, :], q[None, :, :]
    mid = 0.5 * (a + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ka = np.where(a > 0, a * np.log2(a / mid), 0.0).sum(axis=-1)
        kb = np.where(b > 0, b * np.log2(b / mid), 0.0).sum(axis=-1)
    return np.sqrt(np.clip(0.5 * ka + 0.5 * kb, 0.0, None))


def _total(result: Any) -> float | None:
    v = result.get("__total__") if isinstance(result, dict) else result
    if isinstance(v, dict):
        v = v.get("value")
    return None if v is None else float(v)


def _graph_values(t: Ticket) -> dict[str, float | None]:
    """The section-5 numbers of one ticket (None where a metric does not apply)."""
    from ticketlab.metrics import Cache, get_metric

    cache = Cache()
    out: dict[str, float | None] = {}
    for name in GRAPH_METRICS:
        try:
            v = _total(get_metric(name)(t, cache=cache))
        except TicketlabError:
            v = None
        if name == "effective_sparsity" and v is not None:
            v = 1.0 - v
        elif name == "log10_paths" and v is None and analyze_ok(t, cache):
            v = -math.inf  # the metric's None: no input-to-output path (collapsed)
        out[name] = v
    if t.weights.get("init") and t.weights.get("final"):
        out["sign_kept"] = _total(get_metric("sign_kept")(t))
    else:
        out["sign_kept"] = None
    return out


def analyze_ok(t: Ticket, cache: Any) -> bool:
    """Whether the ticket's graph could be analysed (so a missing path count means no path)."""
    from ticketlab.metrics.graph import analyze

    try:
        analyze(t, cache)
    except TicketlabError:
        return False
    return True


def _random_like(t: Ticket, rng: np.random.Generator) -> Ticket:
    """A random mask with ``t``'s per-layer kept counts (and its topology)."""
    masks = {}
    for name, m in t.masks.items():
        flat = np.zeros(m.size, bool)
        flat[rng.choice(m.size, int(np.count_nonzero(m)), replace=False)] = True
        masks[name] = flat.reshape(m.shape)
    topo = t.provenance.get("topology")
    return Ticket(masks=masks, provenance={"topology": topo} if topo else {})


def _stats(values: Iterable[float | None]) -> tuple[float, float, float, int]:
    """Mean, min, max and count of the finite values (NaN when there are none)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if not v.size:
        return math.nan, math.nan, math.nan, 0
    return float(v.mean()), float(v.min()), float(v.max()), int(v.size)


# ------------------------------------------------------------------------------ document
def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def _pnum(p: Any) -> str:
    """A p-value for the text: two digits; an underflow to 0 as "under 1e-300"."""
    if isinstance(p, (float, np.floating)) and p == 0.0:
        return "under 1e-300"
    return _num(p, 2)


def _spread(mean: float, lo: float, hi: float, n: int | None = None) -> str:
    if not math.isfinite(mean):
        return "n/a"
    out = f"{_num(mean)} [{_num(lo)}–{_num(hi)}]"
    return out if n is None else f"{out} (n={n})"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")[:40] or "x"


def _clean(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) if math.isfinite(v) else ""
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    return "" if v is None else v


class _Doc:
    """Blocks of the report (rendered to Markdown and HTML), its figures and its CSV rows."""

    def __init__(self, folder: StudyFolder) -> None:
        self.blocks: list[tuple[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.figures: dict[str, Path] = {}
        self.folder = folder

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if rows:
            self.blocks.append(("table", (list(header), [list(r) for r in rows])))

    def figure(self, fig: Any, stem: str, caption: str) -> None:
        from ticketlab.metrics._plot import save_figure

        name = f"{len(self.figures) + 1:02d}-{_slug(stem)}.png"
        self.folder.folder(FIGURE_DIR, create=True)
        path = save_figure(fig, self.folder.writable(f"{FIGURE_DIR}/{name}"), dpi=100)
        self.figures[name] = path
        self.blocks.append(("fig", (f"{FIGURE_DIR}/{name}", path, caption)))

    def row(self, **kw: Any) -> None:
        self.rows.append(kw)

    # rendering
    def markdown(self) -> str:
        def esc(s: str) -> str:
            s = html.escape(visible(str(s).replace("\n", " ")), quote=False)
            return re.sub(r"([\\`*_\[\]|])", r"\\\1", s)

        out = []
        for kind, body in self.blocks:
            if kind == "h":
                out.append("#" * body[0] + " " + esc(body[1]))
            elif kind == "p":
                out.append(esc(body))
            elif kind == "table":
                header, rows = body
                lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
                out.append("\n".join(lines))
            else:
                rel, _, caption = body
                out.append(f"![{esc(caption)}]({rel})\n\n{esc(caption)}")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        def e(s: Any) -> str:  # control characters (ESC, ...) shown as \xNN, then HTML-escaped
            return html.escape(visible(s))
        parts = [
            "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            # no script, no external resource: only inline style and data: images
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            'img-src data:; style-src \'unsafe-inline\'">',
            f"<title>{e(title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
            "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;"
            "padding:2px 6px;text-align:left}th{background:#eee}img{max-width:100%}"
            "figcaption{font-size:90%;color:#444}</style>",
            "</head>", "<body>",
        ]
        for kind, body in self.blocks:
            if kind == "h":
                parts.append(f"<h{body[0]}>{e(body[1])}</h{body[0]}>")
            elif kind == "p":
                parts.append(f"<p>{e(body)}</p>")
            elif kind == "table":
                header, rows = body
                cells = "".join(f"<th>{e(h)}</th>" for h in header)
                parts.append(f"<table><thead><tr>{cells}</tr></thead><tbody>")
                parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
                parts.append("</tbody></table>")
            else:
                _, path, caption = body
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(caption)}">'
                             f"<figcaption>{e(caption)}</figcaption></figure>")
        parts += ["</body>", "</html>"]
        return "\n".join(parts) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: csv_cell(_clean(r.get(k))) for k in COLUMNS})
        return buf.getvalue()


# ------------------------------------------------------------------------------ plots
def _new(w: float, h: float) -> Any:
    from ticketlab.metrics._plot import new_figure

    return new_figure(w, h)


def _plot_heatmaps(ov: _Overlap, title: str) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(ov.entries)
    order = ov.order
    labels = [plain(_mark(ov.entries[i].label, ov.entries[i].unhealthy)) for i in order] if k <= 40 else None  # more would not be legible
    # fixed margins (inches) from the longest label: much faster than a layout engine's text passes
    margin = 0.4 + (0.06 * max(len(s) for s in labels) if labels else 0.0)
    size = min(8.0, 2.5 + 0.3 * k)
    width, height = 2 * (size + 1.2) + margin, size + margin + 0.4
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=margin / width, right=0.98, bottom=margin / height, top=1 - 0.4 / height, wspace=0.12)
    for col, (vals, name) in enumerate(((ov.jaccard, "Jaccard"), (ov.lift, "lift over chance"))):
        ax = fig.add_subplot(1, 2, col + 1)
        shown = vals[np.ix_(order, order)].copy()
        if name != "Jaccard":
            np.fill_diagonal(shown, np.nan)
        im = ax.imshow(shown, cmap="viridis", interpolation="nearest")
        if labels:
            ax.set_xticks(range(k), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(k), labels, fontsize=6)
        else:
            ax.set_xlabel("tickets in clustering order (labels in results.csv)", fontsize=7)
        ax.set_title(plain(f"{name}: {title}"), fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def _plot_within_across(methods: list[str], data: dict[str, tuple[list[float], list[float]]], title: str,
                        shown: list[str] | None = None) -> Any:
    fig = _new(max(5.0, 1.3 * len(methods) + 2), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(0)  # jitter of the points only
    labelled: set[str] = set()
    for i, m in enumerate(methods):
        for shift, vals, color, lab in ((-0.18, data[m][0], "C0", "within method (other seeds)"),
                                        (0.18, data[m][1], "C1", "across methods (same seed)")):
            if not vals:
                continue
            ax.boxplot([vals], positions=[i + shift], widths=0.3, showfliers=False)
            ax.scatter(i + shift + rng.uniform(-0.08, 0.08, len(vals)), vals, s=10, color=color,
                       label=None if lab in labelled else lab)
            labelled.add(lab)
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="chance (lift 1)")
    ax.set_xticks(range(len(methods)), [plain(m) for m in shown or methods], rotation=30, fontsize=8)
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylabel("Jaccard lift over chance")
    ax.set_title(plain(title), fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _plot_lines(series: dict[str, list[tuple[float, float, float, float]]], ylabel: str, title: str,
                chance: float | None, chance_label: str) -> Any:
    fig = _new(6.5, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for name, pts in series.items():
        pts = sorted(p for p in pts if math.isfinite(p[1]))
        if not pts:
            continue
        x, y, lo, hi = (np.array(v) for v in zip(*pts))
        err = [np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)]  # clip: the mean of equal values may round past them
        ax.errorbar(x, y, yerr=err, marker="o", ms=3, capsize=2, label=plain(name))
    if chance is not None and math.isfinite(chance):
        ax.axhline(chance, color="grey", ls="--", lw=1, label=plain(chance_label))
    ax.set_xscale("log")
    ax.set_xlabel("density")
    ax.set_ylabel(plain(ylabel))
    ax.set_title(plain(title), fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return fig


def _plot_profiles(names: list[str], profiles: dict[str, np.ndarray], overall: float, title: str) -> Any:
    fig = _new(max(6.0, 0.3 * len(names) * max(1, len(profiles)) / 2 + 2.5), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(profiles))
    x = np.arange(len(names))
    for i, (m, dens) in enumerate(profiles.items()):  # dens: seeds x layers
        mean, lo, hi = dens.mean(axis=0), dens.min(axis=0), dens.max(axis=0)
        err = [np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)]
        ax.bar(x + (i - (len(profiles) - 1) / 2) * width, mean, width, yerr=err,
               capsize=1, label=plain(m))
    ax.axhline(overall, color="grey", ls="--", lw=1, label="uniform (random) density")
    ax.set_xticks(x, [plain(n) for n in names], rotation=90, fontsize=6)
    ax.set_ylabel("layer density")
    if (np.concatenate([d.ravel() for d in profiles.values()]) > 0).all():
        ax.set_yscale("log")
    ax.set_title(plain(title), fontsize=9)
    ax.legend(fontsize=7)
    return fig


# ------------------------------------------------------------------------------ sections
def _pair_name(a: str, b: str) -> str:
    return f"{a}–{b}" if a != b else f"{a}–{a} (seeds)"


def _verdict(mean_lift: float, p_max: float, p_min: float) -> str:
    if not math.isfinite(mean_lift):
        return "n/a"
    if mean_lift >= LIFT_THRESHOLD and p_max < ALPHA:
        return "more"
    if mean_lift <= 1.0 / LIFT_THRESHOLD and p_min > 1.0 - ALPHA:
        return "less"
    return "chance"


@dataclass
class _GroupResult:
    pair_stats: dict[float, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    within: dict[float, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # the paragraph's claims: the same numbers over pairs of tickets that are not unhealthy
    claims: dict[float, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    within_claims: dict[float, dict[str, dict[str, Any]]] = field(default_factory=dict)
    left_out: dict[float, list[_Entry]] = field(default_factory=dict)  # unhealthy tickets per density


def _pair_stats(ov: _Overlap, pairs: dict[tuple[str, str], list[tuple[int, int]]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Mean lift [spread], largest / smallest p, mean Jaccard and chance, and the verdict per method pair."""
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    for (ma, mb), idx in pairs.items():
        if not idx:
            continue
        mean, lo, hi, n = _stats(ov.lift[i, j] for i, j in idx)
        ps = [ov.p[i, j] for i, j in idx]
        st = {"lift": mean, "lo": lo, "hi": hi, "n": n, "p_max": max(ps), "p_min": min(ps),
              "jaccard": _stats(ov.jaccard[i, j] for i, j in idx)[0],
              "expected": _stats(ov.expected[i, j] for i, j in idx)[0]}
        st["verdict"] = _verdict(mean, st["p_max"], st["p_min"])
        stats[(ma, mb)] = st
    return stats


def _healthy_pairs(ov: _Overlap) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """``ov.pairs`` without the pairs that hold an unhealthy ticket."""
    ok = [not e.unhealthy for e in ov.entries]
    return {k: [(i, j) for i, j in idx if ok[i] and ok[j]] for k, idx in ov.pairs.items()}


def _section_overlap(doc: _Doc, key: dict[str, Any], methods: list[str], d: float, entries: list[_Entry],
                     where: str, res: _GroupResult) -> _Overlap | None:
    doc.heading(4, f"Overlap matrix at density {_num(d)}")
    if len(entries) < 2:
        doc.para("Only one ticket at this density: no pair to compare.")
        return None
    ov = _overlap(entries)
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            b = entries[j]
            doc.row(section="overlap_pair", **key, density=d, method_a=a.method, method_b=b.method,
                    seed_a=a.seed, seed_b=b.seed, label_a=a.label, label_b=b.label, metric="jaccard",
                    value=ov.jaccard[i, j], expected=ov.expected[i, j], lift=ov.lift[i, j], z=ov.z[i, j],
                    p=ov.p[i, j], note="per-layer-density null; p one-sided, normal approximation")
    doc.figure(_plot_heatmaps(ov, f"{where}, density {_num(d)}"), f"{where}-d{d}-overlap",
               f"Jaccard (left) and its lift over chance (right) of every pair of tickets, {where}, "
               f"density {_num(d)}; rows and columns in hierarchical-clustering order (average linkage "
               f"of 1 - Jaccard)" + (f"; {ov.order_note}" if ov.order_note else "")
               + (f"; {MARK.strip()}: an unhealthy ticket" if any(e.unhealthy for e in entries) else ""))
    present = [m for m in methods if any(e.method == m for e in entries)]
    sick = _sick(entries)
    stats = _pair_stats(ov, ov.pairs)
    for (ma, mb), st in stats.items():
        mean, lo, hi, n = st["lift"], st["lo"], st["hi"], st["n"]
        doc.row(section="overlap_method_pair", **key, density=d, method_a=ma, method_b=mb, metric="jaccard",
                value=st["jaccard"], expected=st["expected"], lift=mean, p=st["p_max"], spread=SPREAD,
                spread_lo=lo, spread_hi=hi, n=n,
                note="pairs of different seeds" if ma == mb else "same-seed pairs; p = largest one-sided p")
    res.pair_stats[d] = stats
    res.claims[d] = _pair_stats(ov, _healthy_pairs(ov)) if sick else stats
    res.left_out[d] = [e for e in entries if e.unhealthy]

    def cell(a: str, b: str) -> str:
        st = stats.get((a, b)) or stats.get((b, a))
        return "n/a" if st is None else _spread(st["lift"], st["lo"], st["hi"])

    doc.para(f"Mean Jaccard lift over chance by method pair [{SPREAD} over seed pairs]. Off the diagonal: "
             "pairs of tickets of the two methods at the same seed (same initial weights); on the diagonal: "
             "a method's tickets at different seeds. Lift 1 is what random masks with the same per-layer "
             "kept counts give.")
    shown = {m: _mark(m, m in sick) for m in present}
    doc.table(["method", *shown.values()], [[shown[a], *(cell(a, b) for b in present)] for a in present])
    rows = []
    for (ma, mb), st in stats.items():
        rows.append([_pair_name(shown[ma], shown[mb]), str(st["n"]), _num(st["jaccard"]), _num(st["expected"]),
                     _spread(st["lift"], st["lo"], st["hi"]), _pnum(st["p_max"])])
    doc.table(["method pair", "seed pairs", "mean Jaccard", "mean expected Jaccard (chance)",
               f"lift [{SPREAD}]", "largest one-sided p"], rows)
    _mark_note(doc, entries)
    return ov


def _mark_note(doc: _Doc, entries: list[_Entry]) -> None:
    """Under a table or figure of ``entries``: which methods the mark flags, and how many tickets."""
    sick = [e for e in entries if e.unhealthy]
    if sick:
        per = {m: sum(1 for e in sick if e.method == m) for m in dict.fromkeys(e.method for e in sick)}
        of = {m: sum(1 for e in entries if e.method == m) for m in per}
        doc.para(f"{MARK.strip()} unhealthy tickets (see Ticket health): " + "; ".join(
            f"{m}: {k} of {of[m]}" for m, k in per.items()) + ". Their numbers are shown but left out of the "
            "claims of \"What this says\".")


def _within_across(ov: _Overlap, pairs: dict[tuple[str, str], list[tuple[int, int]]], present: list[str]
                   ) -> tuple[dict[str, tuple[list[float], list[float]]], dict[str, dict[str, Any]]]:
    """Per method: the finite lifts within (other seeds) and across (same seed), and their test."""
    data: dict[str, tuple[list[float], list[float]]] = {}
    out: dict[str, dict[str, Any]] = {}
    for m in present:
        within = [float(ov.lift[i, j]) for i, j in pairs.get((m, m), [])]
        across = [float(ov.lift[i, j]) for (a, b), idx in pairs.items() if a != b and m in (a, b) for i, j in idx]
        within = [v for v in within if math.isfinite(v)]
        across = [v for v in across if math.isfinite(v)]
        data[m] = (within, across)
        w, a = _stats(within), _stats(across)
        p = permutation_test(within, across) if within and across else math.nan
        diff = w[0] - a[0] if within and across else math.nan
        out[m] = {"within": w[0], "across": a[0], "diff": diff, "p": p, "n_within": w[3], "n_across": a[3],
                  "w": w, "a": a}
    return data, out


def _section_within(doc: _Doc, key: dict[str, Any], methods: list[str], d: float, ov: _Overlap,
                    where: str, res: _GroupResult) -> None:
    present = [m for m in methods if any(e.method == m for e in ov.entries)]
    sick = _sick(ov.entries)
    shown = {m: _mark(m, m in sick) for m in present}
    data, out = _within_across(ov, ov.pairs, present)
    rows = []
    for m in present:
        w, a, diff, p = out[m]["w"], out[m]["a"], out[m]["diff"], out[m]["p"]
        for metric, s in (("jaccard_lift_within", w), ("jaccard_lift_across", a)):
            doc.row(section="within_vs_across", **key, density=d, method_a=m, metric=metric, value=s[0],
                    expected=1.0, spread=SPREAD, spread_lo=s[1], spread_hi=s[2], n=s[3])
        doc.row(section="within_vs_across", **key, density=d, method_a=m, metric="within_minus_across",
                value=diff, expected=0.0, p=p,
                note=f"two-sided permutation test of the difference of means, {N_PERMUTATIONS} permutations, "
                     f"seed {PERMUTATION_SEED}")
        rows.append([shown[m], _spread(*w), _spread(*a), _num(diff), _pnum(p)])
    res.within[d] = out
    res.within_claims[d] = _within_across(ov, _healthy_pairs(ov), present)[1] if sick else out
    doc.heading(4, f"Within-method vs across-method at density {_num(d)}")
    doc.para(f"Jaccard lift of a method's tickets at different seeds (within) and of its tickets with other "
             f"methods' tickets at the same seed (across), mean [{SPREAD}] (n pairs); chance is lift 1 for "
             f"both. p: two-sided permutation test of the difference of the means ({N_PERMUTATIONS} "
             f"permutations, seed {PERMUTATION_SEED}); n/a when a method lacks one of the two kinds of pair.")
    doc.table(["method", "within", "across", "within - across", "permutation p"], rows)
    if any(w or a for w, a in data.values()):
        doc.figure(_plot_within_across(present, data, f"{where}, density {_num(d)}", [shown[m] for m in present]),
                   f"{where}-d{d}-within",
                   f"Jaccard lift within each method (other seeds) and across methods (same seed), {where}, "
                   f"density {_num(d)}; dashed: chance" + (f"; {MARK.strip()}: a method with unhealthy tickets"
                                                           if sick else ""))
    _mark_note(doc, ov.entries)


def _section_vs_density(doc: _Doc, res: _GroupResult, methods: list[str], where: str, sick: set[str]) -> None:
    doc.heading(3, "Overlap vs density")
    series: dict[str, list[tuple[float, float, float, float]]] = {}
    for d, stats in res.pair_stats.items():
        for (a, b), st in stats.items():
            name = _pair_name(_mark(a, a in sick), _mark(b, b in sick))
            series.setdefault(name, []).append((d, st["lift"], st["lo"], st["hi"]))
    if not series:
        doc.para("No method pair to plot.")
        return
    doc.figure(_plot_lines(series, "mean Jaccard lift over chance", where, 1.0, "chance (lift 1)"),
               f"{where}-lift-vs-density",
               f"Mean Jaccard lift over chance per method pair vs density, {where}; bars: {SPREAD} over "
               "seed pairs; the numbers are the overlap_method_pair rows of results.csv"
               + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick else ""))


def _section_profiles(doc: _Doc, key: dict[str, Any], methods: list[str], d: float, entries: list[_Entry],
                      where: str) -> None:
    doc.heading(4, f"Per-layer density profiles at density {_num(d)}")
    k, n = _kept_sizes([e.ticket for e in entries])
    names = list(entries[0].ticket.masks)
    present = [m for m in methods if any(e.method == m for e in entries)]
    sick = _sick(entries)
    shown = {m: _mark(m, m in sick) for m in present}
    idx = {m: [i for i, e in enumerate(entries) if e.method == m] for m in present}
    dens = k / n
    overall = float(k.sum() / (len(entries) * n.sum()))
    for m in present:
        for li, layer in enumerate(names):
            mean, lo, hi, cnt = _stats(dens[idx[m], li])
            doc.row(section="profile", **key, density=d, method_a=m, layer=layer, metric="layer_density",
                    value=mean, expected=float(k[idx[m]].sum(axis=1).mean() / n.sum()), spread=SPREAD,
                    spread_lo=lo, spread_hi=hi, n=cnt, note="expected: the ticket's overall density (uniform)")
    doc.figure(_plot_profiles(names, {shown[m]: dens[idx[m]] for m in present}, overall, f"{where}, density {_num(d)}"),
               f"{where}-d{d}-profile",
               f"Density of each layer per method (mean over seeds, bars {SPREAD}), {where}, density {_num(d)}; "
               "dashed: the density a uniform random mask gives every layer"
               + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick else ""))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = k / k.sum(axis=1, keepdims=True)
    ok = np.isfinite(shares).all(axis=1)
    js = js_matrix(shares, shares)
    js_uniform = js_matrix(shares, (n / n.sum())[None, :])[:, 0]
    rows = []

    def js_stats(a: str, b: str) -> tuple[float, float, float, int]:
        vals = [js[i, j] for i in idx[a] for j in idx[b] if ok[i] and ok[j] and (
            entries[i].seed != entries[j].seed if a == b else entries[i].seed == entries[j].seed)]
        return _stats(vals)

    for a in present:
        cells = []
        for b in present:
            s = js_stats(a, b)
            cells.append(_spread(*s[:3]))
            if methods.index(a) <= methods.index(b):
                doc.row(section="profile_js", **key, density=d, method_a=a, method_b=b, metric="profile_js",
                        value=s[0], spread=SPREAD, spread_lo=s[1], spread_hi=s[2], n=s[3],
                        note="pairs of different seeds" if a == b else "same-seed pairs")
        u = _stats(js_uniform[i] for i in idx[a] if ok[i])
        doc.row(section="profile_js", **key, density=d, method_a=a, method_b="uniform", metric="profile_js",
                value=u[0], spread=SPREAD, spread_lo=u[1], spread_hi=u[2], n=u[3],
                note="distance to the allocation of a uniform random mask (share of each layer = its size share)")
        rows.append([shown[a], *cells, _spread(*u[:3])])
    doc.para(f"Jensen-Shannon distance (base 2, 0 = same allocation, 1 = disjoint) between the allocation "
             f"profiles (share of the kept weights in each layer), mean [{SPREAD}]: off the diagonal over "
             "same-seed pairs, on the diagonal over pairs of different seeds. Last column: distance to a "
             "uniform random mask's allocation (what chance gives).")
    doc.table(["method", *shown.values(), "vs uniform random"], rows)
    _mark_note(doc, entries)


def _section_graph(doc: _Doc, key: dict[str, Any], methods: list[str], d: float, entries: list[_Entry],
                   values: dict[str, dict[str, float | None]], baselines: dict[str, dict[str, float | None]]) -> None:
    doc.heading(4, f"Graph properties and signs at density {_num(d)}")
    present = [m for m in methods if any(e.method == m for e in entries)]
    sick = _sick(entries)
    rows = []
    for m in present:
        mine = [values[e.job_id] for e in entries if e.method == m]
        cells = [_mark(m, m in sick)]
        for name in (*GRAPH_METRICS, "sign_kept"):
            metric = "effective_density" if name == "effective_sparsity" else name
            vals = [v[name] for v in mine]
            s = _stats(vals)
            no_path = sum(1 for v in vals if v == -math.inf)
            chance = baselines[m][name] if name != "sign_kept" else 0.5
            if s[3] == 0 and not no_path:
                what = "not computed (no init and final weights stored)" if name == "sign_kept" else "not computed"
                cells.append(what)
                doc.row(section="graph", **key, density=d, method_a=m, metric=metric, n=0, note=what)
                continue
            chance_text = "no path" if chance == -math.inf else _num(chance)
            text = _spread(*s) if s[3] else f"no input-output path (all {len(vals)} tickets)"
            if no_path and s[3]:
                text += f" ({no_path} of {len(vals)} tickets without any input-output path)"
            cells.append(f"{text} (chance {chance_text})")
            note = ("expected: 0.5 (final sign independent of the initial one)" if name == "sign_kept"
                    else f"expected: a random mask with the per-layer kept counts of {m}'s first ticket "
                         f"(seed {BASELINE_SEED})")
            if no_path:
                note += f"; {no_path} tickets without any input-output path are left out of the mean"
            doc.row(section="graph", **key, density=d, method_a=m, metric=metric, value=s[0],
                    expected=None if chance == -math.inf else chance, spread=SPREAD, spread_lo=s[1],
                    spread_hi=s[2], n=s[3], note=note)
        rows.append(cells)
    doc.para(f"Per ticket, mean [{SPREAD}] (n tickets) over seeds. Chance for the graph properties: a random "
             "mask with the same per-layer kept counts; for sign kept (share of kept weights whose final "
             "sign equals the initial one): 0.5. Spectral gap: mean over layers of the Ramanujan gap "
             "2 sqrt(d - 1) - lambda2.")
    doc.table(["method", *GRAPH_METRICS.values(), "sign kept"], rows)
    _mark_note(doc, entries)


def _section_accuracy(doc: _Doc, key: dict[str, Any], methods: list[str], by_density: dict[float, list[_Entry]],
                      where: str) -> None:
    doc.heading(3, "Accuracy vs density")
    series: dict[str, list[tuple[float, float, float, float]]] = {}
    rows, chance = [], math.nan
    every = [e for es in by_density.values() for e in es]
    sick_any = _sick(every)
    for d in sorted(by_density, reverse=True):
        entries = by_density[d]
        sick = _sick(entries)
        for m in methods:
            accs = [e.ticket.provenance.get("test_accuracy") for e in entries if e.method == m]
            accs = [float(a) for a in accs if isinstance(a, (int, float)) and not isinstance(a, bool)]
            if not accs:
                continue
            classes = next((e.ticket.provenance.get("data_spec", {}).get("num_classes") for e in entries
                            if isinstance(e.ticket.provenance.get("data_spec"), dict)), None)
            c = 1.0 / classes if isinstance(classes, int) and classes > 0 else math.nan
            chance = c if math.isfinite(c) else chance
            s = _stats(accs)
            series.setdefault(_mark(m, m in sick_any), []).append((d, s[0], s[1], s[2]))
            rows.append([_mark(m, m in sick), _num(d), _spread(*s), _num(c)])
            doc.row(section="accuracy", **key, density=d, method_a=m, metric="test_accuracy", value=s[0],
                    expected=c, spread=SPREAD, spread_lo=s[1], spread_hi=s[2], n=s[3],
                    note="expected: 1 / num_classes (guessing)")
    if not rows:
        doc.para("No trained tickets: no ticket's provenance has a test_accuracy.")
        return
    doc.para(f"Test accuracy of the trained tickets, mean [{SPREAD}] (n seeds), beside chance = 1 / number of classes.")
    doc.table(["method", "density", "test accuracy", "chance"], rows)
    _mark_note(doc, every)
    doc.figure(_plot_lines(series, "test accuracy", where, chance, "chance (1 / classes)"), f"{where}-accuracy",
               f"Test accuracy of the trained tickets vs density, {where}; bars: {SPREAD} over seeds"
               + (f"; {MARK.strip()}: a method with unhealthy tickets" if sick_any else ""))


def _section_summary(doc: _Doc, key: dict[str, Any], res: _GroupResult) -> None:
    doc.heading(3, "What this says")
    if not res.pair_stats:
        doc.para("No pairs of tickets, so nothing to say about overlap.")
        return
    doc.para(f"Generated from the numbers above. A method pair shares more than chance when its mean Jaccard "
             f"lift is at least {LIFT_THRESHOLD} and every seed pair's one-sided p (per-layer hypergeometric "
             f"null, normal approximation) is below {ALPHA}; less than chance when the mean lift is at most "
             f"{_num(1 / LIFT_THRESHOLD)} and every p is above {1 - ALPHA}; otherwise it is counted as close to "
             f"chance. Within vs across counts as a difference when the permutation p is below {ALPHA}.")
    for d in sorted(res.pair_stats, reverse=True):
        stats = res.claims.get(d, res.pair_stats[d])  # pairs of tickets that are not unhealthy
        groups: dict[str, list[str]] = {"more": [], "chance": [], "less": [], "n/a": []}
        for (a, b), st in stats.items():
            bound = ("every p " + ("" if st["p_max"] == 0 else "≤ ")) if st["verdict"] == "more" else "largest p "
            groups[st["verdict"]].append(f"{_pair_name(a, b)} (lift {_num(st['lift'])}, {bound}{_pnum(st['p_max'])})")
            doc.row(section="summary", **key, density=d, method_a=a, method_b=b, metric="verdict", lift=st["lift"],
                    p=st["p_max"], n=st["n"], note=st["verdict"])
        text = [f"At density {_num(d)}:"]
        text.append("share more than chance: " + ("; ".join(groups["more"]) or "none") + ".")
        text.append("do not share more than chance: " + ("; ".join(groups["chance"] + groups["less"]) or "none") + ".")
        if groups["less"]:
            text.append("Of these, less than chance: " + "; ".join(groups["less"]) + ".")
        wa = []
        for m, w in res.within_claims.get(d, res.within.get(d, {})).items():
            if not math.isfinite(w["p"]):
                continue
            if w["p"] < ALPHA:
                rel = ("closer to its own tickets at other seeds than to other methods' at the same seed" if w["diff"] > 0
                       else "closer to other methods' tickets at the same seed than to its own at other seeds")
            else:
                rel = "no clear difference between its own tickets at other seeds and other methods' at the same seed"
            wa.append(f"{m}: {rel} (mean lift {_num(w['within'])} within vs {_num(w['across'])} across, "
                      f"permutation p = {_pnum(w['p'])})")
        if wa:
            text.append("Within vs across methods: " + "; ".join(wa) + ".")
        left = res.left_out.get(d, [])
        if left:
            gone = [(a, b) for a, b in res.pair_stats[d] if (a, b) not in stats]
            for a, b in gone:
                doc.row(section="summary", **key, density=d, method_a=a, method_b=b, metric="verdict",
                        note="left out: no pair of tickets that are not unhealthy")
            text.append(f"Left out of these claims: {len(left)} unhealthy ticket{'s' if len(left) > 1 else ''} "
                        f"({_why(left)}), and every pair that holds one"
                        + (f", so nothing is said about {'; '.join(_pair_name(a, b) for a, b in gone)}" if gone else "")
                        + ".")
        doc.para(" ".join(text))


def _why(entries: list[_Entry]) -> str:
    """``3 magnitude_init tickets: a collapsed layer, no input-to-output path to some class``, per method."""
    parts = []
    for m in dict.fromkeys(e.method for e in entries):
        mine = [e.health for e in entries if e.method == m]
        kinds = []
        if any(h.collapsed_layers for h in mine):
            kinds.append("collapsed layers")
        if any(h.unreachable_classes for h in mine):
            kinds.append("classes without an input-to-output path")
        if any(h.at_chance for h in mine):
            kinds.append("accuracy at chance")
        parts.append(f"{len(mine)} {m} ticket{'s' if len(mine) > 1 else ''}: {', '.join(kinds)}")
    return "; ".join(parts)


def _section_health(doc: _Doc, study: _Study) -> None:
    """Every unhealthy ticket with its reasons; the counts; a ``health`` row per ticket in the CSV."""
    doc.heading(2, "Ticket health")
    entries = []
    for (model, dataset), g in study.groups.items():
        for es in g.values():
            for e in es:
                entries.append(e)
                h = e.health
                doc.row(section="health", model=model, dataset=dataset, density=e.density, method_a=e.method,
                        seed_a=e.seed, label_a=e.label, metric="unhealthy",
                        value=None if h.healthy is None else int(h.healthy is False), note=h.summary())
    sick = [e for e in entries if e.unhealthy]
    unknown = sum(1 for e in entries if e.health.healthy is None)
    text = (f"{len(sick)} of {len(entries)} tickets are unhealthy (ticketlab.health: a layer with no effective "
            "weight, a class without an input-to-output path, or a recorded test accuracy within the 99% binomial "
            "band of 1 / classes)")
    if sick:
        text += (f": {_why(sick)}. They are marked {MARK.strip()} in every table and figure, and every pair that "
                 "holds one is left out of the claims of \"What this says\"")
    if unknown:
        text += (f". {unknown} tickets record no topology, so whether their classes are reachable is unknown; "
                 "they are kept")
    doc.para(text + ".")
    doc.table(["ticket", "job", "density", "why"], [[e.label, e.job_id, _num(e.density), e.health.summary()]
                                                    for e in sick])


# ------------------------------------------------------------------------------ entry point
def _written(folder: StudyFolder) -> list[str]:
    """The figures an earlier report wrote (:data:`WRITTEN`), each checked as a path ticketlab may
    delete (a link there is refused now, before anything is written). Names of another shape than
    the report's own are ignored; figures of reports older than the list are never deleted."""
    import json

    if folder.path(FIGURE_DIR).exists():
        folder.folder(FIGURE_DIR)
    path = folder.file(WRITTEN, missing_ok=True)
    if path is None:
        return []
    if path.stat().st_size > _WRITTEN_BYTES:
        raise StudyFolderError(f"'{path}' is larger than {_WRITTEN_BYTES} bytes: not a list ticketlab wrote")
    try:
        names = json.loads(path.read_text(encoding="utf-8")).get("written")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        raise StudyFolderError(f"'{path}' is not the list of figures ticketlab writes") from None
    if not isinstance(names, list):
        raise StudyFolderError(f"'{path}' is not the list of figures ticketlab writes")
    out = []
    for name in names:
        if isinstance(name, str) and _FIGURE_NAME.fullmatch(name) and name not in out:
            folder.path(f"{FIGURE_DIR}/{name}")
            out.append(name)
    return out


def _write_written(folder: StudyFolder, names: list[str]) -> None:
    import json

    text = json.dumps({"written": names, "note": "PNGs ticketlab wrote here; the next report deletes those it "
                       "does not write again, and nothing else"}, indent=1) + "\n"
    atomic_write_text(folder.writable(WRITTEN), text)


def write_report(study_dir: Path, *, progress: NullProgress | None = None) -> dict[str, Path]:
    """Write ``report.md`` (PNGs in ``report_figures/``), ``report.html`` and ``results.csv`` for
    the study in ``study_dir``; returns ``{"markdown", "html", "csv", "figure:<name>": path}``.

    Only jobs whose status is ``done`` or ``skipped`` and whose ticket file exists and loads are
    used; failed jobs and unusable entries are listed in the report's "Failures" section.

    Example:
        >>> import tempfile, json
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "study.json").write_text(json.dumps({"name": "empty", "jobs": []}))
        >>> sorted(write_report(d))
        ['csv', 'html', 'markdown']
    """
    study_dir = Path(study_dir)
    progress = progress or NullProgress()
    folder = StudyFolder(study_dir)
    folder.path(FIGURE_DIR)  # links are refused before anything is written
    for rel in ("report.md", "report.html", "results.csv"):
        folder.writable(rel)
    earlier = _written(folder)
    study = _load_study(study_dir, progress)
    doc = _Doc(folder)
    title = f"Study report: {study.name or study_dir.name}"
    doc.heading(1, title)
    status = {}
    for j in study.jobs:
        status[_text(j.get("status"))] = status.get(_text(j.get("status")), 0) + 1
    n_tickets = sum(len(es) for g in study.groups.values() for es in g.values())
    n_sick = sum(1 for g in study.groups.values() for es in g.values() for e in es if e.unhealthy)
    doc.para(f"ticketlab {study.version or 'n/a'}; {len(study.jobs)} jobs ("
             + ", ".join(f"{v} {k or 'no status'}" for k, v in sorted(status.items())) + f"); {n_tickets} tickets "
             f"read" + (f", {n_sick} of them unhealthy (marked {MARK.strip()}; see Ticket health)" if n_sick else "")
             + f"; methods: {', '.join(study.methods) or 'none'}. Lift = Jaccard / expected Jaccard of random "
             "masks with the same per-layer kept counts (1 = chance). Spreads are min-max.")
    source = read_manifest(study_dir).get("study_file")
    if isinstance(source, str) and source:
        doc.para(f"Regenerated by `ticketlab study run {source} -o {study_dir}` (finished jobs are skipped) or, from "
                 f"the tickets alone, `ticketlab study report {study_dir}`.")
    steps = sum(len(g) for g in study.groups.values())
    rng = np.random.default_rng(BASELINE_SEED)
    with progress.task("report: sections", total=steps) as task:
        for (model, dataset), by_density in study.groups.items():
            where = f"{model} / {dataset}"
            key = {"model": model, "dataset": dataset}
            res = _GroupResult()
            doc.heading(2, where)
            densities = sorted(by_density, reverse=True)
            doc.heading(3, "Overlap and within- vs across-method")
            overlaps: dict[float, _Overlap] = {}
            for d in densities:
                ov = _section_overlap(doc, key, study.methods, d, by_density[d], where, res)
                if ov is not None:
                    overlaps[d] = ov
                    _section_within(doc, key, study.methods, d, ov, where, res)
            _section_vs_density(doc, res, study.methods, where, _sick(e for es in by_density.values() for e in es))
            doc.heading(3, "Per-layer density profiles")
            for d in densities:
                _section_profiles(doc, key, study.methods, d, by_density[d], where)
            doc.heading(3, "Sign agreement and graph properties")
            for d in densities:
                entries = by_density[d]
                values = {e.job_id: _graph_values(e.ticket) for e in entries}
                baselines: dict[str, dict[str, float | None]] = {}
                made: dict[tuple[int, ...], dict[str, float | None]] = {}
                for m in study.methods:
                    first = next((e for e in entries if e.method == m), None)
                    if first is None:
                        continue
                    counts = tuple(first.ticket.layer_kept().values())
                    if counts not in made:
                        made[counts] = _graph_values(_random_like(first.ticket, rng))
                    baselines[m] = made[counts]
                _section_graph(doc, key, study.methods, d, entries, values, baselines)
                task.advance()
            _section_accuracy(doc, key, study.methods, by_density, where)
            _section_summary(doc, key, res)
    _section_health(doc, study)
    doc.heading(2, "Failures")
    failed = [j for j in study.jobs if j.get("status") == "failed"]
    rows = [[_text(j.get("id")), _text(j.get("method")), _text(j.get("seed")), _text(j.get("density")),
             _text(j.get("error"))] for j in failed]
    rows += [[jid, "", "", "", f"not in the report: {why}"] for jid, why in study.problems]
    pending = sum(1 for j in study.jobs if j.get("status") == "pending")
    doc.para(f"{len(failed)} failed jobs, {len(study.problems)} finished jobs without a usable ticket, "
             f"{pending} pending jobs." if rows or pending else "No job failed.")
    doc.table(["job", "method", "seed", "density", "error"], rows)

    md = atomic_write_text(folder.writable("report.md"), doc.markdown())
    page = atomic_write_text(folder.writable("report.html"), doc.html(title))
    table = atomic_write_text(folder.writable("results.csv"), doc.csv())
    stale = [name for name in earlier if name not in doc.figures]  # figures of an earlier report, not of this one
    if doc.figures or earlier:
        folder.folder(FIGURE_DIR, create=True)
        _write_written(folder, list(doc.figures) + stale)  # a kill before the deletes leaves them listed
        for name in stale:
            folder.remove(f"{FIGURE_DIR}/{name}")
        _write_written(folder, list(doc.figures))
    out = {"markdown": md, "html": page, "csv": table}
    out.update({f"figure:{name}": path for name, path in doc.figures.items()})
    return out


__all__ = ["write_report", "read_manifest", "expected_jaccard_matrix", "permutation_test", "js_matrix",
           "ALPHA", "LIFT_THRESHOLD", "N_PERMUTATIONS", "PERMUTATION_SEED", "COLUMNS"]
