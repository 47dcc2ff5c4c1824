"""Parameter counts and training memory per GPU of a megatron layout (analytic, no torch).

Everything is in bytes and follows megatron-core's mixed-precision recipe: bf16 weights, fp32
gradient buffers (`main_grad`), and an Adam optimizer holding fp32 master weights and the fp32
moments m and v. With the distributed optimizer (ZeRO-1) the optimizer part is sharded across
the data-parallel ranks, which is Megatron-LM's documented 6 + 12/DP bytes per parameter
(18 without it).

Activations follow Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models" (arXiv 2205.05198), section 4.1, whose per-layer count for a GPT layer with
16-bit activations and 1-byte dropout masks is

    s*b*h * (34 + 5*a*s/h)                                 (no parallelism)
    s*b*h * (10 + 24/t + 5*a*s/(h*t))                      (tensor parallel t)
    s*b*h/t * (34 + 5*a*s/h)                               (tensor + sequence parallel)
    2*s*b*h   (layer input only)                            (full recomputation)

(s sequence length, b micro batch, h hidden, a attention heads). The GPT terms are, per layer:
layer-norm inputs 4sbh, attention input 2sbh, MLP input 2sbh and two dropout masks 2sbh
(replicated across TP ranks unless sequence parallel), and split across TP: Q, K, V and the
output projection's input 8sbh, the MLP's two inner activations 16sbh, and the attention
scores 5as^2b (softmax output 2, dropout mask 1, dropout output 2). `layer_activation_bytes`
keeps that structure but counts the terms of the models we train: grouped-query attention
(K and V are kv_heads*head_dim wide), a gated MLP of width f (gate and up outputs 4sbf plus the
down projection's input 2sbf, where GeLU's 4h MLP has 16sbh), no dropout (RL fine-tuning runs
with dropout 0), and flash attention, which does not keep the s x s scores. With MHA, f = 4h,
GeLU, dropout and no flash attention it is Korthikanti's formula exactly (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

from megatron_toolrl.models.arch import ArchSpec
from megatron_toolrl.models.builder import padded_vocab_size

BF16 = 2
FP32 = 4
MAKE_VOCAB_DIVISIBLE_BY = 128  # ModelConfig.make_vocab_size_divisible_by default (Megatron-LM's)


def _attention_params(arch: ArchSpec) -> tuple[int, int]:
    """(TP-split, replicated) parameters of one attention block."""
    q = arch.num_attention_heads * arch.head_dim
    kv = arch.num_kv_heads * arch.head_dim
    split = arch.hidden_size * q + 2 * arch.hidden_size * kv + q * arch.hidden_size
    if arch.qkv_bias:
        split += q + 2 * kv
    replicated = 2 * arch.head_dim if arch.qk_norm else 0  # q_layernorm and k_layernorm
    return split, replicated


def layer_params(arch: ArchSpec) -> tuple[int, int]:
    """(TP-split, replicated) parameters of one transformer layer."""
    attn_split, attn_rep = _attention_params(arch)
    mlp = 3 * arch.hidden_size * arch.ffn_hidden_size  # gate, up, down
    return attn_split + mlp, attn_rep + 2 * arch.hidden_size  # + the two RMSNorm weights


def count_parameters(arch: ArchSpec) -> int:
    """Parameters of the HF model (unpadded vocabulary, tied embeddings counted once).

    Equals `models.count_parameters_on_meta` (megatron's own module tree) and the published counts.
    """
    split, replicated = layer_params(arch)
    embeddings = arch.vocab_size * arch.hidden_size * (1 if arch.tie_word_embeddings else 2)
    return arch.num_layers * (split + replicated) + embeddings + arch.hidden_size  # + final norm


def params_per_gpu(arch: ArchSpec, tp: int, pp: int) -> int:
    """Parameters held by the most loaded GPU of a TP x PP layout (padded vocabulary, as megatron).

    The first pipeline stage holds the input embedding; the last holds the final norm and the
    output layer, which with tied embeddings and PP > 1 is a second copy of the embedding
    (megatron keeps one on each end and all-reduces their gradients).
    """
    split, replicated = layer_params(arch)
    per_layer = split // tp + replicated
    layers = arch.num_layers // pp
    vocab_rows = padded_vocab_size(arch.vocab_size, MAKE_VOCAB_DIVISIBLE_BY, tp) // tp
    embedding = vocab_rows * arch.hidden_size
    output = embedding if (not arch.tie_word_embeddings or pp > 1) else 0
    if pp == 1:
        return layers * per_layer + embedding + output + arch.hidden_size
    first = layers * per_layer + embedding
    last = layers * per_layer + output + arch.hidden_size
    return max(first, last)


def weight_grad_optimizer_bytes(n_params: int, dp: int, distributed_optimizer: bool) -> tuple[float, float, float]:
    """(bf16 weights, fp32 main grads, fp32 master + Adam m + v) bytes for `n_params` on one GPU."""
    optimizer = 3 * FP32 * n_params
    if distributed_optimizer:
        optimizer /= dp
    return float(BF16 * n_params), float(FP32 * n_params), float(optimizer)


@dataclass(frozen=True)
class ActivationShape:
    """The layer shape that activation memory depends on."""

    hidden: int
    heads: int
    q_width: int
    """heads * head_dim."""
    kv_width: int
    """kv_heads * head_dim (= q_width for multi-head attention)."""
    ffn: int
    gated_mlp: bool = True
    dropout: bool = False
    flash_attention: bool = True

    @classmethod
    def of(cls, arch: ArchSpec, flash_attention: bool = True) -> "ActivationShape":
        return cls(hidden=arch.hidden_size, heads=arch.num_attention_heads,
                   q_width=arch.num_attention_heads * arch.head_dim, kv_width=arch.num_kv_heads * arch.head_dim,
                   ffn=arch.ffn_hidden_size, flash_attention=flash_attention)


def layer_activation_bytes(shape: ActivationShape, seq: int, micro_batch: int, tp: int,
                           sequence_parallel: bool) -> float:
    """Activation bytes one layer keeps for its backward, per GPU (no recomputation).

    replicated = s*b*(8h + 2h*dropout)                         (norm, attention and MLP inputs, masks)
    split      = s*b*(4*(q + kv) + (6 if gated else 4)*f)     (Q, K, V, attention output, MLP inner)
               + (2 + 3*dropout)*a*s^2*b  unless flash attention
    bytes      = replicated / (t if sequence parallel else 1) + split / t
    """
    s, b, h = seq, micro_batch, shape.hidden
    replicated = s * b * h * (8 + (2 if shape.dropout else 0))
    split = s * b * (4 * (shape.q_width + shape.kv_width) + (6 if shape.gated_mlp else 4) * shape.ffn)
    if not shape.flash_attention:
        split += (2 + (3 if shape.dropout else 0)) * shape.heads * s * s * b
    return replicated / (tp if sequence_parallel else 1) + split / tp


def layer_input_bytes(hidden: int, seq: int, micro_batch: int, tp: int, sequence_parallel: bool) -> float:
    """What full recomputation keeps per layer: its bf16 input, 2*s*b*h (split by TP under SP)."""
    return BF16 * seq * micro_batch * hidden / (tp if sequence_parallel else 1)


def activation_bytes(shape: ActivationShape, num_layers: int, seq: int, micro_batch: int, tp: int, pp: int,
                     sequence_parallel: bool, full_recompute: bool, microbatches_in_flight: int | None = None) -> float:
    """Activation bytes on the first pipeline stage, which holds the most under 1F1B.

    Under 1F1B the first stage keeps the activations of min(pp, micro batches) micro batches of
    its num_layers/pp layers: `microbatches_in_flight` defaults to pp (enough micro batches to
    fill the pipeline), so the total is num_layers layers' worth, independent of pp. With full
    recomputation each kept layer stores only its input, plus the full activations of the one
    layer being recomputed during the backward.
    """
    in_flight = pp if microbatches_in_flight is None else max(1, min(pp, microbatches_in_flight))
    layers_kept = (num_layers // pp) * in_flight
    full = layer_activation_bytes(shape, seq, micro_batch, tp, sequence_parallel)
    if full_recompute:
        return layers_kept * layer_input_bytes(shape.hidden, seq, micro_batch, tp, sequence_parallel) + full
    return layers_kept * full


def logits_bytes(vocab_size: int, seq: int, micro_batch: int, tp: int) -> float:
    """The last stage's output: bf16 logits plus the fp32 copy the vocab-parallel cross entropy
    (and the logprob computation) works on, 6*s*b*V/t."""
    vocab = padded_vocab_size(vocab_size, MAKE_VOCAB_DIVISIBLE_BY, tp)
    return (BF16 + FP32) * seq * micro_batch * vocab / tp
