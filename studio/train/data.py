"""The one place that turns Datanet snapshot records into training examples.

Proof of Attribution computes gradients with exactly these functions, so a prompt/response
example here and `encode_query` for the same (prompt, output) produce the same tokens and labels.

Formats (`fmt`):
- "auto": per record kind. "text" → loss on every token (long texts are cut into windows of
  max_length, one Example each). "prompt_response" → the model's chat template when it has one
  (user turn, assistant turn), loss on the response only. "chat" → the chat template over the
  messages, loss on assistant turns only.
- "plain": like "auto" but never uses a chat template: "{prompt}\n{response}<eos>".
- "text": every record as plain text (its `text` field), loss on every token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.errors import InvalidInput

IGNORE = -100  # label value that carries no loss (torch CrossEntropyLoss ignore_index)
FORMATS = ("auto", "plain", "text")


@dataclass
class Example:
    record_id: int
    datanet: str
    version: int
    contributor: str
    input_ids: list[int]
    labels: list[int]
    chunk: int = 0  # a long text record becomes several windows: 0, 1, 2, …

    @property
    def loss_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def _field(rec: Any, name: str, default: Any = None) -> Any:
    """Records are SnapshotRecord objects, or dicts when read back from a job's records.jsonl."""
    if isinstance(rec, dict):
        return rec.get(name, default)
    return getattr(rec, name, default)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    out = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )
    return str(out)


def _eos(tokenizer: Any) -> list[int]:
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []


def _segments_to_example(
    segments: list[tuple[str, bool]], tokenizer: Any, extra_tail: list[int] | None = None
) -> tuple[list[int], list[int]]:
    """Tokenise (text, has_loss) segments one by one, so the prompt part tokenises exactly as
    it does at generation time (the prompt string alone)."""
    ids: list[int] = []
    labels: list[int] = []
    for text, loss in segments:
        if not text:
            continue
        t = _ids(tokenizer, text)
        ids += t
        labels += t if loss else [IGNORE] * len(t)
    if extra_tail:
        ids += extra_tail
        labels += extra_tail
    return ids, labels


def _prompt_response_segments(
    tokenizer: Any, prompt: str, output: str, *, chat: bool
) -> tuple[list[tuple[str, bool]], list[int]]:
    if chat and _has_chat_template(tokenizer):
        user = [{"role": "user", "content": prompt}]
        prompt_text = _render(tokenizer, user, generation_prompt=True)
        full = _render(
            tokenizer, [*user, {"role": "assistant", "content": output}], generation_prompt=False
        )
        if full.startswith(prompt_text):
            return [(prompt_text, False), (full[len(prompt_text) :], True)], []
        # A template whose prompt is not a prefix of the full chat: fall back to plain format.
    return [(prompt + "\n", False), (output, True)], _eos(tokenizer)


def chat_prompt(tokenizer: Any, prompt: str, *, chat: bool = True) -> str:
    """The exact prompt string generation feeds the model (matches training's prompt part)."""
    if chat and _has_chat_template(tokenizer):
        return _render(tokenizer, [{"role": "user", "content": prompt}], generation_prompt=True)
    return prompt + "\n"


def encode_query(
    tokenizer: Any, prompt: str, output: str, *, chat: bool = True, max_length: int
) -> tuple[list[int], list[int]]:
    """(prompt, output) formatted exactly like a training prompt/response example, loss only on
    the output. chat=True matches fmt="auto", chat=False matches fmt="plain"."""
    if not output:
        raise InvalidInput("The output is empty: there is nothing to score.")
    segs, tail = _prompt_response_segments(tokenizer, prompt, output, chat=chat)
    ids, labels = _segments_to_example(segs, tokenizer, tail)
    if len(ids) > max_length:
        raise InvalidInput(
            f"Prompt + output is {len(ids)} tokens, longer than the model's limit of {max_length}.",
            hint="Use a shorter prompt or output.",
        )
    return ids, labels


def _chat_segments(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Loss on assistant turns only: render growing prefixes and take the differences."""
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            header = _render(tokenizer, messages[:i], generation_prompt=True) if i else ""
            through = _render(tokenizer, messages[: i + 1], generation_prompt=False)
            if not (header.startswith(done) and through.startswith(header)):
                raise ValueError("chat template is not prefix-stable")
            segments += [(header[len(done) :], False), (through[len(header) :], True)]
            done = through
        else:
            through = _render(tokenizer, messages[: i + 1], generation_prompt=False)
            if not through.startswith(done):
                raise ValueError("chat template is not prefix-stable")
            segments.append((through[len(done) :], False))
            done = through
    return segments


def _plain_chat_segments(messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    segments: list[tuple[str, bool]] = []
    for m in messages:
        role, content = m.get("role", "user"), m.get("content", "")
        if role == "assistant":
            segments += [("assistant: ", False), (content + "\n", True)]
        else:
            segments.append((f"{role}: {content}\n", False))
    return segments


def _windows(
    ids: list[int], labels: list[int], max_length: int
) -> list[tuple[list[int], list[int]]]:
    return [
        (ids[i : i + max_length], labels[i : i + max_length])
        for i in range(0, len(ids), max_length)
    ]


def examples_from_snapshot(
    records: Iterable[Any], tokenizer: Any, *, max_length: int, fmt: str = "auto"
) -> list[Example]:
    """Snapshot records (in snapshot order) → Examples (same order). Text longer than max_length
    is cut into windows; a prompt/response or chat longer than max_length is truncated at the end.
    An example left with no loss tokens (a prompt that fills the whole window) is dropped."""
    if fmt not in FORMATS:
        raise InvalidInput(
            f"Unknown data format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}."
        )
    if max_length < 2:
        raise InvalidInput(f"max_length must be at least 2 tokens, got {max_length}.")
    out: list[Example] = []
    for rec in records:
        kind = _field(rec, "kind", "text") or "text"
        meta = dict(
            record_id=int(_field(rec, "record_id")),
            datanet=str(_field(rec, "datanet", "") or ""),
            version=int(_field(rec, "version", 0) or 0),
            contributor=str(_field(rec, "contributor", "") or ""),
        )
        use_chat = fmt == "auto"
        pieces: list[tuple[list[int], list[int]]]
        if fmt == "text" or kind == "text" or kind not in ("prompt_response", "chat"):
            text = _field(rec, "text", "") or ""
            ids = _ids(tokenizer, text) + _eos(tokenizer)
            pieces = _windows(ids, list(ids), max_length)
        elif kind == "prompt_response":
            segs, tail = _prompt_response_segments(
                tokenizer,
                _field(rec, "prompt", "") or "",
                _field(rec, "response", "") or "",
                chat=use_chat,
            )
            ids, labels = _segments_to_example(segs, tokenizer, tail)
            pieces = [(ids[:max_length], labels[:max_length])]
        else:
            messages = list(_field(rec, "messages", None) or [])
            chat_segs = None
            if use_chat and _has_chat_template(tokenizer):
                try:
                    chat_segs = _chat_segments(tokenizer, messages)
                except ValueError:
                    chat_segs = None
            end: list[int] = []
            if chat_segs is None:
                chat_segs, end = _plain_chat_segments(messages), _eos(tokenizer)
            ids, labels = _segments_to_example(chat_segs, tokenizer, end)
            pieces = [(ids[:max_length], labels[:max_length])]
        for n, (ids, labels) in enumerate(pieces):
            if len(ids) < 2 or all(x == IGNORE for x in labels[1:]):
                continue  # nothing to learn from (labels are shifted by one inside the model)
            out.append(Example(input_ids=ids, labels=labels, chunk=n, **meta))  # type: ignore[arg-type]
    return out


def pack_examples(
    examples: Sequence[Example], max_length: int
) -> list[tuple[list[int], list[int], list[int]]]:
    """Sequence packing: whole examples placed into rows of at most max_length tokens by
    best-fit decreasing (rows come out nearly full, so batches carry little padding).
    Deterministic: ties keep snapshot order. Returns (input_ids, labels, position_ids) per row;
    position ids restart at 0 for each example, which makes the model attend only within an
    example, and the first label of every example is masked so no loss crosses a boundary."""
    rows: list[tuple[list[int], list[int], list[int]]] = []
    for members in pack_bins(examples, max_length):
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for i in members:
            ex = examples[i]
            ids += ex.input_ids
            labels += [IGNORE] + ex.labels[1:]
            pos += list(range(len(ex.input_ids)))
        rows.append((ids, labels, pos))
    return rows


def pack_bins(examples: Sequence[Example], max_length: int) -> list[list[int]]:
    """The example indices of each packed row, in the order they are concatenated (the exact
    replay needs to know which record each token came from)."""
    import bisect

    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    bins: list[list[int]] = []  # example indices per row
    free: list[tuple[int, int]] = []  # (space left, row number), sorted
    for i in order:
        n = len(examples[i].input_ids)
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            space, row = free.pop(k)
            bins[row].append(i)
            bisect.insort(free, (space - n, row))
        else:
            bins.append([i])
            bisect.insort(free, (max_length - n, len(bins) - 1))
    return [sorted(members) for members in bins]  # snapshot order inside a row
