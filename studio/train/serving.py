"""Inference: one loaded base model hosting several LoRA adapters, switched with `set_adapter`
without reloading the base (the way LoRA serving systems host many fine-tunes on one GPU).
The CLI's `model generate`, the GUI playground and the node API all go through AdapterServer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.errors import InvalidInput

BASE = "__base__"  # adapter name meaning "the base model, adapters disabled"


def load_base(base_dir: Path, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from studio.train.catalog import load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype or torch.float32)
    model.to(device)
    model.eval()
    return model, tokenizer


class _TokenStream:
    """A transformers streamer (put/end) that decodes incrementally and calls on_token(text)."""

    def __init__(self, tokenizer: Any, on_token: Callable[[str], None], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.on_token = on_token
        self.skip = prompt_len
        self.ids: list[int] = []
        self.sent = ""

    def put(self, value: Any) -> None:
        ids = value.reshape(-1).tolist()
        if self.skip:
            # The first put is the prompt itself.
            self.skip = 0
            return
        self.ids += ids
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # wait for the rest of a multi-byte character
        if len(text) > len(self.sent):
            self.on_token(text[len(self.sent) :])
            self.sent = text

    def end(self) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if len(text) > len(self.sent):
            self.on_token(text[len(self.sent) :])
            self.sent = text


class AdapterServer:
    """One base model in memory, any number of named adapters on top of it."""

    def __init__(self, base_dir: Path, device: str = "cpu") -> None:
        self.base_dir = Path(base_dir)
        self.device = device
        self.base, self.tokenizer = load_base(self.base_dir, device)
        self.model: Any = None  # PeftModel once the first adapter is added
        self.adapters: dict[str, Path] = {}
        self.active: str | None = None
        self.lock = threading.RLock()

    def add_adapter(self, name: str, adapter_dir: Path) -> None:
        from peft import PeftModel

        with self.lock:
            if name in self.adapters:
                return
            if self.model is None:
                self.model = PeftModel.from_pretrained(
                    self.base, str(adapter_dir), adapter_name=name, is_trainable=False
                )
            else:
                self.model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
            self.model.eval()
            self.adapters[name] = Path(adapter_dir)
            self.active = name

    def remove_adapter(self, name: str) -> None:
        with self.lock:
            if name not in self.adapters:
                return
            others = [n for n in self.adapters if n != name]
            if self.model is not None:
                if self.active == name and others:
                    self.model.set_adapter(others[0])
                    self.active = others[0]
                self.model.delete_adapter(name) if others else None
            del self.adapters[name]
            if not others:
                # Last adapter gone: go back to the bare base model.
                self.base = self.model.unload() if self.model is not None else self.base
                self.model = None
                self.active = None

    def set_adapter(self, name: str) -> None:
        with self.lock:
            if name == BASE:
                self.active = BASE
                return
            if name not in self.adapters:
                raise InvalidInput(f"Adapter {name!r} is not loaded on this server.")
            self.model.set_adapter(name)
            self.active = name

    def generate(
        self,
        adapter: str | None,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        seed: int = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        chat: bool = True,
        on_token: Callable[[str], None] | None = None,
    ) -> str:
        import contextlib

        import torch

        from studio.train.data import chat_prompt

        if max_new_tokens < 1:
            raise InvalidInput("max_new_tokens must be at least 1.")
        if temperature < 0:
            raise InvalidInput("temperature must be 0 (greedy) or positive.")
        with self.lock:
            name = adapter or self.active or BASE
            if name != BASE:
                self.set_adapter(name)
            model = self.model if self.model is not None else self.base
            text = chat_prompt(self.tokenizer, prompt, chat=chat)
            enc = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")
            input_ids = enc["input_ids"].to(self.device)
            limit = int(getattr(self.base.config, "max_position_embeddings", 0) or 0)
            if limit and input_ids.shape[1] + max_new_tokens > limit:
                raise InvalidInput(
                    f"Prompt ({input_ids.shape[1]} tokens) + {max_new_tokens} new tokens exceed the "
                    f"model's context of {limit}.",
                    hint="Shorten the prompt or ask for fewer new tokens.",
                )
            kwargs: dict[str, Any] = dict(
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
            if temperature > 0:
                kwargs.update(
                    do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k or None
                )
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if on_token is not None:
                kwargs["streamer"] = _TokenStream(self.tokenizer, on_token, input_ids.shape[1])
            disable = (
                self.model.disable_adapter()
                if (name == BASE and self.model is not None)
                else contextlib.nullcontext()
            )
            # A private generator keeps sampling deterministic for a seed without touching
            # global RNG state that other work relies on.
            with torch.random.fork_rng(devices=[]), torch.no_grad(), disable:
                torch.manual_seed(seed)
                out = model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    **kwargs,
                )
            new = out[0, input_ids.shape[1] :]
            return str(self.tokenizer.decode(new, skip_special_tokens=True))
