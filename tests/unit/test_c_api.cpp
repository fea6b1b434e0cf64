// The C API (runtime/seqrun.h): every function, its results against naive loops, and its error paths (NULL
// handles, wrong names, wrong dtypes and shapes) with their status codes and messages.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ir/graph.h"
#include "ir/serialize.h"
#include "runtime/seqrun.h"

using namespace seqrun;

namespace {

// y = x @ W + b and r = Relu(y), x: f32[batch, 4]. W[i][j] = (3i + j - 5) / 4, b = [0.5, -1, 0.25]
// (tests/data/cli/linear.onnx's weights): every value is a multiple of 1/4, so float sums are exact.
float weight(int i, int j) {
  return (3.0f * i + j - 5.0f) * 0.25f;
}
const float kBias[3] = {0.5f, -1.0f, 0.25f};

std::unique_ptr<Graph> linear_relu_graph() {
  auto g = std::make_unique<Graph>("linear_relu");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim(4)}));
  std::vector<float> w;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) w.push_back(weight(i, j));
  Value* wv = g->add_constant("W", Tensor::from_vector<float>({4, 3}, w));
  Value* bv = g->add_constant("b", Tensor::from_vector<float>({3}, {kBias[0], kBias[1], kBias[2]}));
  Node* mm = g->add_node("MatMul", {x, wv}, 1, {}, {"xw"});
  Node* add = g->add_node("Add", {mm->output(0), bv}, 1, {}, {"y"});
  Node* relu = g->add_node("Relu", {add->output(0)}, 1, {}, {"r"});
  g->set_outputs({add->output(0), relu->output(0)});
  return g;
}

// The expected y for x (rows of 4), by a naive loop.
std::vector<float> naive_linear(const std::vector<float>& x) {
  std::vector<float> y;
  for (size_t row = 0; row < x.size() / 4; ++row) {
    for (int j = 0; j < 3; ++j) {
      float acc = 0.0f;
      for (int i = 0; i < 4; ++i) acc += x[row * 4 + i] * weight(i, j);
      y.push_back(acc + kBias[j]);
    }
  }
  return y;
}

std::vector<float> relu(std::vector<float> v) {
  for (float& f : v) f = f > 0.0f ? f : 0.0f;
  return v;
}

std::vector<float> values_of(const seqrun_tensor_t* t) {
  REQUIRE(seqrun_tensor_dtype(t) == SEQRUN_DTYPE_F32);
  const float* p = static_cast<const float*>(seqrun_tensor_data(t));
  return std::vector<float>(p, p + seqrun_tensor_num_elements(t));
}

std::vector<int64_t> shape_of(const seqrun_tensor_t* t) {
  const int64_t* s = seqrun_tensor_shape(t);
  return std::vector<int64_t>(s, s + seqrun_tensor_rank(t));
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string last_error() {
  return seqrun_last_error();
}

// The linear_relu model written to a temporary .seqrun file, removed at the end of the test.
struct ModelFileFixture {
  std::filesystem::path path;
  std::string bytes;
  ModelFileFixture() {
    path = std::filesystem::temp_directory_path() /
           ("seqrun_test_c_api_" + std::to_string(::getpid()) + ".seqrun");
    SaveOptions options;
    options.producer = "test_c_api";
    options.metadata["purpose"] = "c api test";
    std::unique_ptr<Graph> g = linear_relu_graph();
    REQUIRE(save_model(*g, path.string(), options).is_ok());
    bytes = serialize_model(*g, options);
  }
  ~ModelFileFixture() { std::filesystem::remove(path); }
};

seqrun_tensor_t* make_f32(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  seqrun_tensor_t* t = nullptr;
  REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape.data(), shape.size(), values.data(),
                               values.size() * sizeof(float), &t) == SEQRUN_OK);
  return t;
}

}  // namespace

TEST_CASE("c api: version, status names, dtypes") {
  CHECK(std::string(seqrun_version()) != "");
  CHECK(std::string(seqrun_status_name(SEQRUN_OK)) == "ok");
  CHECK(std::string(seqrun_status_name(SEQRUN_ERROR_INVALID_ARGUMENT)) == "invalid argument");
  CHECK(std::string(seqrun_status_name(SEQRUN_ERROR_NOT_FOUND)) == "not found");
  CHECK(std::string(seqrun_status_name(SEQRUN_ERROR_LOAD)) == "load error");
  CHECK(std::string(seqrun_status_name(SEQRUN_ERROR_RUN)) == "run error");
  CHECK(std::string(seqrun_status_name(SEQRUN_ERROR_OUT_OF_MEMORY)) == "out of memory");
  CHECK(std::string(seqrun_status_name(SEQRUN_ERROR_INTERNAL)) == "internal error");
  CHECK(std::string(seqrun_status_name(static_cast<seqrun_status>(42))) == "unknown status");

  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_F32) == 4);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_F16) == 2);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_BF16) == 2);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_I64) == 8);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_BOOL) == 1);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_F64) == 8);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_U64) == 8);
  CHECK(seqrun_dtype_size(SEQRUN_DTYPE_UNDEFINED) == 0);
  CHECK(seqrun_dtype_size(static_cast<seqrun_dtype>(99)) == 0);
  CHECK(std::string(seqrun_dtype_name(SEQRUN_DTYPE_F32)) == "f32");
  CHECK(std::string(seqrun_dtype_name(SEQRUN_DTYPE_I64)) == "i64");
  CHECK(std::string(seqrun_dtype_name(SEQRUN_DTYPE_BOOL)) == "bool");
  CHECK(std::string(seqrun_dtype_name(static_cast<seqrun_dtype>(-3))) == "undefined");
  for (int d = 1; d < kNumDTypes; ++d) {
    CHECK(std::string(seqrun_dtype_name(static_cast<seqrun_dtype>(d))) == dtype_name(static_cast<DType>(d)));
  }
  // The C numbers are the IR's (and the file format's).
  CHECK(static_cast<int>(SEQRUN_DTYPE_U64) == static_cast<int>(DType::u64));
  CHECK(static_cast<int>(SEQRUN_DTYPE_BOOL) == static_cast<int>(DType::boolean));
}

TEST_CASE("c api: tensors copy or view the caller's data") {
  std::vector<float> data = {1, 2, 3, 4, 5, 6};
  const int64_t shape[2] = {2, 3};
  seqrun_tensor_t* copy = nullptr;
  REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, 2, data.data(), 24, &copy) == SEQRUN_OK);
  seqrun_tensor_t* view = nullptr;
  REQUIRE(seqrun_tensor_view(SEQRUN_DTYPE_F32, shape, 2, data.data(), 24, &view) == SEQRUN_OK);

  CHECK(seqrun_tensor_dtype(copy) == SEQRUN_DTYPE_F32);
  CHECK(seqrun_tensor_rank(copy) == 2);
  CHECK(shape_of(copy) == std::vector<int64_t>{2, 3});
  CHECK(seqrun_tensor_num_elements(copy) == 6);
  CHECK(seqrun_tensor_num_bytes(copy) == 24);
  CHECK(seqrun_tensor_data(copy) != data.data());
  CHECK(seqrun_tensor_data(view) == data.data());
  CHECK(seqrun_tensor_mutable_data(view) == data.data());

  data[0] = 100.0f;  // the view sees it, the copy does not
  CHECK(values_of(copy) == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(values_of(view)[0] == 100.0f);
  static_cast<float*>(seqrun_tensor_mutable_data(copy))[5] = -1.0f;
  CHECK(values_of(copy)[5] == -1.0f);
  CHECK(data[5] == 6.0f);
  seqrun_tensor_free(copy);
  seqrun_tensor_free(view);

  SECTION("zero-filled, scalars and empty tensors") {
    seqrun_tensor_t* zeros = nullptr;
    const int64_t s[1] = {5};
    REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_I64, s, 1, nullptr, 0, &zeros) == SEQRUN_OK);
    const int64_t* z = static_cast<const int64_t*>(seqrun_tensor_data(zeros));
    for (int i = 0; i < 5; ++i) CHECK(z[i] == 0);
    seqrun_tensor_free(zeros);

    seqrun_tensor_t* scalar = nullptr;
    const double v = 2.5;
    REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F64, nullptr, 0, &v, 8, &scalar) == SEQRUN_OK);
    CHECK(seqrun_tensor_rank(scalar) == 0);
    CHECK(seqrun_tensor_num_elements(scalar) == 1);
    CHECK(*static_cast<const double*>(seqrun_tensor_data(scalar)) == 2.5);
    seqrun_tensor_free(scalar);

    seqrun_tensor_t* empty = nullptr;
    const int64_t e[2] = {0, 3};
    REQUIRE(seqrun_tensor_view(SEQRUN_DTYPE_F32, e, 2, nullptr, 0, &empty) == SEQRUN_OK);
    CHECK(seqrun_tensor_num_elements(empty) == 0);
    CHECK(seqrun_tensor_data(empty) == nullptr);
    seqrun_tensor_free(empty);
  }

  SECTION("NULL tensors: accessors return zeros, free accepts NULL") {
    CHECK(seqrun_tensor_dtype(nullptr) == SEQRUN_DTYPE_UNDEFINED);
    CHECK(seqrun_tensor_rank(nullptr) == 0);
    CHECK(seqrun_tensor_shape(nullptr) == nullptr);
    CHECK(seqrun_tensor_num_elements(nullptr) == 0);
    CHECK(seqrun_tensor_num_bytes(nullptr) == 0);
    CHECK(seqrun_tensor_data(nullptr) == nullptr);
    CHECK(seqrun_tensor_mutable_data(nullptr) == nullptr);
    seqrun_tensor_free(nullptr);
  }

  SECTION("bad arguments are errors that say what is wrong, and leave *out NULL") {
    seqrun_tensor_t* t = reinterpret_cast<seqrun_tensor_t*>(&data);  // must be overwritten with NULL
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, 2, data.data(), 24, nullptr) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_create: out is NULL");

    CHECK(seqrun_tensor_create(static_cast<seqrun_dtype>(99), shape, 2, data.data(), 24, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(t == nullptr);
    CHECK(last_error() == "seqrun_tensor_create: unknown dtype 99");
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_UNDEFINED, shape, 2, nullptr, 0, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_create: unknown dtype 0");

    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, 2, data.data(), 20, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_create: data_bytes is 20 but f32[2, 3] needs 24");
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, 2, nullptr, 24, &t) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_create: data is NULL but data_bytes is 24");
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, nullptr, 2, nullptr, 0, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_create: shape is NULL but rank is 2");
    const int64_t negative[2] = {2, -3};
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, negative, 2, nullptr, 0, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_create: dim 1 is negative (-3)");
    const int64_t overflowing[3] = {int64_t{1} << 40, int64_t{1} << 40, 8};
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, overflowing, 3, nullptr, 0, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "seqrun_tensor_create: "));
    CHECK(t == nullptr);

    CHECK(seqrun_tensor_view(SEQRUN_DTYPE_F32, shape, 2, nullptr, 24, &t) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_view: data is NULL");
    CHECK(seqrun_tensor_view(SEQRUN_DTYPE_I32, shape, 2, data.data(), 4, &t) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_view: data_bytes is 4 but i32[2, 3] needs 24");
    CHECK(seqrun_tensor_view(SEQRUN_DTYPE_I32, shape, 2, data.data(), 24, nullptr) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_tensor_view: out is NULL");
  }

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  SECTION("an allocation that cannot succeed is SEQRUN_ERROR_OUT_OF_MEMORY, not an exception") {
    // 2^43 floats = 32 TiB: within the size limit, beyond any allocator here. (Sanitizer allocators abort
    // on such requests instead of failing them, so sanitized builds skip this.)
    const int64_t huge[1] = {int64_t{1} << 43};
    seqrun_tensor_t* t = nullptr;
    CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, huge, 1, nullptr, 0, &t) == SEQRUN_ERROR_OUT_OF_MEMORY);
    CHECK(last_error() == "seqrun_tensor_create: out of memory");
    CHECK(t == nullptr);
  }
#endif
}

TEST_CASE("c api: loading models, options, info and metadata") {
  ModelFileFixture file;
  seqrun_model_t* model = nullptr;
  REQUIRE(seqrun_model_load(file.path.c_str(), nullptr, &model) == SEQRUN_OK);

  CHECK(seqrun_model_num_inputs(model) == 1);
  CHECK(seqrun_model_num_outputs(model) == 2);
  seqrun_value_info info;
  REQUIRE(seqrun_model_input_info(model, 0, &info) == SEQRUN_OK);
  CHECK(std::string(info.name) == "x");
  CHECK(info.dtype == SEQRUN_DTYPE_F32);
  REQUIRE(info.rank == 2);
  CHECK(info.shape[0] == -1);
  CHECK(info.shape[1] == 4);
  REQUIRE(info.dim_names[0] != nullptr);
  CHECK(std::string(info.dim_names[0]) == "batch");
  CHECK(info.dim_names[1] == nullptr);
  REQUIRE(seqrun_model_output_info(model, 1, &info) == SEQRUN_OK);
  CHECK(std::string(info.name) == "r");
  CHECK(info.dtype == SEQRUN_DTYPE_F32);
  REQUIRE(info.rank == 2);
  CHECK(std::string(info.dim_names[0]) == "batch");
  CHECK(info.shape[1] == 3);

  size_t index = 99;
  REQUIRE(seqrun_model_input_index(model, "x", &index) == SEQRUN_OK);
  CHECK(index == 0);
  REQUIRE(seqrun_model_output_index(model, "r", &index) == SEQRUN_OK);
  CHECK(index == 1);

  const char* value = nullptr;
  REQUIRE(seqrun_model_metadata(model, "producer", &value) == SEQRUN_OK);
  CHECK(std::string(value) == "test_c_api");
  REQUIRE(seqrun_model_metadata(model, "purpose", &value) == SEQRUN_OK);
  CHECK(std::string(value) == "c api test");

  SECTION("lookups that fail name what exists") {
    CHECK(seqrun_model_input_info(model, 1, &info) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() == "seqrun_model_input_info: input index 1 is out of range (the model has 1)");
    CHECK(seqrun_model_output_info(model, 2, &info) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() == "seqrun_model_output_info: output index 2 is out of range (the model has 2)");
    CHECK(seqrun_model_input_index(model, "y", &index) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() == "seqrun_model_input_index: no input named 'y' (the model's inputs: 'x')");
    CHECK(seqrun_model_output_index(model, "z", &index) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() == "seqrun_model_output_index: no output named 'z' (the model's outputs: 'y', 'r')");
    CHECK(seqrun_model_metadata(model, "license", &value) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(value == nullptr);
    CHECK(last_error() ==
          "seqrun_model_metadata: no metadata key 'license' (the model has 'producer', 'purpose')");
  }

  SECTION("NULL arguments") {
    CHECK(seqrun_model_num_inputs(nullptr) == 0);
    CHECK(seqrun_model_num_outputs(nullptr) == 0);
    CHECK(seqrun_model_input_info(nullptr, 0, &info) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_input_info: model is NULL");
    CHECK(seqrun_model_output_info(model, 0, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_output_info: info is NULL");
    CHECK(seqrun_model_input_index(model, nullptr, &index) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_input_index: name is NULL");
    CHECK(seqrun_model_output_index(model, "y", nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_output_index: index is NULL");
    CHECK(seqrun_model_metadata(nullptr, "producer", &value) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_metadata: model is NULL");
    CHECK(seqrun_model_metadata(model, nullptr, &value) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_metadata: key is NULL");
    CHECK(seqrun_model_metadata(model, "producer", nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_metadata: value is NULL");
    seqrun_model_free(nullptr);
  }

  SECTION("load errors") {
    seqrun_model_t* other = reinterpret_cast<seqrun_model_t*>(&info);  // must be overwritten with NULL
    CHECK(seqrun_model_load(nullptr, nullptr, &other) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(other == nullptr);
    CHECK(last_error() == "seqrun_model_load: path is NULL");
    CHECK(seqrun_model_load(file.path.c_str(), nullptr, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_load: out is NULL");

    const std::string missing =
        (std::filesystem::temp_directory_path() / "seqrun_no_such_model.seqrun").string();
    CHECK(seqrun_model_load(missing.c_str(), nullptr, &other) == SEQRUN_ERROR_LOAD);
    CHECK(contains(last_error(), "seqrun_model_load: "));
    CHECK(contains(last_error(), missing));

    seqrun_model_options options;
    seqrun_model_options_init(&options);
    CHECK(options.opt_level == 1);
    CHECK(options.passes == nullptr);
    options.opt_level = 7;
    CHECK(seqrun_model_load(file.path.c_str(), &options, &other) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_load: invalid opt_level 7 (use 0 or 1)");
    options.opt_level = 1;
    options.passes = "canonicalize, no-such-pass";
    CHECK(seqrun_model_load(file.path.c_str(), &options, &other) == SEQRUN_ERROR_LOAD);
    CHECK(contains(last_error(), "no-such-pass"));
    CHECK(other == nullptr);

    const char garbage[] = "SEQR this is not a model";
    CHECK(seqrun_model_load_from_memory(garbage, sizeof(garbage), nullptr, &other) == SEQRUN_ERROR_LOAD);
    CHECK(contains(last_error(), "seqrun_model_load_from_memory: <memory>"));
    CHECK(seqrun_model_load_from_memory(nullptr, 10, nullptr, &other) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_load_from_memory: data is NULL");
    CHECK(seqrun_model_load_from_memory(garbage, sizeof(garbage), nullptr, nullptr) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_model_load_from_memory: out is NULL");
  }

  SECTION("from memory, with options") {
    seqrun_model_options options;
    seqrun_model_options_init(&options);
    options.opt_level = 0;
    options.passes = "";  // an explicit empty pipeline
    seqrun_model_t* from_memory = nullptr;
    REQUIRE(seqrun_model_load_from_memory(file.bytes.data(), file.bytes.size(), &options, &from_memory) ==
            SEQRUN_OK);
    CHECK(seqrun_model_num_outputs(from_memory) == 2);
    REQUIRE(seqrun_model_metadata(from_memory, "producer", &value) == SEQRUN_OK);
    CHECK(std::string(value) == "test_c_api");
    seqrun_session_t* session = nullptr;
    REQUIRE(seqrun_session_create(from_memory, nullptr, &session) == SEQRUN_OK);
    const std::vector<float> x = {1, -2, 0.5f, 3};
    seqrun_tensor_t* in = make_f32({1, 4}, x);
    seqrun_tensor_t* outs[2] = {nullptr, nullptr};
    REQUIRE(seqrun_session_run(session, &in, 1, outs, 2) == SEQRUN_OK);
    CHECK(values_of(outs[0]) == naive_linear(x));
    // The result for linear.onnx's first test row (numpy, tests/data/cli/linear_y_expected.npy).
    CHECK(values_of(outs[0]) == std::vector<float>{3.375f, 2.5f, 4.375f});
    for (seqrun_tensor_t* t : outs) seqrun_tensor_free(t);
    seqrun_tensor_free(in);
    seqrun_session_free(session);
    seqrun_model_free(from_memory);
  }

  seqrun_model_free(model);
}

TEST_CASE("c api: sessions run by position and by name") {
  ModelFileFixture file;
  seqrun_model_t* model = nullptr;
  REQUIRE(seqrun_model_load(file.path.c_str(), nullptr, &model) == SEQRUN_OK);

  seqrun_session_options options;
  seqrun_session_options_init(&options);
  CHECK(options.threads == 0);
  CHECK(options.executor == SEQRUN_EXECUTOR_PLANNED);
  CHECK(options.check_finite == 0);
  const seqrun_executor executor = GENERATE(SEQRUN_EXECUTOR_PLANNED, SEQRUN_EXECUTOR_REFERENCE);
  options.executor = executor;
  options.threads = 1;
  seqrun_session_t* session = nullptr;
  REQUIRE(seqrun_session_create(model, &options, &session) == SEQRUN_OK);
  // The session keeps the model alive.
  seqrun_model_free(model);

  const std::vector<float> x2 = {1, -2, 0.5f, 3, 0, 1.5f, -1, 2};
  seqrun_tensor_t* in = make_f32({2, 4}, x2);
  seqrun_tensor_t* outs[2] = {nullptr, nullptr};
  REQUIRE(seqrun_session_run(session, &in, 1, outs, 2) == SEQRUN_OK);
  REQUIRE(outs[0] != nullptr);
  REQUIRE(outs[1] != nullptr);
  CHECK(shape_of(outs[0]) == std::vector<int64_t>{2, 3});
  CHECK(values_of(outs[0]) == naive_linear(x2));
  CHECK(values_of(outs[1]) == relu(naive_linear(x2)));

  SECTION("outputs given back are reused: in place for the same shape, resized for another") {
    seqrun_tensor_t* const first_handle = outs[0];
    const void* first_bytes = seqrun_tensor_data(outs[0]);
    const std::vector<float> x2b = {0.25f, 0.5f, 0.75f, 1, -1, -0.5f, 2, 4};
    seqrun_tensor_t* in_b = make_f32({2, 4}, x2b);
    REQUIRE(seqrun_session_run(session, &in_b, 1, outs, 2) == SEQRUN_OK);
    CHECK(outs[0] == first_handle);
    CHECK(seqrun_tensor_data(outs[0]) == first_bytes);
    CHECK(values_of(outs[0]) == naive_linear(x2b));
    CHECK(values_of(outs[1]) == relu(naive_linear(x2b)));

    const std::vector<float> x3 = {1, 1, 1, 1, 2, 2, 2, 2, -3, 0.5f, 0.25f, 0};
    seqrun_tensor_t* in3 = make_f32({3, 4}, x3);
    REQUIRE(seqrun_session_run(session, &in3, 1, outs, 2) == SEQRUN_OK);
    CHECK(outs[0] == first_handle);
    CHECK(shape_of(outs[0]) == std::vector<int64_t>{3, 3});
    CHECK(values_of(outs[0]) == naive_linear(x3));
    CHECK(values_of(outs[1]) == relu(naive_linear(x3)));
    seqrun_tensor_free(in_b);
    seqrun_tensor_free(in3);
  }

  SECTION("a view passed as an output receives the result in the caller's memory") {
    std::vector<float> y_memory(6, -7.0f);
    const int64_t y_shape[2] = {2, 3};
    seqrun_tensor_t* y_view = nullptr;
    REQUIRE(seqrun_tensor_view(SEQRUN_DTYPE_F32, y_shape, 2, y_memory.data(), 24, &y_view) == SEQRUN_OK);
    seqrun_tensor_t* named_outs[1] = {y_view};
    const char* in_names[1] = {"x"};
    const char* out_names[1] = {"y"};
    REQUIRE(seqrun_session_run_named(session, in_names, &in, 1, out_names, named_outs, 1) == SEQRUN_OK);
    CHECK(named_outs[0] == y_view);
    CHECK(seqrun_tensor_data(y_view) == y_memory.data());
    CHECK(y_memory == naive_linear(x2));
    seqrun_tensor_free(y_view);
  }

  SECTION("by name: any order, any subset of outputs") {
    seqrun_tensor_t* named_outs[2] = {nullptr, nullptr};
    const char* in_names[1] = {"x"};
    const char* out_names[2] = {"r", "y"};
    REQUIRE(seqrun_session_run_named(session, in_names, &in, 1, out_names, named_outs, 2) == SEQRUN_OK);
    CHECK(values_of(named_outs[0]) == relu(naive_linear(x2)));
    CHECK(values_of(named_outs[1]) == naive_linear(x2));
    seqrun_tensor_t* only_r[1] = {nullptr};
    REQUIRE(seqrun_session_run_named(session, in_names, &in, 1, out_names, only_r, 1) == SEQRUN_OK);
    CHECK(values_of(only_r[0]) == relu(naive_linear(x2)));
    for (seqrun_tensor_t* t : named_outs) seqrun_tensor_free(t);
    seqrun_tensor_free(only_r[0]);
  }

  SECTION("run errors name the input or output at fault") {
    seqrun_tensor_t* none[2] = {nullptr, nullptr};
    CHECK(seqrun_session_run(nullptr, &in, 1, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: session is NULL");
    CHECK(seqrun_session_run(session, nullptr, 1, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: inputs is NULL");
    CHECK(seqrun_session_run(session, &in, 1, nullptr, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: outputs is NULL");
    seqrun_tensor_t* null_input = nullptr;
    CHECK(seqrun_session_run(session, &null_input, 1, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: inputs[0] is NULL");
    CHECK(seqrun_session_run(session, nullptr, 0, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: 0 inputs given, the model takes 1 ('x')");
    CHECK(seqrun_session_run(session, &in, 1, none, 1) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: room for 1 outputs given, the model has 2 ('y', 'r')");
    seqrun_tensor_t* same_twice[2] = {outs[0], outs[0]};
    CHECK(seqrun_session_run(session, &in, 1, same_twice, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run: outputs[1] is a tensor already given as an earlier output");

    // Wrong dtype, wrong static dim, wrong rank: the model's checks, naming the input.
    std::vector<double> xd(8, 1.0);
    const int64_t s24[2] = {2, 4};
    seqrun_tensor_t* f64 = nullptr;
    REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F64, s24, 2, xd.data(), 64, &f64) == SEQRUN_OK);
    CHECK(seqrun_session_run(session, &f64, 1, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "seqrun_session_run: "));
    CHECK(contains(last_error(), "'x'"));
    CHECK(contains(last_error(), "f64"));
    seqrun_tensor_t* wide = make_f32({2, 5}, std::vector<float>(10, 1.0f));
    CHECK(seqrun_session_run(session, &wide, 1, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "'x'"));
    CHECK(contains(last_error(), "5"));
    seqrun_tensor_t* flat = make_f32({4}, std::vector<float>(4, 1.0f));
    CHECK(seqrun_session_run(session, &flat, 1, none, 2) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "'x'"));
    CHECK(none[0] == nullptr);
    CHECK(none[1] == nullptr);
    seqrun_tensor_free(f64);
    seqrun_tensor_free(wide);
    seqrun_tensor_free(flat);

    const char* x_name[1] = {"x"};
    const char* bad_name[1] = {"input"};
    const char* y_name[2] = {"y", "y"};
    const char* z_name[1] = {"z"};
    const char* null_name[1] = {nullptr};
    seqrun_tensor_t* two[2] = {in, in};
    CHECK(seqrun_session_run_named(session, bad_name, &in, 1, y_name, none, 1) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() == "seqrun_session_run_named: unknown input 'input' (the model's inputs: 'x')");
    CHECK(seqrun_session_run_named(session, nullptr, nullptr, 0, y_name, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: missing input 'x' (the model's inputs: 'x')");
    const char* x_twice[2] = {"x", "x"};
    CHECK(seqrun_session_run_named(session, x_twice, two, 2, y_name, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: input 'x' is given twice");
    CHECK(seqrun_session_run_named(session, x_name, &in, 1, z_name, none, 1) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() == "seqrun_session_run_named: unknown output 'z' (the model's outputs: 'y', 'r')");
    CHECK(seqrun_session_run_named(session, x_name, &in, 1, y_name, none, 2) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: output 'y' is asked for twice");
    CHECK(seqrun_session_run_named(session, null_name, &in, 1, y_name, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: input_names[0] is NULL");
    CHECK(seqrun_session_run_named(session, x_name, &in, 1, null_name, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: output_names[0] is NULL");
    CHECK(seqrun_session_run_named(session, nullptr, &in, 1, y_name, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: input_names is NULL");
    CHECK(seqrun_session_run_named(session, x_name, &in, 1, nullptr, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: output_names is NULL");
    CHECK(seqrun_session_run_named(nullptr, x_name, &in, 1, y_name, none, 1) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_session_run_named: session is NULL");
    CHECK(none[0] == nullptr);
  }

  for (seqrun_tensor_t* t : outs) seqrun_tensor_free(t);
  seqrun_tensor_free(in);
  seqrun_session_free(session);
  seqrun_session_free(nullptr);
}

TEST_CASE("c api: session options and errors while running") {
  ModelFileFixture file;
  seqrun_model_t* model = nullptr;
  REQUIRE(seqrun_model_load(file.path.c_str(), nullptr, &model) == SEQRUN_OK);
  seqrun_session_options options;
  seqrun_session_options_init(&options);
  seqrun_session_t* session = reinterpret_cast<seqrun_session_t*>(&options);  // must become NULL

  options.threads = -2;
  CHECK(seqrun_session_create(model, &options, &session) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(session == nullptr);
  CHECK(last_error() == "seqrun_session_create: invalid threads -2 (use 0 for all cores)");
  options.threads = 0;
  options.executor = static_cast<seqrun_executor>(5);
  CHECK(seqrun_session_create(model, &options, &session) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_session_create: unknown executor 5");
  CHECK(seqrun_session_create(nullptr, nullptr, &session) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_session_create: model is NULL");
  CHECK(seqrun_session_create(model, nullptr, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_session_create: out is NULL");
  seqrun_model_free(model);

  // y = Log(x): with check_finite a NaN fails the run (SEQRUN_ERROR_RUN), naming the node.
  auto g = std::make_unique<Graph>("log");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim(3)}));
  Node* log = g->add_node("Log", {x}, 1, {}, {"y"});
  log->set_name("the_log");
  g->set_outputs({log->output(0)});
  const std::string bytes = serialize_model(*g);
  REQUIRE(seqrun_model_load_from_memory(bytes.data(), bytes.size(), nullptr, &model) == SEQRUN_OK);
  options.executor = SEQRUN_EXECUTOR_PLANNED;
  options.check_finite = 1;
  REQUIRE(seqrun_session_create(model, &options, &session) == SEQRUN_OK);
  seqrun_tensor_t* in = make_f32({3}, {1.0f, -1.0f, 4.0f});
  seqrun_tensor_t* out = nullptr;
  CHECK(seqrun_session_run(session, &in, 1, &out, 1) == SEQRUN_ERROR_RUN);
  CHECK(out == nullptr);
  CHECK(contains(last_error(), "seqrun_session_run: "));
  CHECK(contains(last_error(), "the_log"));
  seqrun_session_free(session);

  // Without check_finite the same run succeeds: log(1) = 0, log(-1) = NaN, log(4).
  options.check_finite = 0;
  REQUIRE(seqrun_session_create(model, &options, &session) == SEQRUN_OK);
  REQUIRE(seqrun_session_run(session, &in, 1, &out, 1) == SEQRUN_OK);
  const std::vector<float> y = values_of(out);
  CHECK(y[0] == 0.0f);
  CHECK(std::isnan(y[1]));
  CHECK(y[2] == Approx(std::log(4.0f)));
  seqrun_tensor_free(out);
  seqrun_tensor_free(in);
  seqrun_session_free(session);
  seqrun_model_free(model);
}

TEST_CASE("c api: the error message belongs to the thread that failed") {
  seqrun_tensor_t* t = nullptr;
  CHECK(seqrun_tensor_create(SEQRUN_DTYPE_F32, nullptr, 1, nullptr, 0, &t) == SEQRUN_ERROR_INVALID_ARGUMENT);
  const std::string here = last_error();
  CHECK(here == "seqrun_tensor_create: shape is NULL but rank is 1");

  std::string there_before, there_after;
  std::thread other([&] {
    there_before = seqrun_last_error();
    seqrun_tensor_t* u = nullptr;
    seqrun_tensor_view(SEQRUN_DTYPE_F32, nullptr, 0, nullptr, 4, &u);
    there_after = seqrun_last_error();
  });
  other.join();
  CHECK(there_before.empty());
  CHECK(there_after == "seqrun_tensor_view: data is NULL");
  CHECK(last_error() == here);  // untouched by the other thread's failure

  // A successful call leaves the message alone.
  const int64_t s[1] = {2};
  REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F32, s, 1, nullptr, 0, &t) == SEQRUN_OK);
  CHECK(last_error() == here);
  seqrun_tensor_free(t);
}
