#include "hf_config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "error.h"
#include "json.h"

namespace lorafit {

const char* supported_model_types() { return "llama, mistral, qwen2, gemma, gemma2"; }

namespace {

// Defaults of the transformers configuration classes (LlamaConfig(), Qwen2Config(), ...).
struct ArchDefaults {
  const char* model_type;
  Arch arch;
  int64_t vocab, hidden, intermediate, layers, heads;
  int64_t kv_heads;      // -1: same as heads
  int64_t head_dim;      // -1: hidden / heads
  int64_t max_positions;
  double rms_eps;
  bool tie;
  const char* act;
  int64_t sliding_window;  // -1: none
  int64_t bos, eos, pad;   // -1: none
};

const ArchDefaults kDefaults[] = {
    {"llama", Arch::Llama, 32000, 4096, 11008, 32, 32, -1, -1, 2048, 1e-6, false, "silu", -1, 1, 2, -1},
    {"mistral", Arch::Mistral, 32000, 4096, 14336, 32, 32, 8, -1, 4096 * 32, 1e-6, false, "silu", 4096, 1, 2, -1},
    {"qwen2", Arch::Qwen2, 151936, 4096, 22016, 32, 32, -1, -1, 32768, 1e-6, false, "silu", 4096, -1, -1, -1},
    {"gemma", Arch::Gemma, 256000, 3072, 24576, 28, 16, 16, 256, 8192, 1e-6, true, "gelu_pytorch_tanh", -1, 2, 1, 0},
    {"gemma2", Arch::Gemma2, 256000, 2304, 9216, 26, 8, 4, 256, 8192, 1e-6, true, "gelu_pytorch_tanh", 4096, 2, 1, 0},
};

constexpr int64_t kMaxConfigInt = 2147483647;

class Reader {
 public:
  Reader(const Json& root, std::string where) : root_(root), where_(std::move(where)) {}

  const Json* get(const char* key) const {
    const Json* v = json_find(root_, key);
    return (v && !v->is_null()) ? v : nullptr;
  }
  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    throw Error("E_MODEL_CONFIG", where_ + ": key '" + key + "' " + what);
  }
  int64_t integer(const char* key, int64_t fallback, bool positive = true) const {
    const Json* v = get(key);
    if (!v) return fallback;
    const double x = v->is_number() ? v->get<double>() : 0;
    if (!v->is_number() || std::floor(x) != x) bad(key, "must be an integer");
    if (positive && x <= 0) bad(key, "must be positive, got " + json_number_text(*v));
    // Casting a double beyond int64 is undefined (x86 gives INT64_MIN, so 1e30 became a negative
    // size); no dimension, layer count or token id of a real model comes near 2^31.
    if (std::fabs(x) > kMaxConfigInt) bad(key, "is " + json_number_text(*v) + ", out of range (at most " + std::to_string(kMaxConfigInt) + ")");
    return static_cast<int64_t>(x);
  }
  double real(const char* key, double fallback) const {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_number()) bad(key, "must be a number");
    return v->get<double>();
  }
  bool flag(const char* key, bool fallback) const {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(key, "must be true or false");
    return v->get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_string()) bad(key, "must be a string");
    return v->get<std::string>();
  }
  const std::string& where() const { return where_; }

 private:
  const Json& root_;
  std::string where_;
};

void read_rope(const Json& root, const Reader& r, ModelConfig& c) {
  // transformers 4.x writes rope_theta + rope_scaling; 5.x writes rope_parameters {rope_theta, rope_type, ...}.
  c.rope_theta = r.real("rope_theta", 10000.0);
  const Json* params = json_find(root, "rope_parameters");
  if (!params || params->is_null()) params = json_find(root, "rope_scaling");
  if (!params || params->is_null()) return;
  if (!params->is_object()) r.bad("rope_scaling", "must be an object");
  if (const Json* t = json_find(*params, "rope_theta"); t && t->is_number()) c.rope_theta = t->get<double>();
  std::string type = "default";
  if (const Json* t = json_find(*params, "rope_type"); t && t->is_string()) type = t->get<std::string>();
  else if (const Json* t2 = json_find(*params, "type"); t2 && t2->is_string()) type = t2->get<std::string>();
  auto num = [&](const char* k, double fb) {
    const Json* v = json_find(*params, k);
    return (v && v->is_number()) ? v->get<double>() : fb;
  };
  c.rope_scaling.type = type;
  c.rope_scaling.factor = num("factor", 1.0);
  c.rope_scaling.low_freq_factor = num("low_freq_factor", 1.0);
  c.rope_scaling.high_freq_factor = num("high_freq_factor", 4.0);
  c.rope_scaling.original_max_position_embeddings =
      static_cast<int64_t>(num("original_max_position_embeddings", 8192));
  if (type != "default" && type != "llama3" && type != "linear")
    r.bad("rope_scaling", "has rope_type '" + type + "', which lorafit does not support yet (supported: default, linear, llama3)");
}

std::vector<int64_t> token_ids(const Reader& r, const char* key, int64_t fallback) {
  const Json* v = r.get(key);
  if (!v) return fallback >= 0 ? std::vector<int64_t>{fallback} : std::vector<int64_t>{};
  if (v->is_number()) return {static_cast<int64_t>(v->get<double>())};
  if (v->is_array()) {
    std::vector<int64_t> ids;
    for (const auto& x : *v) {
      if (!x.is_number()) r.bad(key, "must hold integers");
      ids.push_back(static_cast<int64_t>(x.get<double>()));
    }
    return ids;
  }
  r.bad(key, "must be an integer or a list of integers");
}

}  // namespace

ModelConfig parse_config(const std::string& json_text, const std::string& where) {
  Json root;
  try {
    root = parse_json(json_text);
  } catch (const std::exception& e) {
    throw Error("E_MODEL_CONFIG", where + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw Error("E_MODEL_CONFIG", where + ": not a JSON object");
  Reader r(root, where);
  const std::string model_type = r.text("model_type", "");
  const ArchDefaults* d = nullptr;
  for (const auto& a : kDefaults)
    if (model_type == a.model_type) d = &a;
  if (!d)
    throw Error("E_MODEL_CONFIG", where + ": model_type '" + model_type + "' is not supported (supported: " + supported_model_types() + ")");

  ModelConfig c;
  c.model_type = model_type;
  c.arch = d->arch;
  c.vocab_size = r.integer("vocab_size", d->vocab);
  c.hidden_size = r.integer("hidden_size", d->hidden);
  c.intermediate_size = r.integer("intermediate_size", d->intermediate);
  c.num_hidden_layers = r.integer("num_hidden_layers", d->layers);
  c.num_attention_heads = r.integer("num_attention_heads", d->heads);
  c.num_key_value_heads = r.integer("num_key_value_heads", d->kv_heads > 0 ? d->kv_heads : c.num_attention_heads);
  if (c.hidden_size % c.num_attention_heads != 0 && !r.get("head_dim"))
    r.bad("num_attention_heads", "must divide hidden_size when head_dim is not given");
  c.head_dim = r.integer("head_dim", d->head_dim > 0 ? d->head_dim : c.hidden_size / c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.bad("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) + ") must divide num_attention_heads (" +
                                     std::to_string(c.num_attention_heads) + ")");
  c.max_position_embeddings = r.integer("max_position_embeddings", d->max_positions);
  c.rms_norm_eps = r.real("rms_norm_eps", d->rms_eps);
  read_rope(root, r, c);
  c.tie_word_embeddings = r.flag("tie_word_embeddings", d->tie);
  c.attention_bias = r.flag("attention_bias", false);
  c.mlp_bias = r.flag("mlp_bias", false);
  c.qkv_bias = c.arch == Arch::Qwen2;

  // Activation: Gemma 2 reads hidden_activation; Gemma 1 configs say "gelu" but mean the tanh
  // approximation (transformers rewrites it the same way).
  c.hidden_act = r.text("hidden_act", d->act);
  if (c.arch == Arch::Gemma2) c.hidden_act = r.text("hidden_activation", d->act);
  if (c.arch == Arch::Gemma) {
    c.hidden_act = r.text("hidden_activation", c.hidden_act);
    if (c.hidden_act == "gelu") c.hidden_act = "gelu_pytorch_tanh";
  }
  if (c.hidden_act != "silu" && c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "gelu")
    r.bad("hidden_act", "is '" + c.hidden_act + "' (supported: silu, gelu_pytorch_tanh, gelu)");

  // Sliding windows: which layers use one.
  c.sliding_layers.assign(c.num_hidden_layers, false);
  const Json* window = json_find(root, "sliding_window");
  const bool window_given = window && window->is_number();
  int64_t sw = window_given ? static_cast<int64_t>(window->get<double>()) : (window && window->is_null() ? -1 : d->sliding_window);
  if (c.arch == Arch::Qwen2 && !r.flag("use_sliding_window", false)) sw = -1;
  if (c.arch == Arch::Llama || c.arch == Arch::Gemma) sw = -1;
  c.sliding_window = sw > 0 ? sw : 0;
  if (c.sliding_window > 0) {
    const Json* types = r.get("layer_types");
    if (types) {
      if (!types->is_array() || static_cast<int64_t>(types->size()) != c.num_hidden_layers)
        r.bad("layer_types", "must list one type per layer (" + std::to_string(c.num_hidden_layers) + ")");
      for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        const Json& t = (*types)[static_cast<size_t>(i)];
        if (!t.is_string() || (t.get_ref<const std::string&>() != "sliding_attention" && t.get_ref<const std::string&>() != "full_attention"))
          r.bad("layer_types", "entries must be 'sliding_attention' or 'full_attention'");
        c.sliding_layers[i] = t.get_ref<const std::string&>() == "sliding_attention";
      }
    } else {
      const int64_t max_window_layers = r.integer("max_window_layers", 28, false);
      for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        if (c.arch == Arch::Mistral) c.sliding_layers[i] = true;
        else if (c.arch == Arch::Gemma2) c.sliding_layers[i] = (i % 2) == 0;
        else if (c.arch == Arch::Qwen2) c.sliding_layers[i] = i >= max_window_layers;
      }
    }
  }

  c.gemma_norm = c.arch == Arch::Gemma || c.arch == Arch::Gemma2;
  c.scale_embeddings = c.gemma_norm;
  c.sandwich_norms = c.arch == Arch::Gemma2;
  c.attention_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  if (c.arch == Arch::Gemma2) {
    c.attn_logit_softcapping = r.real("attn_logit_softcapping", 50.0);
    c.final_logit_softcapping = r.real("final_logit_softcapping", 30.0);
    if (json_find(root, "attn_logit_softcapping") && json_find(root, "attn_logit_softcapping")->is_null()) c.attn_logit_softcapping = 0;
    if (json_find(root, "final_logit_softcapping") && json_find(root, "final_logit_softcapping")->is_null()) c.final_logit_softcapping = 0;
    c.attention_scale = 1.0 / std::sqrt(r.real("query_pre_attn_scalar", 256.0));
  }
  c.bos_token_id = r.get("bos_token_id") ? r.integer("bos_token_id", -1, false) : d->bos;
  c.eos_token_ids = token_ids(r, "eos_token_id", d->eos);
  c.pad_token_id = r.get("pad_token_id") ? r.integer("pad_token_id", -1, false) : d->pad;
  c.torch_dtype = r.text("torch_dtype", r.text("dtype", ""));
  return c;
}

ModelConfig load_config(const std::string& path) {
  struct stat st {};
  std::string file = path;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) file = path + "/config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("E_MODEL_CONFIG", file + ": cannot read config.json (is this a Hugging Face model folder?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), file);
}

std::string config_to_json(const ModelConfig& c) {
  std::ostringstream o;
  o.precision(17);
  auto ids = [&](const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
  };
  std::string sliding = "[";
  for (size_t i = 0; i < c.sliding_layers.size(); ++i) sliding += std::string(i ? "," : "") + (c.sliding_layers[i] ? "true" : "false");
  sliding += "]";
  o << "{\"modelType\":\"" << c.model_type << "\",\"vocabSize\":" << c.vocab_size << ",\"hiddenSize\":" << c.hidden_size
    << ",\"intermediateSize\":" << c.intermediate_size << ",\"numHiddenLayers\":" << c.num_hidden_layers
    << ",\"numAttentionHeads\":" << c.num_attention_heads << ",\"numKeyValueHeads\":" << c.num_key_value_heads
    << ",\"headDim\":" << c.head_dim << ",\"maxPositionEmbeddings\":" << c.max_position_embeddings
    << ",\"rmsNormEps\":" << c.rms_norm_eps << ",\"ropeTheta\":" << c.rope_theta << ",\"ropeScaling\":{\"type\":\""
    << c.rope_scaling.type << "\",\"factor\":" << c.rope_scaling.factor << "},\"tieWordEmbeddings\":"
    << (c.tie_word_embeddings ? "true" : "false") << ",\"hiddenAct\":\"" << c.hidden_act << "\",\"slidingWindow\":"
    << c.sliding_window << ",\"slidingLayers\":" << sliding << ",\"attnLogitSoftcapping\":" << c.attn_logit_softcapping
    << ",\"finalLogitSoftcapping\":" << c.final_logit_softcapping << ",\"bosTokenId\":" << c.bos_token_id
    << ",\"eosTokenIds\":" << ids(c.eos_token_ids) << ",\"padTokenId\":" << c.pad_token_id << ",\"torchDtype\":\""
    << c.torch_dtype << "\"}";
  return o.str();
}

}  // namespace lorafit
