"""Watching a program while it runs: a progress bar over each outermost top-level loop, and the
scalars that the program prints, for `phc run --plot FILE.png`.

The bar (tqdm) goes to stderr, only when stderr is a terminal, only for a loop still running after
a second, and shows the rate, the ETA and the last scalar printed (the loss). `--no-progress`
turns it off. How: the generated module's `range` is replaced, for the duration of the run, by one
that wraps the first loop of `main()` it is called for (functions and inner loops get the plain
`range`); printing notifies an observer in `phc.runtime.printing`.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

_builtin_range = range


@dataclass
class Series:
    label: str
    points: list = field(default_factory=list)     # (iteration or None, value)


class Monitor:
    def __init__(self, module, source: str, python: str, path, progress: bool = True, plot=None,
                 stream=None, delay: float = 1.0, interval: float = 0.1):
        self.module = module
        self.delay, self.interval = delay, interval
        self.stream = stream or sys.stderr
        self.want_bar = progress and _is_tty(self.stream) and _have_tqdm()
        self.want_series = bool(plot) or self.want_bar
        self.main_code = getattr(getattr(module, "main", None), "__code__", None)
        self.source_lines = source.splitlines()
        self.path = str(path)
        from phc.emit.module import line_table
        self.lines = line_table(python)
        self.series: dict[tuple, Series] = {}
        self.iteration: int | None = None
        self.active = False
        self.last = ""
        self.bar = None

    # ---- context

    def __enter__(self):
        if self.want_series:
            from phc.runtime import printing
            printing.add_observer(self.observe)
            self.module.__dict__["range"] = self.range
        return self

    def __exit__(self, *exc):
        from phc.runtime import printing
        printing.remove_observer(self.observe)
        self.module.__dict__.pop("range", None)
        self._close_bar()
        return False

    # ---- loops

    def range(self, *args):
        r = _builtin_range(*args)
        if self.active or sys._getframe(1).f_code is not self.main_code:
            return r
        return self._iterate(r)

    def _iterate(self, r):
        self.active = True
        if self.want_bar:
            from tqdm import tqdm
            self.bar = tqdm(total=len(r), file=self.stream, delay=self.delay, mininterval=self.interval, leave=False,
                            dynamic_ncols=True, unit="it")
        try:
            for k, i in enumerate(r):
                self.iteration = k
                yield i
                if self.bar is not None:
                    if self.last:
                        self.bar.set_postfix_str(self.last, refresh=False)
                    self.bar.update(1)
        finally:
            self.active = False
            self.iteration = None
            self._close_bar()

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # ---- printed values

    def observe(self, values: tuple, filename: str, lineno: int) -> None:
        if filename != self.path:
            return
        label = None
        for position, value in enumerate(values):
            if isinstance(value, str):
                label = value.strip().rstrip(":=").strip() or None
                continue
            number = _scalar(value)
            if number is None:
                continue
            key = (lineno, position)
            if key not in self.series:
                self.series[key] = Series(label or self._site_label(lineno, position))
            series = self.series[key]
            series.points.append((self.iteration, number))
            self.last = f"{series.label}={number:.4g}"

    def _site_label(self, lineno: int, position: int) -> str:
        """The printed expression as written in the .phk (`physika_print(loss)` → `loss`)."""
        from phc.runtime.errors import _lookup
        found = _lookup(self.lines, lineno)
        if found and 0 < found[0] <= len(self.source_lines):
            text = self.source_lines[found[0] - 1].strip()
            m = re.fullmatch(r"(?:physika_print|print)\((.*)\)", text)
            text = m.group(1) if m else text
            return text if position == 0 else f"{text} [{position}]"
        return f"value {len(self.series) + 1}"

    # ---- the picture

    def save_plot(self, filename: str, fmt: str = "text") -> bool:
        from phc import report
        series = [s for s in self.series.values() if len(s.points) > 1]
        if not series:
            report.message(f"--plot {filename}: the program printed no scalar more than once; "
                           "nothing to plot", fmt, "warning")
            return False
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            report.message("--plot needs matplotlib (pip install 'phc[plot]')", fmt)
            return False
        fig, axes = plt.subplots(len(series), 1, figsize=(6.4, 2.6 * len(series)), squeeze=False)
        for ax, s in zip(axes[:, 0], series):
            xs = [i for i, _ in s.points]
            if None in xs or len(set(xs)) != len(xs):
                xs, xlabel = list(_builtin_range(len(s.points))), "print"
            else:
                xlabel = "iteration"
            ax.plot(xs, [v for _, v in s.points], marker="." if len(xs) < 60 else None)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(s.label)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        try:
            fig.savefig(filename, dpi=100)
        except OSError as e:
            report.message(f"--plot: cannot write {filename}: {e.strerror or e}", fmt)
            return False
        finally:
            plt.close(fig)
        return True


def _scalar(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    numel = getattr(value, "numel", None)
    if numel is not None and numel() == 1 and not value.dtype.is_complex:
        return float(value.detach().reshape(()).item())
    return None


def _is_tty(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def _have_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True
