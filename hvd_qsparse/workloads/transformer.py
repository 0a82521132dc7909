"""A GPT-style decoder-only character language model: the job's transformer workload.

Its gradient mixes one large tied embedding/head matrix with many 160-wide LayerNorm and bias
vectors, the layer mix compressors meet in language-model training.
"""
import torch
from torch import nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t sees positions ≤ t only."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # one matrix for q, k and v: one matmul, one tensor
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=2)
        q, k, v = (t.view(batch, steps, self.heads, dim // self.heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(out.transpose(1, 2).reshape(batch, steps, dim))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """Token + learned position embeddings, ``layers`` blocks, final LayerNorm, tied head."""

    def __init__(self, vocab: int = 256, context: int = 64, dim: int = 160, layers: int = 4, heads: int = 4):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(layers)))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        # weight tying: the head *is* the embedding (one Parameter), which saves vocab × dim
        # parameters and means optimizers and exchanges see that tensor once
        self.head.weight = self.tok.weight
        self.apply(_gpt2_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, vocab) for int64 tokens ``x`` of shape (B, T), T ≤ context."""
        steps = x.shape[1]
        if steps > self.context:
            raise ValueError(f"sequence of {steps} tokens is longer than the context ({self.context})")
        positions = torch.arange(steps, device=x.device)
        h = self.blocks(self.tok(x) + self.pos(positions))
        return self.head(self.ln_f(h))


def _gpt2_init(module: nn.Module) -> None:
    # GPT-2's scheme: small normal weights keep the initial logits near zero, so the first
    # loss is close to ln(vocab); LayerNorm keeps its default ones and zeros
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def char_transformer(seed: int = 0, vocab: int = 256, context: int = 64, dim: int = 160,
                     layers: int = 4, heads: int = 4) -> nn.Module:
    """The seeded character transformer.

    At the defaults: 1,288,640 parameters in 52 tensors (the tied embedding/head counted once);
    its untrained loss is about ln 256 ≈ 5.55 nats. Forward + backward of 16 × 64 tokens takes
    about 115–135 ms on one CPU core.

    Args:
        seed: seeds torch's global generator before the layers are built, as ``digits_mlp`` does.
        vocab: token values (256 for bytes).
        context: longest sequence (learned positions).
        dim: model width.
        layers: transformer blocks.
        heads: attention heads (must divide ``dim``).
    """
    torch.manual_seed(seed)
    return CharTransformer(vocab=vocab, context=context, dim=dim, layers=layers, heads=heads)
