"""Architecture cards: what a loaded model *is*, read from its config, never from its name.

The seed notebook called ``CobraMamba/mamba-gpt-3b-v3`` "Mamba"; its config says
``LlamaForCausalLM``. So the family comes from ``config.model_type`` / ``architectures`` and a
name that claims otherwise earns a visible warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from comparer import analytic

SSM_MODEL_TYPES = {"mamba", "mamba2", "falcon_mamba"}
HYBRID_MODEL_TYPES = {"jamba", "zamba", "zamba2", "bamba", "falcon_h1", "nemotron_h",
                      "granitemoehybrid", "lfm2", "plamo2"}
SSM_CLASS_MARKERS = ("Mamba",)

SSM, TRANSFORMER, HYBRID = "SSM", "Transformer", "hybrid"


def family_of(config) -> str:
    """SSM / Transformer / hybrid from ``model_type`` first, then the architecture class names."""
    model_type = getattr(config, "model_type", "") or ""
    if model_type in SSM_MODEL_TYPES:
        return SSM
    if model_type in HYBRID_MODEL_TYPES:
        return HYBRID
    architectures = getattr(config, "architectures", None) or []
    if any(marker in name for name in architectures for marker in SSM_CLASS_MARKERS):
        return SSM
    return TRANSFORMER


@dataclass(frozen=True)
class ArchShape:
    """The sizes that decide memory traffic; zero where a family has no such part."""

    family: str
    model_type: str
    architectures: tuple[str, ...]
    n_layers: int
    hidden_size: int
    n_heads: int = 0
    n_kv_heads: int = 0
    head_dim: int = 0
    d_inner: int = 0
    d_state: int = 0
    d_conv: int = 0
    max_positions: int | None = None
    vocab_size: int = 0

    @classmethod
    def from_config(cls, config) -> "ArchShape":
        family = family_of(config)
        common = dict(
            family=family,
            model_type=getattr(config, "model_type", ""),
            architectures=tuple(getattr(config, "architectures", None) or ()),
            n_layers=int(config.num_hidden_layers),
            hidden_size=int(config.hidden_size),
            max_positions=getattr(config, "max_position_embeddings", None),
            vocab_size=int(getattr(config, "vocab_size", 0) or 0),
        )
        if family == SSM:
            return cls(**common, **_ssm_sizes(config))
        return cls(**common, **_attention_sizes(config))

    def kv_bytes_per_token(self, bytes_per_elem: int) -> int:
        if self.family == SSM:
            return 0
        return analytic.kv_bytes_per_token(self.n_layers, self.n_kv_heads, self.head_dim, bytes_per_elem)

    def state_bytes(self, bytes_per_elem: int) -> int:
        if self.family != SSM:
            return 0
        return analytic.ssm_state_bytes(self.n_layers, self.d_inner, self.d_state, self.d_conv, bytes_per_elem)

    @property
    def attn_width(self) -> int:
        return self.n_heads * self.head_dim


def _ssm_sizes(config) -> dict:
    d_inner = getattr(config, "intermediate_size", None) or config.expand * config.hidden_size
    return dict(d_inner=int(d_inner), d_state=int(config.state_size), d_conv=int(config.conv_kernel))


def _attention_sizes(config) -> dict:
    n_heads = int(config.num_attention_heads)
    n_kv_heads = int(getattr(config, "num_key_value_heads", None) or n_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    return dict(n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=int(head_dim))


FAST = "comparer fast"
HF = "transformers generate"
HF_REFERENCE_SCAN = "transformers generate, reference scan"  # a Mamba without fused kernels


@dataclass(frozen=True)
class KernelPath:
    """How an engine computes, as the engine itself says it (``Engine.describe``). Cards render it
    and plots group by its fields; nothing is parsed back from the text.

    ``engine``: FAST, HF or HF_REFERENCE_SCAN, the kind the two panes compare. ``kernels``: the kernel
    family (e.g. "Triton", "mamba-ssm + causal-conv1d", "compiled C scan (CPU)", "PyTorch").
    ``prefill`` / ``decode``: what each phase runs, for people. ``cuda_graph``: decode replays CUDA
    graphs. ``devices``: how many devices its layers sit on. ``compile_s`` / ``capture_s``: time spent at
    load compiling ``compiled`` and capturing graphs (never inside a measurement)."""

    engine: str
    kernels: str
    prefill: str
    decode: str
    cuda_graph: bool = False
    devices: int = 1
    compile_s: float | None = None
    capture_s: float | None = None
    compiled: str = ""
    graphs: int = 1  # decode graphs captured (one per cache bucket for the fast Transformer)

    def describe(self) -> str:
        if not self.engine:  # not built yet (ZeroGPU: built in the GPU task): ``kernels`` says so
            return self.kernels
        devices = f", layers on {self.devices} devices" if self.devices > 1 else ""
        return f"{self.engine} ({self.kernels}{devices}): prefill {self.prefill}; decode {self.decode}"

    def load_notes(self) -> list[str]:
        """What the load spent before any measurement, for the card's notes."""
        notes = []
        if self.compile_s is not None:
            notes.append(f"{self.compiled or 'kernels'} compiled or loaded from cache at load in {self.compile_s:.1f} s")
        if self.capture_s:
            what = f"{self.graphs} decode graphs (kernels compiled)" if self.graphs > 1 else "decode graph"
            notes.append(f"{what} captured at load in {self.capture_s:.2f} s")
        return notes


def short_path(path: dict) -> str:
    """Legend-sized name of a stored ``KernelPath`` (a record's ``card["path"]``), so the eager and fast
    runs of one model can share a plot."""
    if path["engine"] != FAST:
        return path["engine"]
    return f"{FAST}, {path['kernels']}, {'CUDA graph' if path['cuda_graph'] else 'eager'}"


@dataclass
class ArchitectureCard:
    """Everything a visitor needs to judge a pane's numbers: what runs, how big, on which path."""

    model_id: str
    family: str
    model_type: str
    architectures: list[str]
    n_params: int
    n_layers: int
    hidden_size: int
    dtype: str
    device: str
    device_map: str
    kv_bytes_per_token: int
    ssm_state_bytes: int
    weights: str  # "trained" or "random (untrained)"
    max_positions: int | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    path: KernelPath | None = None  # how it runs: what the engine describes (engines.select, deferred)
    # what the analytic bounds count (analytic.py): weights of the repeated blocks (matrices and conv
    # filters, embeddings and head excluded), the LM head, and the parameters a decode step reads
    layer_weight_params: int = 0
    head_params: int = 0
    decode_read_params: int = 0
    attn_width: int = 0  # query heads x head dim (0: no attention)
    stored_kernel_path: str = ""  # a card stored before the path was structured: its text alone
    data: str | None = None  # what it was trained on (presets.json), for the card's first line
    test_perplexity: float | None = None  # held-out, where comparer trained it (the demo pair's training.json)

    @property
    def kernel_path(self) -> str:
        if self.path:
            return self.path.describe()
        return self.stored_kernel_path or "not built yet"

    @property
    def engine(self) -> str:
        """The kind of engine, for comparing the two sides (race.path_notice)."""
        return self.path.engine if self.path else ""

    def to_dict(self) -> dict:
        """What a record stores: the fields, the structured path, and its text for people and CSV."""
        return {**asdict(self), "kernel_path": self.kernel_path, "engine": self.engine}

    @classmethod
    def from_dict(cls, raw: dict) -> "ArchitectureCard":
        """A stored card back (review store, records): the derived texts dropped, the path rebuilt; a card
        stored before the path was structured keeps its text (``stored_kernel_path``)."""
        fields = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if isinstance(fields.get("path"), dict):
            fields["path"] = KernelPath(**fields["path"])
        elif raw.get("kernel_path"):
            fields["stored_kernel_path"] = raw["kernel_path"]
        return cls(**fields)


def name_warnings(model_id: str, family: str, shape: ArchShape) -> list[str]:
    """Flag a name that claims an architecture the config does not have."""
    name = model_id.lower()
    arch = ", ".join(shape.architectures) or shape.model_type
    if "mamba" in name and family != SSM:
        return [f"Named '{model_id}' but its config is {shape.model_type} ({arch}): this model is a "
                f"{family}, not a Mamba state-space model."]
    if family == SSM and any(t in name for t in ("llama", "gpt", "pythia")) and "mamba" not in name:
        return [f"Named '{model_id}' but its config is {shape.model_type} ({arch}): a state-space model."]
    return []


@dataclass(frozen=True)
class ParamCounts:
    """How a module's parameters split, for the bounds (see ``param_counts``)."""

    total: int
    layer_weights: int
    head: int
    decode_read: int


def param_counts(model) -> ParamCounts:
    """Count from the module itself: the input embedding and the LM head (tied or not) apart from the
    layers' weights (every parameter of two or more dimensions: matrices, conv filters, Mamba's A),
    and what one decode step reads: everything but an untied input embedding, of which one row."""
    params = list(dict.fromkeys(model.parameters()))  # a tied head is one Parameter
    embedding = model.get_input_embeddings().weight
    head_module = model.get_output_embeddings()
    head = head_module.weight if head_module is not None else None
    apart = [p for p in (embedding, head) if p is not None]
    layers = sum(p.numel() for p in params if p.dim() >= 2 and all(p is not q for q in apart))
    total = sum(p.numel() for p in params)
    untied = head is not None and head is not embedding
    read = total - (embedding.numel() - embedding.shape[-1] if untied else 0)
    return ParamCounts(total, layers, head.numel() if head is not None else 0, read)


def build_card(model_id: str, config, n_params: int, dtype: str, device: str, device_map: str,
               random_weights: bool, notes: list[str] | None = None,
               counts: ParamCounts | None = None) -> ArchitectureCard:
    """Assemble the card from the config and the facts of the load (dtype, device); the engine adds its path."""
    shape = ArchShape.from_config(config)
    elem_b = analytic.dtype_bytes(dtype)
    return ArchitectureCard(
        model_id=model_id, family=shape.family, model_type=shape.model_type,
        architectures=list(shape.architectures), n_params=n_params, n_layers=shape.n_layers,
        hidden_size=shape.hidden_size, dtype=dtype.replace("torch.", ""), device=device,
        device_map=device_map, kv_bytes_per_token=shape.kv_bytes_per_token(elem_b),
        ssm_state_bytes=shape.state_bytes(elem_b),
        weights="random (untrained)" if random_weights else "trained",
        max_positions=shape.max_positions, warnings=name_warnings(model_id, shape.family, shape),
        notes=list(notes or []),
        layer_weight_params=counts.layer_weights if counts else 0, head_params=counts.head if counts else 0,
        decode_read_params=counts.decode_read if counts else 0,
        attn_width=shape.attn_width if shape.family != SSM else 0,
    )
