"""reasoning-gym leg_counting: one line per animal (legs each, times count), then the sum."""

from __future__ import annotations

from ..records import Problem


def legs_table() -> dict[str, int]:
    from reasoning_gym.arithmetic.leg_counting import ANIMALS
    return ANIMALS


def solve(problem: Problem) -> tuple[str, str]:
    animals = problem.meta.get("rg_entry", {}).get("metadata", {}).get("animals")
    if not animals:
        raise ValueError(f"problem {problem.id}: no animal counts in its metadata")
    table = legs_table()
    lines, totals = [], []
    for name, count in animals.items():
        legs = table[name]
        total = count * legs
        totals.append(total)
        lines.append(f"{name}: {count} * {legs} legs = {total}")
    sum_line = " + ".join(str(t) for t in totals)
    answer = sum(totals)
    lines.append(f"Total: {sum_line} = {answer}" if len(totals) > 1 else f"Total: {answer}")
    return "\n".join(lines), str(answer)
