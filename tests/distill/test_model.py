"""The student model: shapes, causality, padding, greedy decoding, and that it can learn."""

from __future__ import annotations

import pytest
import torch

from distill.config import load
from distill.data import DistillDataset, build_tokenizer
from distill.evaluation import compute_losses
from distill.model import Student
from distill.steps import load_steps
from distill.tokenizer import BOS, EOS, PAD

N_ACTIONS = 17
VOCAB = 10  # 4 specials + 6 words


@pytest.fixture(scope="module")
def cfg():
    return load("tiny")


def _model(cfg, seed: int, scramble: float = 0.0) -> Student:
    """A tiny student; ``scramble`` re-draws every weight with that std, for outputs
    varied enough that greedy subgoals have many different lengths."""
    torch.manual_seed(seed)
    model = Student(cfg.model, VOCAB, N_ACTIONS).eval()
    if scramble:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, scramble)
    return model


def _inputs(cfg, b: int, seed: int, task_words: int | None = None):
    """Random (frame, task, history, subgoal_in); the task has PAD after ``task_words``."""
    m = cfg.model
    g = torch.Generator().manual_seed(seed)
    frame = torch.randint(0, 256, (b, 3, 64, 64), dtype=torch.uint8, generator=g)
    task = torch.randint(4, VOCAB, (b, m.max_task_len), generator=g)
    if task_words is not None:
        task[:, task_words:] = PAD
    history = torch.randint(0, N_ACTIONS + 1, (b, m.history), generator=g)
    sub = torch.randint(4, VOCAB, (b, m.max_subgoal_len), generator=g)
    sub[:, 0] = BOS
    return frame, task, history, sub


def test_output_shapes(cfg):
    model = _model(cfg, 0)
    frame, task, history, sub = _inputs(cfg, 3, 0)
    out = model(frame, task, history, sub)
    assert out.action_logits.shape == (3, N_ACTIONS)
    assert out.subgoal_logits.shape == (3, cfg.model.max_subgoal_len, VOCAB)
    assert torch.isfinite(out.action_logits).all() and torch.isfinite(out.subgoal_logits).all()
    planned = model.plan(frame, task, history)
    assert planned.shape == (3, cfg.model.max_subgoal_len) and (planned[:, 0] == BOS).all()


def test_num_parameters(cfg):
    model = _model(cfg, 0)
    assert model.text_head.weight is model.words.weight  # tied: one table, counted once
    by_storage = {t.data_ptr(): t.numel() for t in model.state_dict().values()}
    assert model.num_parameters() == sum(by_storage.values())
    assert model.num_parameters() < sum(t.numel() for t in model.state_dict().values())


@pytest.mark.parametrize("j", [1, 3, 5])
def test_subgoal_positions_are_causal(cfg, j):
    """Subgoal word j is seen by positions >= j and the action, never by earlier positions."""
    model = _model(cfg, 1, scramble=0.3)
    frame, task, history, sub = _inputs(cfg, 2, 1)
    other = sub.clone()
    other[:, j] = 4 + (sub[:, j] - 4 + 1) % (VOCAB - 4)  # another word
    a, b = model(frame, task, history, sub), model(frame, task, history, other)
    torch.testing.assert_close(a.subgoal_logits[:, :j], b.subgoal_logits[:, :j], rtol=0, atol=1e-6)
    assert (a.subgoal_logits[:, j:] - b.subgoal_logits[:, j:]).abs().amax() > 1e-4
    assert (a.action_logits - b.action_logits).abs().amax(-1).min() > 1e-4


def test_inputs_reach_every_output(cfg):
    """The frame, the task and the history are before the subgoal: all outputs see them."""
    model = _model(cfg, 2, scramble=0.3)
    frame, task, history, sub = _inputs(cfg, 2, 2)
    base = model(frame, task, history, sub)
    for changed in ((255 - frame, task, history, sub), (frame, task.flip(-1), history, sub),
                    (frame, task, (history + 1) % (N_ACTIONS + 1), sub)):
        out = model(*changed)
        assert (out.subgoal_logits[:, 0] - base.subgoal_logits[:, 0]).abs().amax(-1).min() > 1e-4
        assert (out.action_logits - base.action_logits).abs().amax(-1).min() > 1e-4


def test_padding_is_ignored(cfg):
    """Whatever the PAD embedding holds, padded task and subgoal positions change nothing
    that is read: the action and the subgoal logits at real positions."""
    model = _model(cfg, 3, scramble=0.3)
    frame, task, history, sub = _inputs(cfg, 2, 3, task_words=2)
    sub[:, 3:] = PAD  # BOS + 2 words
    real = slice(0, 3)
    before = model(frame, task, history, sub)
    with torch.no_grad():
        model.words.weight[PAD] = torch.randn(cfg.model.d_model) * 10
    after = model(frame, task, history, sub)
    torch.testing.assert_close(after.action_logits, before.action_logits, rtol=0, atol=1e-5)
    keep = torch.arange(VOCAB) != PAD  # the PAD logit itself moves with its (tied) embedding
    torch.testing.assert_close(after.subgoal_logits[:, real][..., keep], before.subgoal_logits[:, real][..., keep],
                               rtol=0, atol=1e-5)
    # the same change on a real word does change the outputs: the check above can fail
    with torch.no_grad():
        model.words.weight[task[0, 0]] = torch.randn(cfg.model.d_model) * 10
    moved = model(frame, task, history, sub)
    assert (moved.action_logits[0] - after.action_logits[0]).abs().amax() > 1e-3


def test_tasks_differing_after_the_cut_are_the_same_input(recorded_run, cfg):
    """The task is cut at max_task_len words (in the dataset as in the agent)."""
    table = load_steps([recorded_run.run_dir], cfg.data.model_copy(update={"actors": ["teacher"]}))
    tok = build_tokenizer(table)
    n = cfg.model.max_task_len
    long_a = " ".join(["collect"] * n + ["diamond"])
    long_b = " ".join(["collect"] * n + ["wood", "open"])
    assert tok.encode(long_a, max_len=n) == tok.encode(long_b, max_len=n)
    assert tok.encode(long_a) != tok.encode(long_b)


def _naive_greedy(model: Student, frame, task, history):
    """Plain greedy decoding, one row, one word per forward pass: (subgoal_in, action logits)."""
    n = model.cfg.max_subgoal_len
    sub = torch.full((1, n), PAD, dtype=torch.long)
    sub[0, 0] = BOS
    with torch.no_grad():
        for j in range(n - 1):
            logits = model(frame, task, history, sub).subgoal_logits[0, j].clone()
            logits[[PAD, BOS]] = float("-inf")  # never words
            word = int(logits.argmax())
            if word == EOS:
                break
            sub[0, j + 1] = word
        return sub, model(frame, task, history, sub).action_logits


def _words(sub: torch.Tensor) -> list[int]:
    return [int(w) for w in sub[1:] if int(w) != PAD]


def _as_draft(words: list[int], n: int) -> torch.Tensor:
    words = words[: n - 1]
    return torch.tensor([[BOS, *words, *[PAD] * (n - 1 - len(words))]])


def _drafts(greedy: list[int], n: int, vocab: int) -> dict[str, list[int]]:
    def other(w: int) -> int:  # another word
        return 4 + (w - 4 + 1) % (vocab - 4)

    drafts = {"right": greedy, "empty": []}
    drafts["wrong first"] = [other(greedy[0]), *greedy[1:]] if greedy else [5, 6]
    if len(greedy) >= 2:
        drafts["wrong later"] = [*greedy[:-1], other(greedy[-1])]
    if len(greedy) < n - 1:
        drafts["too long"] = [*greedy, 4, 5]
    if greedy:
        drafts["too short"] = greedy[:-1]
    return drafts


def _check_decide(model: Student, frame, task, history) -> set[int]:
    """``decide`` against the naive loop on each row, with every kind of draft, then on
    the whole batch; returns the greedy subgoal lengths seen."""
    n, vocab = model.cfg.max_subgoal_len, model.vocab_size
    rows, lengths = [], set()
    for r in range(len(frame)):
        args = (frame[r:r + 1], task[r:r + 1], history[r:r + 1])
        sub, logits = _naive_greedy(model, *args)
        k = len(_words(sub[0]))
        rows.append((sub, logits))
        lengths.add(k)
        for name, words in _drafts(_words(sub[0]), n, vocab).items():
            got_sub, got_logits, passes = model.decide(*args, draft=_as_draft(words, n))
            assert torch.equal(got_sub, sub), (r, name, got_sub, sub)
            torch.testing.assert_close(got_logits, logits, rtol=0, atol=1e-5)
            assert 1 <= passes <= n + 1
            if name == "right":
                assert passes == 1, r
        got_sub, _, passes = model.decide(*args)  # no draft: one pass per word, one to confirm
        assert torch.equal(got_sub, sub) and passes == k + 1, (r, passes, k)
    sub, logits, _ = model.decide(frame, task, history)  # the whole batch at once
    for r, (want_sub, want_logits) in enumerate(rows):
        assert torch.equal(sub[r:r + 1], want_sub), r
        torch.testing.assert_close(logits[r:r + 1], want_logits, rtol=0, atol=1e-5)
    # and with a different draft per row: right, too short, wrong, empty, ...
    kinds = [lambda w: w, lambda w: w[:-1], lambda w: [4, 4, 4], lambda w: []]
    drafts = torch.cat([_as_draft(kinds[r % 4](_words(want[0])), n) for r, (want, _) in enumerate(rows)])
    sub2, logits2, _ = model.decide(frame, task, history, draft=drafts)
    assert torch.equal(sub2, sub)
    torch.testing.assert_close(logits2, logits, rtol=0, atol=1e-5)
    return lengths


@pytest.fixture(scope="module")
def learned(recorded_run):
    """A tiny student fitted to one batch of real steps (100 Adam steps):
    (model, batch, loss before, loss after)."""
    cfg = load("tiny", ["train.action_loss=ce"])
    table = load_steps([recorded_run.run_dir], cfg.data)
    tok = build_tokenizer(table)
    ds = DistillDataset(table, list(range(0, len(table), max(1, len(table) // 16)))[:16], tok, cfg.model)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    torch.manual_seed(0)
    model = Student(cfg.model, len(tok), table.n_actions).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(100):
        loss, parts, _ = compute_losses(model, batch, cfg)
        first = first if first is not None else parts["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        last, _, out = compute_losses(model, batch, cfg)
    return model, batch, out, first, float(last)


def test_can_overfit_one_batch(learned):
    """The model, its losses and the data fit together: one batch is learned."""
    model, batch, out, first, last = learned
    assert last < 0.5 * first, (first, last)
    assert float((out.action_logits.argmax(-1) == batch["action"]).float().mean()) > 0.5
    # the subgoal words too: greedy decoding writes the teacher's subgoals
    sub = model.plan(batch["frame"], batch["task"], batch["history"])
    want = batch["subgoal_in"]
    assert float((sub == want).all(-1).float().mean()) > 0.9


def test_decide_equals_naive_greedy(cfg, learned):
    """For several models and inputs, and drafts right, wrong, too long and too short,
    ``decide`` gives what one-word-at-a-time greedy decoding gives; a right draft costs
    exactly one pass."""
    lengths = set()
    for seed in range(6):  # random models: they tend to repeat a word to the limit, or stop at once
        model = _model(cfg, seed, scramble=0.5)
        lengths |= _check_decide(model, *_inputs(cfg, 4, 100 + seed, task_words=3)[:3])
    model, batch = learned[:2]  # a fitted model on real steps: the teacher's 0- and 2-word subgoals
    lengths |= _check_decide(model, batch["frame"], batch["task"], batch["history"])
    # the cases were varied: empty, stopped by EOS midway, and cut at the length limit
    n = cfg.model.max_subgoal_len
    assert 0 in lengths and n - 1 in lengths and any(0 < k < n - 1 for k in lengths), lengths


def _subgoal_prob(model: Student, frame, task, history, words: list[int]) -> float:
    """The probability of one row's subgoal: its words and then its end (none at the
    length limit), read from a plain pass on it; PAD and BOS are never words."""
    n = model.cfg.max_subgoal_len
    with torch.no_grad():
        logits = model(frame, task, history, _as_draft(words, n)).subgoal_logits[0].clone()
    logits[:, [PAD, BOS]] = float("-inf")
    lp = logits.log_softmax(-1)
    targets = words if len(words) == n - 1 else [*words, EOS]
    return float(sum(lp[j, w] for j, w in enumerate(targets)).exp())


def test_keep_holds_to_the_draft_until_greedy_is_that_much_likelier(cfg, learned):
    """With ``keep`` a draft of one or more words is kept (and its action logits given)
    while the greedy subgoal is under ``keep`` times as likely; just over, greedy wins;
    an empty draft is never kept."""
    n = cfg.model.max_subgoal_len
    cases = [(_model(cfg, seed, scramble=0.5), *_inputs(cfg, 4, 100 + seed, task_words=3)[:3])
             for seed in range(4)]
    model, batch = learned[:2]
    cases.append((model, batch["frame"][:6], batch["task"][:6], batch["history"][:6]))
    switched = 0
    for model, frame, task, history in cases:
        for r in range(len(frame)):
            args = (frame[r:r + 1], task[r:r + 1], history[r:r + 1])
            greedy, greedy_logits = _naive_greedy(model, *args)
            g = _words(greedy[0])
            d = _drafts(g, n, model.vocab_size)["wrong first"]
            draft = _as_draft(d, n)
            ratio = _subgoal_prob(model, *args, g) / _subgoal_prob(model, *args, d)
            sub, logits, _ = model.decide(*args, draft=draft, keep=max(1.01, ratio * 1.01))
            assert torch.equal(sub, draft), (r, ratio)
            with torch.no_grad():
                torch.testing.assert_close(logits, model(*args, draft).action_logits, rtol=0, atol=1e-5)
            if ratio > 1.02:
                sub, logits, _ = model.decide(*args, draft=draft, keep=ratio / 1.01)
                assert torch.equal(sub, greedy), (r, ratio)
                torch.testing.assert_close(logits, greedy_logits, rtol=0, atol=1e-5)
                switched += 1
            sub, _, _ = model.decide(*args, draft=_as_draft([], n), keep=1e9)
            assert torch.equal(sub, greedy)
    assert switched >= 5, switched  # the margin was crossed often enough to tell


@pytest.mark.parametrize("runner_up", [EOS, 5])
def test_decide_never_writes_pad_or_bos(cfg, runner_up):
    """A model whose top word is always PAD, then BOS: greedy decoding skips both (they
    are never words) and takes the next, EOS (an empty subgoal) or a word (to the limit);
    ``decide`` agrees, in k + 1 passes, and a right draft still costs one pass."""
    model = _model(cfg, 0)
    with torch.no_grad():
        direction = torch.randn(cfg.model.d_model)
        model.norm.weight.zero_()  # every output position is exactly this direction
        model.norm.bias.copy_(direction)
        scale = {PAD: 3.0, BOS: 2.0, runner_up: 1.0}
        for w in range(VOCAB):
            model.words.weight[w] = direction * scale.get(w, -1.0) / direction.norm()
    frame, task, history, _ = _inputs(cfg, 2, 7, task_words=2)
    out = model(frame, task, history, torch.tensor([[BOS] + [PAD] * (cfg.model.max_subgoal_len - 1)] * 2))
    assert (out.subgoal_logits.argmax(-1) == PAD).all()  # the raw top word is PAD
    n = cfg.model.max_subgoal_len
    k = 0 if runner_up == EOS else n - 1
    sub, _, passes = model.decide(frame, task, history)
    assert sub[:, 1:].tolist() == [[runner_up] * k + [PAD] * (n - 1 - k)] * 2 and passes == k + 1
    assert _check_decide(model, frame, task, history) == {k}
    assert model.decide(frame, task, history, draft=sub)[2] == 1


def test_local_vision_tower_replaces_the_image_encoder(tmp_path, cfg):
    """model.vlm_path: a pretrained vision tower from a local folder, never downloaded."""
    transformers = pytest.importorskip("transformers")
    vision = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=32, patch_size=8)
    transformers.CLIPVisionModel(vision).save_pretrained(tmp_path / "tower")
    mcfg = cfg.model.model_copy(update={"vlm_path": str(tmp_path / "tower"), "image_grid": 2})
    model = Student(mcfg, VOCAB, 17)
    assert model.n_image == 4
    out = model(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8), torch.zeros(2, mcfg.max_task_len, dtype=torch.long),
                torch.zeros(2, mcfg.history, dtype=torch.long), torch.ones(2, mcfg.max_subgoal_len, dtype=torch.long))
    assert out.action_logits.shape == (2, 17) and torch.isfinite(out.action_logits).all()
    with pytest.raises(FileNotFoundError, match="config.json"):
        Student(mcfg.model_copy(update={"vlm_path": str(tmp_path / "nowhere")}), VOCAB, 17)


def test_every_shipped_config_builds_a_student_of_its_size():
    from distill.config import CONFIG_DIR

    sizes = {path.stem: Student(load(path.stem).model, 40, 17).num_parameters()
             for path in sorted(CONFIG_DIR.glob("*.yaml"))}
    assert {"tiny", "fast", "small", "base"} <= set(sizes)
    assert sizes["tiny"] < sizes["fast"] < sizes["small"] < sizes["base"], sizes
