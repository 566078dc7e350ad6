"""Reference for test/gguf/tokenizer-gguf.test.ts: transformers' tokenizer built from a GGUF file.

    make-gguf SPEC.json OUT.gguf [SPEC.json OUT.gguf ...]
                                   write tokenizer-only GGUFs (gguf.GGUFWriter) from an HF tokenizer.json
    reference JOBS.json            for each job {"gguf": path, ...CASES}: ids, decodes, chat ids and
                                   special tokens from AutoTokenizer.from_pretrained(dir, gguf_file=name);
                                   a JSON list on stdout (one process: transformers is imported once)

SPEC: {"tokenizer_json": path, "kind": "llama" | "gpt2", "arch": "llama", "pre": name | null,
       "add_bos": bool | null, "add_eos": bool | null, "add_space_prefix": bool | null,
       "bos": id, "eos": id, "unk": id | null, "pad": id | null, "chat_template": str | null,
       "spaces": bool (store all-U+2581 tokens as real spaces, as Gemma files do),
       "merges": bool (SentencePiece: store the merges too; by default they are left out, as llama.cpp does)}
SentencePiece scores are -id for normal tokens and 0 otherwise (the order of a SentencePiece BPE model).
CASES: {"texts": [str], "decode": [[id]], "chats": [{"messages": [...], "add_generation_prompt": bool}]}
"""
import json
import os
import sys
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

# llama.cpp's llama_token_type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def make_gguf(spec_path, out):
    import re

    import gguf

    spec = json.load(open(spec_path, encoding="utf-8"))
    tj = json.load(open(spec["tokenizer_json"], encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    size = max([*vocab.values(), *added.keys()]) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [UNUSED] * size
    for t, i in vocab.items():
        tokens[i] = t
        types[i] = NORMAL
    unk = tj["model"].get("unk_token")
    for i, a in added.items():
        tokens[i] = a["content"]
        types[i] = CONTROL if a["special"] else USER_DEFINED
    kind = spec["kind"]
    for i, t in enumerate(tokens):
        if kind == "llama" and t == unk:
            types[i] = UNKNOWN
        elif kind == "llama" and re.fullmatch(r"<0x[0-9A-F]{2}>", t):
            types[i] = BYTE
    if spec.get("spaces"):
        tokens = [" " * len(t) if len(t) > 1 and set(t) == {"\u2581"} else t for t in tokens]

    w = gguf.GGUFWriter(out, spec.get("arch", "llama"))
    arch = spec.get("arch", "llama")
    # Just enough model hyperparameters for transformers' config reader; no tensors.
    w.add_context_length(2048)
    w.add_block_count(1)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_uint32(f"{arch}.vocab_size", size)
    w.add_tokenizer_model(kind)
    if spec.get("pre"):
        w.add_tokenizer_pre(spec["pre"])
    w.add_token_list(tokens)
    if kind == "llama":
        w.add_token_scores([-float(i) if types[i] == NORMAL else 0.0 for i in range(size)])
    w.add_token_types(types)
    if kind == "gpt2" or spec.get("merges"):
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        w.add_token_merges(merges)
    for key, fn in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("unk", w.add_unk_token_id), ("pad", w.add_pad_token_id)):
        if spec.get(key) is not None:
            fn(spec[key])
    if spec.get("add_bos") is not None:
        w.add_add_bos_token(spec["add_bos"])
    if spec.get("add_eos") is not None:
        w.add_add_eos_token(spec["add_eos"])
    if spec.get("add_space_prefix") is not None:
        w.add_add_space_prefix(spec["add_space_prefix"])
    if spec.get("chat_template"):
        w.add_chat_template(spec["chat_template"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def reference(jobs_path):
    jobs = json.load(open(jobs_path, encoding="utf-8"))
    json.dump([reference_one(job["gguf"], job) for job in jobs], sys.stdout, ensure_ascii=False)


def reference_one(gguf_path, cases):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf_path)), gguf_file=os.path.basename(gguf_path))
    out = {
        "class": type(tok).__name__,
        "special": {
            name: [getattr(tok, name), getattr(tok, name + "_id")]
            for name in ("bos_token", "eos_token", "pad_token", "unk_token")
        },
        "add_bos_token": bool(getattr(tok, "add_bos_token", False)),
        "add_eos_token": bool(getattr(tok, "add_eos_token", False)),
        "vocab_size": len(tok),
        "texts": [],
        "decode": [],
        "chats": [],
    }
    for text in cases.get("texts", []):
        with_special = tok(text)["input_ids"]
        plain = tok(text, add_special_tokens=False)["input_ids"]
        out["texts"].append({
            "ids": plain,
            "with_special": with_special,
            "decoded": tok.decode(plain),
            "decoded_skip": tok.decode(plain, skip_special_tokens=True),
        })
    for ids in cases.get("decode", []):
        out["decode"].append(tok.decode(ids))
    for chat in cases.get("chats", []):
        kwargs = {"add_generation_prompt": chat.get("add_generation_prompt", False)}
        text = tok.apply_chat_template(chat["messages"], tokenize=False, **kwargs)
        ids = tok.apply_chat_template(chat["messages"], tokenize=True, **kwargs)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        out["chats"].append({"text": text, "ids": list(ids)})
    if cases.get("backend_file"):
        with open(cases["backend_file"], "w", encoding="utf-8") as fh:
            fh.write(tok.backend_tokenizer.to_str())
    if cases.get("backend"):
        j = json.loads(tok.backend_tokenizer.to_str())
        j["model"] = {k: v for k, v in j["model"].items() if k not in ("vocab", "merges")}
        out["backend"] = j
    return out


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make-gguf":
        for spec, out in zip(sys.argv[2::2], sys.argv[3::2]):
            make_gguf(spec, out)
    elif cmd == "reference":
        reference(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")
