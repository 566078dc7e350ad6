// native/hf_config: each architecture's defaults for the keys config.json leaves out, transformers
// 4 (rope_theta + rope_scaling) and 5 (rope_parameters) rope keys, sliding-window layers, and
// E_MODEL_CONFIG errors that name the key.
#include "../../native/hf_config.h"

#include <string>

#include "../../native/error.h"
#include "check.h"

using lorafit::Arch;
using lorafit::Error;
using lorafit::ModelConfig;
using lorafit::parse_config;

namespace {
ModelConfig parse(const std::string& json) { return parse_config(json, "config.json"); }
const char* kTiny = R"("hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 256)";
std::string with(const char* model_type, const std::string& extra = "") {
  return std::string("{\"model_type\": \"") + model_type + "\", " + kTiny + (extra.empty() ? "" : ", " + extra) + "}";
}
}  // namespace

int main() {
  {
    const ModelConfig c = parse(with("llama"));
    CHECK(c.arch == Arch::Llama);
    CHECK_EQ(c.num_key_value_heads, 4);  // defaults to the attention heads
    CHECK_EQ(c.head_dim, 16);
    CHECK_EQ(c.max_position_embeddings, 2048);
    CHECK_EQ(c.rope_theta, 10000.0);
    CHECK(!c.tie_word_embeddings);
    CHECK_EQ(c.hidden_act, "silu");
    CHECK_EQ(c.sliding_window, 0);
    CHECK_EQ(c.bos_token_id, 1);
    CHECK(c.eos_token_ids == std::vector<int64_t>{2});
    CHECK(!c.qkv_bias && !c.gemma_norm);
  }
  {
    const ModelConfig c = parse(with("qwen2", R"("eos_token_id": [151645, 151643], "use_sliding_window": false)"));
    CHECK(c.qkv_bias);
    CHECK_EQ(c.sliding_window, 0);
    CHECK(c.eos_token_ids == (std::vector<int64_t>{151645, 151643}));
    CHECK_EQ(c.bos_token_id, -1);
  }
  {
    // Gemma 2 leaves out tie_word_embeddings (true), softcapping, query_pre_attn_scalar; even layers slide
    const ModelConfig c = parse(with("gemma2", R"("num_key_value_heads": 2, "head_dim": 16)"));
    CHECK(c.tie_word_embeddings);
    CHECK(c.gemma_norm && c.scale_embeddings && c.sandwich_norms);
    CHECK_EQ(c.hidden_act, "gelu_pytorch_tanh");
    CHECK_EQ(c.attn_logit_softcapping, 50.0);
    CHECK_EQ(c.final_logit_softcapping, 30.0);
    CHECK_EQ(c.attention_scale, 1.0 / 16.0);  // 256^-0.5
    CHECK_EQ(c.sliding_window, 4096);
    CHECK(c.sliding_layers == (std::vector<bool>{true, false, true, false}));
    CHECK_EQ(c.pad_token_id, 0);
  }
  {
    const ModelConfig c = parse(with("gemma", R"("hidden_act": "gelu", "num_key_value_heads": 1, "head_dim": 16)"));
    CHECK_EQ(c.hidden_act, "gelu_pytorch_tanh");  // Gemma 1's "gelu" means the tanh approximation
  }
  {
    const ModelConfig c = parse(R"({"model_type": "mistral", "hidden_size": 128, "num_attention_heads": 16, "num_hidden_layers": 2})");
    CHECK_EQ(c.num_key_value_heads, 8);  // MistralConfig's default
    CHECK_EQ(c.sliding_window, 4096);
    CHECK(c.sliding_layers == (std::vector<bool>{true, true}));
    CHECK_EQ(parse(R"({"model_type": "mistral", "hidden_size": 128, "num_attention_heads": 16, "sliding_window": null})").sliding_window, 0);
  }
  {
    // transformers 4: rope_scaling; transformers 5: rope_parameters (with rope_theta inside)
    const ModelConfig a = parse(with("llama", R"("rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192})"));
    CHECK_EQ(a.rope_theta, 500000.0);
    CHECK_EQ(a.rope_scaling.type, "llama3");
    CHECK_EQ(a.rope_scaling.factor, 8.0);
    const ModelConfig b = parse(with("llama", R"("rope_parameters": {"rope_type": "default", "rope_theta": 100000.0})"));
    CHECK_EQ(b.rope_theta, 100000.0);
    CHECK_EQ(b.rope_scaling.type, "default");
  }
  CHECK(lorafit::config_to_json(parse(with("llama"))).find("\"modelType\":\"llama\"") != std::string::npos);

  CHECK_THROWS(Error, parse("{"), "config.json: not valid JSON (invalid JSON at byte 1");
  CHECK_THROWS(Error, parse("[]"), "config.json: not a JSON object");
  CHECK_THROWS(Error, parse(with("gpt2")), "config.json: model_type 'gpt2' is not supported (supported: llama, mistral, qwen2, gemma, gemma2)");
  CHECK_THROWS(Error, parse(with("llama", R"("num_key_value_heads": 3)")), "key 'num_key_value_heads' (3) must divide num_attention_heads (4)");
  CHECK_THROWS(Error, parse("{\"model_type\": \"llama\", \"hidden_size\": 64.5}"), "key 'hidden_size' must be an integer");
  CHECK_THROWS(Error, parse("{\"model_type\": \"llama\", \"hidden_size\": -64}"), "key 'hidden_size' must be positive, got -64");
  CHECK_THROWS(Error, parse("{\"model_type\": \"llama\", \"vocab_size\": 1e30}"), "key 'vocab_size' is 1e+30, out of range (at most 2147483647)");  // as Python prints 1e30
  CHECK_THROWS(Error, parse(with("llama", R"("tie_word_embeddings": "yes")")), "key 'tie_word_embeddings' must be true or false");
  CHECK_THROWS(Error, parse(with("llama", R"("rope_scaling": {"rope_type": "yarn"})")), "has rope_type 'yarn', which lorafit does not support yet");
  CHECK_THROWS(Error, parse(with("llama", R"("hidden_act": "relu")")), "key 'hidden_act' is 'relu' (supported: silu, gelu_pytorch_tanh, gelu)");
  CHECK_THROWS(Error, parse(with("llama", R"("eos_token_id": "x")")), "key 'eos_token_id' must be an integer or a list of integers");
  CHECK_THROWS(Error, lorafit::load_config("/nonexistent/model"), "/nonexistent/model: cannot read config.json");
  {
    bool coded = false;
    try {
      parse("[]");
    } catch (const Error& e) {
      coded = e.code() == "E_MODEL_CONFIG";
    }
    CHECK(coded);
  }
  return check::result("hf_config_test");
}
