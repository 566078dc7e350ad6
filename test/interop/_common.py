"""Shared helpers for the interop reference scripts (make_reference.py, peft_check.py,
transformers_check.py). Importing this module pins torch to 1 thread and deterministic kernels."""
import json
import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

ATTN_IMPL = "eager"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def versions():
    import platform

    import peft
    import safetensors
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
    }


def load_model(path, dtype=torch.float32, **config_overrides):
    """Load an HF causal LM folder with eager attention in `dtype` (eval mode)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path)
    for k, v in config_overrides.items():
        setattr(config, k, v)
    model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=dtype, attn_implementation=ATTN_IMPL)
    model.eval()
    return model


def adapter_key(param_name):
    """PeftModel parameter name -> key in adapter_model.safetensors (adapter name stripped)."""
    key = param_name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")
    # DoRA: the parameter lora_magnitude_vector.default.weight is saved as ...lora_magnitude_vector
    return key.replace(".lora_magnitude_vector.default.weight", ".lora_magnitude_vector")


def lora_params(peft_model):
    return {adapter_key(n): p for n, p in peft_model.named_parameters()
            if ".lora_A." in n or ".lora_B." in n or ".lora_magnitude_vector." in n}


def to_f32(t):
    t = t.detach()
    return t.to(torch.float32).contiguous() if t.is_floating_point() else t.contiguous()


def save_tensors(path, tensors):
    from safetensors.torch import save_file

    save_file({k: to_f32(v) for k, v in sorted(tensors.items())}, path)


def inventory(tensors):
    names = {torch.float32: "F32", torch.int64: "I64", torch.uint8: "U8"}
    return [[k, names.get(to_f32(v).dtype, str(v.dtype)), list(v.shape)] for k, v in sorted(tensors.items())]


def maxabs(a, b, mask=None):
    d = (a.detach().double() - b.detach().double()).abs()
    if mask is not None:
        d = d[mask.bool()]
    return float(d.max()) if d.numel() else 0.0


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=str)
        f.write("\n")


@torch.no_grad()
def greedy_no_cache(model, prompt, steps):
    """Greedy decoding by argmax of full-sequence logits (no KV cache); returns (ids, min top1-top2 margin)."""
    ids = prompt.clone()
    margin = float("inf")
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits[0, -1].double()
        top = torch.topk(logits, 2)
        margin = min(margin, float(top.values[0] - top.values[1]))
        ids = torch.cat([ids, top.indices[:1].view(1, 1)], dim=1)
    return ids, margin


@torch.no_grad()
def hf_generate(model, prompt, steps):
    """HF generate (greedy, KV cache), EOS stopping disabled so the output is always prompt+steps long."""
    from transformers import GenerationConfig

    gc = GenerationConfig(
        max_new_tokens=steps, min_new_tokens=0, do_sample=False, eos_token_id=None, pad_token_id=0, bos_token_id=None
    )
    return model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=gc)


def masked_loss(logits, labels):
    """HF ForCausalLMLoss recomputed: shift, fp32, mean CE over labels != -100."""
    logits = logits.float()[:, :-1].reshape(-1, logits.shape[-1])
    target = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(logits, target, ignore_index=-100)
