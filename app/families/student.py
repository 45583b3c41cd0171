"""What the distilled families share: a frozen teacher read from ``model.teacher``.

The teacher's hyper-parameters (``teacher_spec``) and data transforms (``teacher_transforms``)
are recorded in the student's hyper-parameters and its weights in the student's
``state_dict`` (``teacher.*``), so a student checkpoint resumes, predicts and teaches the
next round without the teacher's file. A new run reads the file; a data module whose
fitted transforms differ from the teacher's stops at set-up with the domain named.
"""

from __future__ import annotations

from typing import Any

import torch

from app.families.base import Translator
from app.families.teacher import Teacher, TeacherFile, check_transforms, read_teacher

__all__ = ["Student", "resolve_teacher"]


def resolve_teacher(
    teacher: str | None, teacher_spec: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, TeacherFile | None]:
    """``(spec, file)``: a recorded ``teacher_spec`` (from a student checkpoint) is used as it is and the
    weights come from that checkpoint (``file`` None); otherwise the ``teacher`` file is read."""
    if teacher_spec is not None:
        return dict(teacher_spec), None
    if teacher is None:
        return None, None
    file = read_teacher(teacher)
    return file.spec, file


class Student(Translator):
    """A family trained from a frozen diffusion teacher (``self.teacher``, or None without one).

    Subclasses resolve the teacher (``resolve_teacher``) before ``Translator.__init__`` records
    their arguments, then call ``_attach_teacher``.
    """

    def _attach_teacher(self, spec: dict[str, Any] | None, file: TeacherFile | None) -> None:
        """Build the frozen teacher from ``spec`` and load ``file``'s weights when given; record the
        teacher's spec and data transforms in the hyper-parameters (so the checkpoint has them)."""
        if file is not None:
            self.hparams.update(teacher_spec=spec, teacher_transforms=file.transforms)
        self.register_buffer("teacher_loaded", torch.tensor(file is not None))
        self.teacher: Teacher | None = None if spec is None else Teacher(spec)
        if spec is None:
            return
        if file is not None:
            self.teacher.load_state_dict(file.weights)

    def setup(self, stage: str) -> None:
        """As ``Translator.setup``; then the teacher's data transforms must equal this data's."""
        super().setup(stage)
        if self.teacher is not None:
            check_transforms(self.hparams.get("teacher_transforms"), self.data.transforms,
                             [self.data.source, *self.data.targets])  # fmt: skip

    def on_fit_start(self) -> None:
        """A teacher built from a spec alone must have had its weights loaded from a checkpoint."""
        if self.teacher is not None and not bool(self.teacher_loaded):
            raise ValueError("model.teacher_spec is set but no teacher weights were loaded: give model.teacher "
                             "(a diffusion checkpoint) and leave teacher_spec out")  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """As ``Translator``'s; the teacher's weights come with the student's."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("state_dict", {})
        if "teacher_loaded" in state:
            state["teacher_loaded"] = torch.tensor(True)
