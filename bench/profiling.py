"""`--profile`: py-spy attached to our exporter during the warm phases, and a short summary of
where its CPU time went."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


class Profiler:
    """`py-spy record` attached to a process (sampling, non-blocking) until `stop()`; writes
    the folded stacks (for flamegraph.pl or speedscope) and a short summary next to them."""

    def __init__(self, pid: int, stem: Path) -> None:
        self.stem = stem
        self.folded = stem.with_suffix(".folded")
        self.proc = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
             "--format", "raw", "--output", str(self.folded)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(0.5)  # attached before the phase starts

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.folded.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        summary = summarize_profile(self.folded.read_text())
        path = self.stem.with_suffix(".md")
        path.write_text(summary["markdown"])
        return {"folded": str(self.folded), "summary": str(path), "samples": summary["samples"]}


def summarize_profile(folded: str, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's folded stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [  # one entry per function, whatever line of it was running
            re.sub(r":\d+\)$", ")", f)
            for f in stack.split(";")
            if not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    lines = [f"{total} samples (200 Hz, CPU only, idle excluded)", ""]
    for title, table in (("self", own), ("inclusive", inclusive)):
        lines += [f"## {title}", "", "| share | function |", "|---:|---|"]
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"| {n / max(total, 1):.1%} | `{frame}` |")
        lines.append("")
    return {"samples": total, "markdown": "\n".join(lines)}
