#!/usr/bin/env python3
"""Trains the embedded default model's tokenizer: a byte-level BPE (as GPT-2/Qwen use) with a
4096-token vocabulary, on the pretraining corpus, with Hugging Face's `tokenizers` library.

Usage: python examples/default-model/train-tokenizer.py CORPUS.txt OUT_DIR
Writes OUT_DIR/tokenizer.json and tokenizer_config.json (ChatML chat template, eos <|endoftext|>).
"""
import json
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

corpus, out = sys.argv[1], sys.argv[2]
special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
trainer = trainers.BpeTrainer(vocab_size=4096, min_frequency=2, special_tokens=special,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train([corpus], trainer)
tok.save(f"{out}/tokenizer.json")
chatml = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
config = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": None,
    "eos_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "unk_token": None,
    "add_bos_token": False,
    "add_eos_token": False,
    "model_max_length": 1024,
    "chat_template": chatml,
    "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
}
with open(f"{out}/tokenizer_config.json", "w") as f:
    json.dump(config, f, indent=2, ensure_ascii=False)
print(json.dumps({"vocab_size": tok.get_vocab_size()}))
