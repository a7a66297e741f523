"""STEVE-2 distillation: one small multimodal student trained from logged episodes.

Usable with only ``envs`` and torch installed: ``data`` (samples from run directories),
``tokenizer`` (built from the data), ``model`` (the student), ``losses`` (pure
functions), ``trainer`` (checkpoints that resume), ``agent`` (the student playing),
``rollouts`` (episodes in the teacher's worlds, played in worker processes; the
teacher is imported lazily) and ``dagger`` (mirrored distillation over them).
"""
