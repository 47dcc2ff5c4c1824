"""An HF transformers copy of the model: the independent reference for checking pushed weights.

Used by the sync check when no megatron trainer supplies the reference, by the tests and by the
benchmark. The engines run vLLM kernels; this runs plain PyTorch, so agreement means the weights
really arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from megatron_toolrl.errors import CheckpointError


class HFReference:
    """An HF causal LM held in `dtype` (fp32 for exact comparisons)."""

    def __init__(self, hf_dir: str, dtype: torch.dtype = torch.float32):
        from transformers import AutoModelForCausalLM

        self.hf_dir = hf_dir
        self.model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=dtype).eval()
        self.tied = bool(self.model.config.get_text_config().tie_word_embeddings)

    def named_weights(self) -> dict[str, torch.Tensor]:
        """Detached copies of every weight under its HF name; a tied lm_head is left out (it is the embedding)."""
        return {
            name: tensor.detach().clone()
            for name, tensor in self.model.state_dict().items()
            if not (self.tied and name == "lm_head.weight")
        }

    @torch.no_grad()
    def load(self, named: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy tensors in by name; an unknown name or a shape mismatch is an error. Returns the count."""
        params = self.model.state_dict()
        count = 0
        for name, tensor in named:
            if name not in params:
                raise CheckpointError(f"tensor {name!r} is not a weight of the HF model", path=self.hf_dir)
            if tuple(params[name].shape) != tuple(tensor.shape):
                raise CheckpointError(
                    f"tensor {name!r} has shape {tuple(tensor.shape)}, the model expects {tuple(params[name].shape)}",
                    path=self.hf_dir,
                )
            params[name].copy_(tensor)
            count += 1
        return count

    @torch.no_grad()
    def prompt_logprobs(self, token_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """log p(t[j+1] | t[:j+1]) for each sequence, one forward pass per sequence (no padding effects)."""
        rows = []
        for ids in token_ids:
            x = torch.tensor([list(ids)], dtype=torch.long)
            logits = self.model(x).logits[0, :-1].float()  # (L-1, V)
            lp = torch.log_softmax(logits, dim=-1).gather(-1, x[0, 1:, None])[:, 0]
            rows.append(lp.tolist())
        return rows
