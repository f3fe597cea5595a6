"""How the steps of a definition lead to each other (validation, the engine and the loop checks share it)."""

from __future__ import annotations

from crmflow.processes.schema import ChoiceStep, ProcessDefinition, WaitForStep

END = "end"


def successors(p: ProcessDefinition, i: int) -> list[str]:
    """The step ids (or 'end') that step i can lead to."""
    step = p.steps[i]
    following = p.steps[i + 1].id if i + 1 < len(p.steps) else END
    if isinstance(step, ChoiceStep):
        return [b.next for b in step.choice] + [step.otherwise or following]
    out = [step.next or following]
    if isinstance(step, WaitForStep) and step.on_timeout:
        out.append(step.on_timeout)
    return out
