// The C API (runtime/seqrun.h) for errors, dtypes, tensors and models, over Tensor and runtime::Model: checks
// of every caller-supplied pointer, status codes with a per-thread message, and no exception past the
// boundary. Sessions and runs are in c_api_session.cpp, decoding (prefill, step, snapshots, generation) in
// c_api_decode.cpp.
#include "runtime/seqrun.h"

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/tensor.h"
#include "runtime/c_api_internal.h"
#include "runtime/model.h"

#ifndef SEQRUN_LIBRARY_VERSION
#define SEQRUN_LIBRARY_VERSION "unknown"  // set by runtime/package/CMakeLists.txt from project(VERSION)
#endif

using seqrun::DType;
using seqrun::Result;
using seqrun::Shape;
using seqrun::Tensor;
using seqrun::c_api::clear_out;
using seqrun::c_api::fail;
using seqrun::c_api::guarded;
using seqrun::c_api::join_names;
using seqrun::c_api::ValueInfoStorage;
using seqrun::runtime::Model;

namespace seqrun::c_api {

namespace {

thread_local std::string t_last_error;
// When even storing the message fails (no memory), seqrun_last_error returns this instead.
thread_local const char* t_last_error_fallback = nullptr;

seqrun_status store_error(seqrun_status status, const std::string& message) noexcept {
  try {
    t_last_error = message;
    t_last_error_fallback = nullptr;
  } catch (...) {
    t_last_error_fallback = "seqrun: out of memory while reporting an error";
  }
  return status;
}

}  // namespace

seqrun_status fail(seqrun_status status, const char* function, const std::string& message) noexcept {
  try {
    return store_error(status, std::string(function) + ": " + message);
  } catch (...) {
    return store_error(status, std::string());
  }
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

}  // namespace seqrun::c_api

namespace {

ValueInfoStorage describe_value(const seqrun::Value& value) {
  ValueInfoStorage info;
  info.name = value.name();
  info.dtype = static_cast<seqrun_dtype>(value.type().dtype());
  if (value.type().has_rank()) {
    info.rank = value.type().rank();
    for (const seqrun::Dim& d : value.type().dims()) {
      info.shape.push_back(d.is_static() ? d.value() : -1);
      info.dim_name_strings.push_back(d.is_symbol() ? d.symbol_name() : std::string());
    }
    // Pointers are taken only after the strings stopped moving.
    for (size_t i = 0; i < info.dim_name_strings.size(); ++i) {
      const bool named = value.type().dims()[i].is_symbol();
      info.dim_names.push_back(named ? info.dim_name_strings[i].c_str() : nullptr);
    }
  }
  return info;
}

std::optional<DType> dtype_of(seqrun_dtype dtype) {
  const int raw = static_cast<int>(dtype);
  if (raw <= 0 || !seqrun::dtype_is_valid(static_cast<uint32_t>(raw))) return std::nullopt;
  return static_cast<DType>(raw);
}

// The shape and byte count of a tensor the caller describes; an error message names the bad part.
Result<Shape> checked_shape(seqrun_dtype dtype, const int64_t* shape, size_t rank, size_t data_bytes,
                            bool data_given) {
  std::optional<DType> type = dtype_of(dtype);
  if (!type) return seqrun::make_error("unknown dtype {}", static_cast<int>(dtype));
  if (rank > 0 && shape == nullptr) return seqrun::make_error("shape is NULL but rank is {}", rank);
  if (rank > 64) return seqrun::make_error("rank {} is too large", rank);
  Shape dims(shape, shape + rank);
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) return seqrun::make_error("dim {} is negative ({})", i, dims[i]);
  }
  SEQRUN_ASSIGN(int64_t count, seqrun::checked_num_elements(dims, seqrun::dtype_size(*type)));
  const uint64_t expected = static_cast<uint64_t>(count) * seqrun::dtype_size(*type);
  if (data_given && data_bytes != expected) {
    return seqrun::make_error("data_bytes is {} but {}{} needs {}", data_bytes, seqrun::dtype_name(*type),
                              seqrun::shape_to_string(dims), expected);
  }
  if (!data_given && data_bytes != 0)
    return seqrun::make_error("data is NULL but data_bytes is {}", data_bytes);
  return dims;
}

std::optional<std::vector<std::string>> parse_pass_list(const char* passes) {
  if (passes == nullptr) return std::nullopt;
  std::vector<std::string> names;
  std::string current;
  for (const char* p = passes;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!current.empty()) names.push_back(current);
      current.clear();
      if (*p == '\0') break;
    } else if (*p != ' ' && *p != '\t') {
      current += *p;
    }
  }
  return names;
}

Result<seqrun::runtime::ModelOptions> model_options_of(const seqrun_model_options* options) {
  seqrun::runtime::ModelOptions model_options;
  if (options == nullptr) return model_options;
  if (options->opt_level < 0 || options->opt_level > 1) {
    return seqrun::make_error("invalid opt_level {} (use 0 or 1)", options->opt_level);
  }
  model_options.opt_level = options->opt_level;
  model_options.passes = parse_pass_list(options->passes);
  return model_options;
}

seqrun_status wrap_model(std::shared_ptr<const Model> model, seqrun_model_t** out) {
  auto handle = std::make_unique<seqrun_model>();
  for (const seqrun::Value* v : model->graph().inputs()) handle->inputs.push_back(describe_value(*v));
  for (const seqrun::Value* v : model->graph().outputs()) handle->outputs.push_back(describe_value(*v));
  handle->model = std::move(model);
  *out = handle.release();
  return SEQRUN_OK;
}

seqrun_status value_info(const char* function, const seqrun_model_t* model, bool inputs, size_t index,
                         seqrun_value_info* info) {
  if (model == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "model is NULL");
  if (info == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "info is NULL");
  const std::vector<ValueInfoStorage>& list = inputs ? model->inputs : model->outputs;
  if (index >= list.size()) {
    return fail(SEQRUN_ERROR_NOT_FOUND, function,
                fmt::format("{} index {} is out of range (the model has {})", inputs ? "input" : "output",
                            index, list.size()));
  }
  const ValueInfoStorage& s = list[index];
  info->name = s.name.c_str();
  info->dtype = s.dtype;
  info->rank = s.rank;
  info->shape = s.shape.empty() ? nullptr : s.shape.data();
  info->dim_names = s.dim_names.empty() ? nullptr : s.dim_names.data();
  return SEQRUN_OK;
}

seqrun_status value_index(const char* function, const seqrun_model_t* model, bool inputs, const char* name,
                          size_t* index) {
  if (model == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "model is NULL");
  if (name == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "name is NULL");
  if (index == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, function, "index is NULL");
  const std::vector<ValueInfoStorage>& list = inputs ? model->inputs : model->outputs;
  std::vector<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].name == name) {
      *index = i;
      return SEQRUN_OK;
    }
    names.push_back(list[i].name);
  }
  return fail(SEQRUN_ERROR_NOT_FOUND, function,
              fmt::format("no {} named '{}' (the model's {}s: {})", inputs ? "input" : "output", name,
                          inputs ? "input" : "output", join_names(names)));
}

}  // namespace

// ---- status, errors, version ------------------------------------------------------------------------

extern "C" {

const char* seqrun_last_error(void) {
  if (seqrun::c_api::t_last_error_fallback != nullptr) return seqrun::c_api::t_last_error_fallback;
  return seqrun::c_api::t_last_error.c_str();
}

const char* seqrun_status_name(seqrun_status status) {
  switch (status) {
    case SEQRUN_OK:
      return "ok";
    case SEQRUN_ERROR_INVALID_ARGUMENT:
      return "invalid argument";
    case SEQRUN_ERROR_NOT_FOUND:
      return "not found";
    case SEQRUN_ERROR_LOAD:
      return "load error";
    case SEQRUN_ERROR_RUN:
      return "run error";
    case SEQRUN_ERROR_OUT_OF_MEMORY:
      return "out of memory";
    case SEQRUN_ERROR_INTERNAL:
      return "internal error";
  }
  return "unknown status";
}

const char* seqrun_version(void) {
  return SEQRUN_LIBRARY_VERSION;
}

// ---- element types ----------------------------------------------------------------------------------

size_t seqrun_dtype_size(seqrun_dtype dtype) {
  std::optional<DType> type = dtype_of(dtype);
  return type ? seqrun::dtype_size(*type) : 0;
}

const char* seqrun_dtype_name(seqrun_dtype dtype) {
  // The IR's names (ir/dtype.h), NUL-terminated; tests/unit/test_c_api.cpp checks they agree.
  static const char* const kNames[] = {"undefined", "f32",  "f16", "bf16", "i64", "i32", "i8",
                                       "u8",        "bool", "f64", "i16",  "u16", "u32", "u64"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == seqrun::kNumDTypes, "one name per dtype");
  std::optional<DType> type = dtype_of(dtype);
  return type ? kNames[static_cast<int>(*type)] : "undefined";
}

// ---- tensors ----------------------------------------------------------------------------------------

seqrun_status seqrun_tensor_create(seqrun_dtype dtype, const int64_t* shape, size_t rank, const void* data,
                                   size_t data_bytes, seqrun_tensor_t** out) {
  const char* fn = "seqrun_tensor_create";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    Result<Shape> dims = checked_shape(dtype, shape, rank, data_bytes, data != nullptr);
    if (!dims) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, dims.status().message());
    auto handle = std::make_unique<seqrun_tensor>();
    handle->tensor = Tensor::empty(*dtype_of(dtype), std::move(dims).value());
    if (data != nullptr && data_bytes > 0) std::memcpy(handle->tensor.raw(), data, data_bytes);
    *out = handle.release();
    return SEQRUN_OK;
  });
}

seqrun_status seqrun_tensor_view(seqrun_dtype dtype, const int64_t* shape, size_t rank, void* data,
                                 size_t data_bytes, seqrun_tensor_t** out) {
  const char* fn = "seqrun_tensor_view";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    Result<Shape> dims = checked_shape(dtype, shape, rank, data_bytes, true);
    if (!dims) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, dims.status().message());
    if (data == nullptr && data_bytes > 0) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "data is NULL");
    auto handle = std::make_unique<seqrun_tensor>();
    handle->tensor = Tensor::view(*dtype_of(dtype), std::move(dims).value(), data, nullptr);
    *out = handle.release();
    return SEQRUN_OK;
  });
}

void seqrun_tensor_free(seqrun_tensor_t* tensor) {
  delete tensor;
}

seqrun_dtype seqrun_tensor_dtype(const seqrun_tensor_t* tensor) {
  return tensor != nullptr ? static_cast<seqrun_dtype>(tensor->tensor.dtype()) : SEQRUN_DTYPE_UNDEFINED;
}

size_t seqrun_tensor_rank(const seqrun_tensor_t* tensor) {
  return tensor != nullptr ? tensor->tensor.shape().size() : 0;
}

const int64_t* seqrun_tensor_shape(const seqrun_tensor_t* tensor) {
  return tensor != nullptr ? tensor->tensor.shape().data() : nullptr;
}

int64_t seqrun_tensor_num_elements(const seqrun_tensor_t* tensor) {
  return tensor != nullptr && tensor->tensor.defined() ? tensor->tensor.numel() : 0;
}

size_t seqrun_tensor_num_bytes(const seqrun_tensor_t* tensor) {
  return tensor != nullptr && tensor->tensor.defined() ? tensor->tensor.nbytes() : 0;
}

const void* seqrun_tensor_data(const seqrun_tensor_t* tensor) {
  return tensor != nullptr && tensor->tensor.nbytes() > 0 ? tensor->tensor.raw() : nullptr;
}

void* seqrun_tensor_mutable_data(seqrun_tensor_t* tensor) {
  return tensor != nullptr && tensor->tensor.nbytes() > 0 ? tensor->tensor.raw() : nullptr;
}

// ---- models -----------------------------------------------------------------------------------------

void seqrun_model_options_init(seqrun_model_options* options) {
  if (options == nullptr) return;
  options->opt_level = 1;
  options->passes = nullptr;
}

seqrun_status seqrun_model_load(const char* path, const seqrun_model_options* options, seqrun_model_t** out) {
  const char* fn = "seqrun_model_load";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    if (path == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "path is NULL");
    Result<seqrun::runtime::ModelOptions> model_options = model_options_of(options);
    if (!model_options) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, model_options.status().message());
    Result<std::shared_ptr<const Model>> model = Model::load(path, *model_options);
    if (!model) return fail(SEQRUN_ERROR_LOAD, fn, model.status().message());
    return wrap_model(std::move(model).value(), out);
  });
}

seqrun_status seqrun_model_load_from_memory(const void* data, size_t size,
                                            const seqrun_model_options* options, seqrun_model_t** out) {
  const char* fn = "seqrun_model_load_from_memory";
  clear_out(out);
  return guarded(fn, [&]() -> seqrun_status {
    if (out == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "out is NULL");
    if (data == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "data is NULL");
    Result<seqrun::runtime::ModelOptions> model_options = model_options_of(options);
    if (!model_options) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, model_options.status().message());
    Result<std::shared_ptr<const Model>> model =
        Model::load_from_memory(data, size, "<memory>", *model_options);
    if (!model) return fail(SEQRUN_ERROR_LOAD, fn, model.status().message());
    return wrap_model(std::move(model).value(), out);
  });
}

void seqrun_model_free(seqrun_model_t* model) {
  delete model;
}

size_t seqrun_model_num_inputs(const seqrun_model_t* model) {
  return model != nullptr ? model->inputs.size() : 0;
}

size_t seqrun_model_num_outputs(const seqrun_model_t* model) {
  return model != nullptr ? model->outputs.size() : 0;
}

seqrun_status seqrun_model_input_info(const seqrun_model_t* model, size_t index, seqrun_value_info* info) {
  return guarded("seqrun_model_input_info",
                 [&] { return value_info("seqrun_model_input_info", model, true, index, info); });
}

seqrun_status seqrun_model_output_info(const seqrun_model_t* model, size_t index, seqrun_value_info* info) {
  return guarded("seqrun_model_output_info",
                 [&] { return value_info("seqrun_model_output_info", model, false, index, info); });
}

seqrun_status seqrun_model_input_index(const seqrun_model_t* model, const char* name, size_t* index) {
  return guarded("seqrun_model_input_index",
                 [&] { return value_index("seqrun_model_input_index", model, true, name, index); });
}

seqrun_status seqrun_model_output_index(const seqrun_model_t* model, const char* name, size_t* index) {
  return guarded("seqrun_model_output_index",
                 [&] { return value_index("seqrun_model_output_index", model, false, name, index); });
}

seqrun_status seqrun_model_metadata(const seqrun_model_t* model, const char* key, const char** value) {
  const char* fn = "seqrun_model_metadata";
  if (value != nullptr) *value = nullptr;
  return guarded(fn, [&]() -> seqrun_status {
    if (model == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "model is NULL");
    if (key == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "key is NULL");
    if (value == nullptr) return fail(SEQRUN_ERROR_INVALID_ARGUMENT, fn, "value is NULL");
    const std::map<std::string, std::string>& metadata = model->model->metadata();
    auto it = metadata.find(key);
    if (it == metadata.end()) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : metadata) keys.push_back(k);
      return fail(SEQRUN_ERROR_NOT_FOUND, fn,
                  fmt::format("no metadata key '{}' (the model has {})", key, join_names(keys)));
    }
    *value = it->second.c_str();
    return SEQRUN_OK;
  });
}

}  // extern "C"
