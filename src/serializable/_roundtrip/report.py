"""What `assert_roundtrip` found: a `FormatReport` per format, a `RoundtripReport`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FormatReport:
    """What happened in one format: sizes, timings and what was checked.

    `notes` holds what is worth knowing but lost nothing: warnings Keras gave
    while saving or loading, and random-seed state Keras does not save.
    """

    format: str
    path: str
    file_bytes: int = 0
    save_seconds: float = 0.0
    load_seconds: float = 0.0
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RoundtripReport:
    """The result of a passing `assert_roundtrip`, one entry per format."""

    formats: dict[str, FormatReport]

    def __str__(self) -> str:
        lines = []
        for report in self.formats.values():
            lines.append(
                f"{report.format}: {report.file_bytes / 1024:.1f} KiB, save "
                f"{report.save_seconds * 1000:.0f} ms, load "
                f"{report.load_seconds * 1000:.0f} ms; checked "
                + ", ".join(report.checked)
            )
            lines.extend(f"  note: {note}" for note in report.notes)
        return "\n".join(lines)
