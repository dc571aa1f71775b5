"""The small character-level GPT of the "let's build GPT from scratch" lecture, written once as a
function of a ``torch``-like module: ``build(torch, ...)`` makes it with real PyTorch, and
``build(jitgrad, ...)`` with jitgrad, from the same lines (examples/train_gpt.py trains it;
benchmarks/models.py times it against PyTorch).

Token and position embeddings, ``n_layer`` blocks of causal self-attention (``n_head`` heads, a
``tril`` mask applied with ``masked_fill``, softmax, dropout) and a ReLU MLP (4x, dropout), each
behind a LayerNorm and inside a residual; a final LayerNorm and a linear head over the
vocabulary; cross-entropy.

>>> import jitgrad
>>> model = build(jitgrad, vocab=65, n_layer=1, n_embd=16, block=8)
>>> idx = jitgrad.zeros(2, 8, dtype=jitgrad.int64)
>>> logits, loss = model(idx, idx)
>>> tuple(logits.shape), round(loss.item(), 1)
((2, 8, 65), 4.2)
"""

from __future__ import annotations


def build(torch, vocab: int, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, block: int = 32,
          dropout: float = 0.1):
    """The GPT language model, with ``torch`` the framework's module (``torch`` or ``jitgrad``)."""
    nn = torch.nn
    F = torch.nn.functional

    class Head(nn.Module):
        """One head of causal self-attention."""

        def __init__(self, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block, block)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            k = self.key(x)    # (B, T, hs)
            q = self.query(x)  # (B, T, hs)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            wei = F.softmax(wei, dim=-1)
            wei = self.dropout(wei)
            v = self.value(x)
            return wei @ v     # (B, T, hs)

    class MultiHeadAttention(nn.Module):
        def __init__(self, num_heads, head_size):
            super().__init__()
            self.heads = nn.ModuleList([Head(head_size) for _ in range(num_heads)])
            self.proj = nn.Linear(head_size * num_heads, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            out = torch.cat([h(x) for h in self.heads], dim=-1)
            return self.dropout(self.proj(out))

    class FeedForward(nn.Module):
        def __init__(self, n_embd):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(n_embd, 4 * n_embd),
                nn.ReLU(),
                nn.Linear(4 * n_embd, n_embd),
                nn.Dropout(dropout),
            )

        def forward(self, x):
            return self.net(x)

    class Block(nn.Module):
        """Communication (attention) then computation (MLP), each pre-normed, with residuals."""

        def __init__(self, n_embd, n_head):
            super().__init__()
            self.sa = MultiHeadAttention(n_head, n_embd // n_head)
            self.ffwd = FeedForward(n_embd)
            self.ln1 = nn.LayerNorm(n_embd)
            self.ln2 = nn.LayerNorm(n_embd)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPTLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.block_size = block
            self.token_embedding_table = nn.Embedding(vocab, n_embd)
            self.position_embedding_table = nn.Embedding(block, n_embd)
            self.blocks = nn.Sequential(*[Block(n_embd, n_head=n_head) for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.lm_head = nn.Linear(n_embd, vocab)
            self.apply(self._init_weights)

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            tok_emb = self.token_embedding_table(idx)                    # (B, T, C)
            pos_emb = self.position_embedding_table(torch.arange(T))     # (T, C)
            x = tok_emb + pos_emb
            x = self.blocks(x)
            x = self.ln_f(x)
            logits = self.lm_head(x)                                     # (B, T, vocab)
            if targets is None:
                return logits, None
            B, T, C = logits.shape
            loss = F.cross_entropy(logits.view(B * T, C), targets.view(B * T))
            return logits, loss

        def generate(self, idx, max_new_tokens):
            """Extend ``idx`` (B, T) by ``max_new_tokens`` sampled tokens."""
            for _ in range(max_new_tokens):
                idx_cond = idx[:, -self.block_size:]
                logits, _ = self(idx_cond)
                probs = F.softmax(logits[:, -1, :], dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    return GPTLanguageModel()


def loss_fn(model, x, y):
    """The training loss of ``model`` on a batch: the function to differentiate."""
    return model(x, y)[1]
