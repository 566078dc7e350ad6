#include "state_dict.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "error.h"
#include "json.h"

namespace lorafit {

namespace {
bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

SafetensorsWeights::SafetensorsWeights(const std::string& dir) : dir_(dir) {
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::vector<std::string> shard_names;
  if (exists(index_path)) {
    std::ifstream in(index_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Json index;
    try {
      index = parse_json(ss.str());
    } catch (const std::exception& e) {
      throw Error("E_SAFETENSORS", index_path + ": not valid JSON (" + e.what() + ")");
    }
    const Json* map = json_find(index, "weight_map");
    if (!map || !map->is_object()) throw Error("E_SAFETENSORS", index_path + ": has no 'weight_map' object");
    std::map<std::string, size_t> shard_index;
    for (const auto& [tensor, shard_value] : map->items()) {
      if (!shard_value.is_string()) throw Error("E_SAFETENSORS", index_path + ": weight_map['" + tensor + "'] is not a file name");
      const std::string& shard = shard_value.get_ref<const std::string&>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        throw Error("E_SAFETENSORS", index_path + ": shard name '" + shard + "' must be a plain file name");
      if (!shard_index.count(shard)) {
        shard_index[shard] = shard_names.size();
        shard_names.push_back(shard);
      }
    }
    for (const auto& s : shard_names)
      if (!exists(dir + "/" + s))
        throw Error("E_SAFETENSORS", index_path + ": lists shard '" + s + "', which is missing from " + dir);
  } else if (exists(dir + "/model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else if (exists(dir + "/pytorch_model.bin") || exists(dir + "/pytorch_model.bin.index.json")) {
    throw Error("E_PICKLE", dir + ": holds only pytorch_model.bin, a pickle checkpoint. lorafit does not load pickle files "
                                 "because unpickling can run arbitrary code. Convert it once with Python: "
                                 "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)");
  } else {
    throw Error("E_SAFETENSORS", dir + ": no model.safetensors or model.safetensors.index.json found");
  }
  for (const auto& s : shard_names) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + s));
    for (const auto& t : files_.back()->tensors()) {
      if (where_.count(t.name))
        throw Error("E_SAFETENSORS", dir + ": tensor '" + t.name + "' appears in two shards");
      where_[t.name] = files_.size() - 1;
    }
  }
}

at::Tensor SafetensorsWeights::view(const std::string& name, at::IntArrayRef expected) {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("E_SAFETENSORS", dir_ + ": weight '" + name + "' is missing from the checkpoint");
  SafetensorsFile& file = *files_.at(it->second);
  if (!file.find(name)) throw Error("E_SAFETENSORS", file.path() + ": weight '" + name + "' is missing");
  const TensorInfo& info = *file.find(name);
  if (at::IntArrayRef(info.shape) != expected)
    throw Error("E_SHAPE", file.path() + ": weight '" + name + "' has shape " + shape_string(info.shape) +
                               " but config.json implies " + shape_string(expected));
  if (!at::isFloatingType(info.dtype))
    throw Error("E_SAFETENSORS", file.path() + ": weight '" + name + "' has dtype " + info.dtype_name + ", expected a floating type");
  loaded_.insert(name);
  return file.view(info);
}

at::Tensor SafetensorsWeights::load(const std::string& name, at::IntArrayRef expected, at::ScalarType dtype, at::Device device) {
  at::Tensor v = view(name, expected);
  // copy=true: the result must own its memory; the map is released after loading.
  at::Tensor out = v.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
  release(name);
  return out;
}

at::Tensor SafetensorsWeights::raw(const std::string& name) {
  auto it = where_.find(name);
  if (it == where_.end()) return at::Tensor();
  SafetensorsFile& file = *files_.at(it->second);
  const TensorInfo& info = *file.find(name);
  loaded_.insert(name);
  at::Tensor out = file.view(info).clone();
  file.release(info);
  return out;
}

void SafetensorsWeights::release(const std::string& name) {
  auto it = where_.find(name);
  if (it == where_.end()) return;
  SafetensorsFile& file = *files_.at(it->second);
  if (const TensorInfo* info = file.find(name)) file.release(*info);
}

std::vector<std::string> SafetensorsWeights::unused() const {
  std::vector<std::string> out;
  for (const auto& [name, idx] : where_)
    if (!loaded_.count(name)) out.push_back(name);
  return out;
}

}  // namespace lorafit
