// The C API's decoding functions (runtime/seqrun.h): decoders (prefill, step, sequences, snapshot/restore)
// against a recurrence computed by a loop here and against rwkv.cpp's expected logits; samplers; text
// generation with a C callback against a greedy loop over the C API's own steps; every error path.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/serialize.h"
#include "ir/text.h"
#include "models/rwkv/rwkv_builder.h"
#include "models/rwkv/rwkv_file.h"
#include "runtime/seqrun.h"

using namespace seqrun;

namespace {

// One state h f32[batch, 3]: per token t, h = decay[t] * h + emb[t] (elementwise); the logits of each
// position are h (vocab 3).
const char* kRecurrence = R"(
graph recurrence(%ids: i64[batch, seq], %state.h: f32[batch, 3]) {
  %decay = const f32[3, 3] [0.5, 1, 0.25, 0.875, 0.125, 1, 0.75, 0.5, 0.625]
  %emb = const f32[3, 3] [1, 2, 3, 4, 5, 6, 7, 8, 9]
  %a = Gather(%decay, %ids) {axis = 0} : f32[batch, seq, 3]
  %b = Gather(%emb, %ids) {axis = 0} : f32[batch, seq, 3]
  %logits, %new_state.h = LinearRecurrence(%a, %b, %state.h) {axis = 1} : f32[batch, seq, 3], f32[batch, 3]
  return %logits, %new_state.h
}
)";
const float kDecay[3][3] = {{0.5f, 1, 0.25f}, {0.875f, 0.125f, 1}, {0.75f, 0.5f, 0.625f}};
const float kEmb[3][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};

// h after `tokens` from h = 0, by the loop above.
std::vector<float> recurrence_after(const std::vector<int32_t>& tokens) {
  std::vector<float> h(3, 0.0f);
  for (int32_t t : tokens) {
    for (int c = 0; c < 3; ++c) h[c] = kDecay[t][c] * h[c] + kEmb[t][c];
  }
  return h;
}

std::string last_error() {
  return seqrun_last_error();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<float> values_of(const seqrun_tensor_t* t) {
  REQUIRE(seqrun_tensor_dtype(t) == SEQRUN_DTYPE_F32);
  const float* p = static_cast<const float*>(seqrun_tensor_data(t));
  return std::vector<float>(p, p + seqrun_tensor_num_elements(t));
}

seqrun_model_t* load_bytes(const std::string& bytes) {
  seqrun_model_t* model = nullptr;
  INFO(seqrun_last_error());
  REQUIRE(seqrun_model_load_from_memory(bytes.data(), bytes.size(), nullptr, &model) == SEQRUN_OK);
  return model;
}

seqrun_model_t* recurrence_model() {
  Result<std::unique_ptr<Graph>> g = parse_graph(kRecurrence);
  INFO((g ? std::string("parsed") : g.status().message()));
  REQUIRE(g.is_ok());
  return load_bytes(serialize_model(**g));
}

// A decoder over a fresh session of `model`; the session is freed at once (the decoder keeps it).
seqrun_decoder_t* make_decoder(seqrun_model_t* model, const seqrun_decoder_options* options = nullptr) {
  seqrun_session_t* session = nullptr;
  REQUIRE(seqrun_session_create(model, nullptr, &session) == SEQRUN_OK);
  seqrun_decoder_t* decoder = nullptr;
  INFO(seqrun_last_error());
  REQUIRE(seqrun_decoder_create(session, options, &decoder) == SEQRUN_OK);
  seqrun_session_free(session);
  return decoder;
}

// The tiny RWKV v5.2 model (vocab 256, bytes), with a bytes tokenizer in its metadata.
std::string rwkv_bytes(bool with_tokenizer) {
  const std::string dir = std::string(SEQRUN_TEST_DATA) + "/rwkv-tiny/";
  auto file = models::rwkv::read_rwkv_file(dir + "tiny-rwkv-5v2-730K-FP32.bin");
  REQUIRE(file.is_ok());
  auto built = models::rwkv::build_rwkv_graph(file.value());
  REQUIRE(built.is_ok());
  SaveOptions save;
  if (with_tokenizer) save.metadata["tokenizer.type"] = "bytes";
  return serialize_model(*built.value().graph, save);
}

std::vector<float> rwkv_expected_logits() {
  std::ifstream in(std::string(SEQRUN_TEST_DATA) + "/rwkv-tiny/expected-logits-5v2-730K.bin",
                   std::ios::binary);
  REQUIRE(in.good());
  std::vector<float> logits(256);
  in.read(reinterpret_cast<char*>(logits.data()), 256 * sizeof(float));
  REQUIRE(in.gcount() == 256 * static_cast<std::streamsize>(sizeof(float)));
  return logits;
}

int argmax(const std::vector<float>& v) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(v.size()); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

struct Collected {
  std::string text;
  int pieces = 0;
  int stop_after = -1;  // return 0 after this many pieces (-1: never)
};

int collect(const char* text, size_t length, void* user_data) {
  Collected* c = static_cast<Collected*>(user_data);
  c->text.append(text, length);
  ++c->pieces;
  return c->stop_after < 0 || c->pieces < c->stop_after ? 1 : 0;
}

}  // namespace

TEST_CASE("c api decode: prefill and steps follow the recurrence; sequences are independent") {
  seqrun_model_t* model = recurrence_model();
  seqrun_decoder_t* decoder = make_decoder(model);
  seqrun_model_free(model);  // the decoder keeps its session, which keeps the model
  CHECK(seqrun_decoder_vocab_size(decoder) == 3);
  CHECK(seqrun_decoder_is_stateful(decoder) == 1);

  int a = -1, b = -1;
  REQUIRE(seqrun_decoder_add_sequence(decoder, &a) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_add_sequence(decoder, &b) == SEQRUN_OK);
  CHECK(a == 0);
  CHECK(b == 1);

  const std::vector<int32_t> prompt = {0, 2, 1};
  seqrun_tensor_t* logits = nullptr;
  REQUIRE(seqrun_decoder_prefill(decoder, a, prompt.data(), prompt.size(), &logits) == SEQRUN_OK);
  CHECK(seqrun_tensor_rank(logits) == 1);
  CHECK(seqrun_tensor_shape(logits)[0] == 3);
  CHECK(values_of(logits) == recurrence_after(prompt));

  // Steps reuse the caller's logits tensor in place.
  seqrun_tensor_t* const handle = logits;
  const void* bytes = seqrun_tensor_data(logits);
  REQUIRE(seqrun_decoder_step(decoder, a, 2, &logits) == SEQRUN_OK);
  CHECK(logits == handle);
  CHECK(seqrun_tensor_data(logits) == bytes);
  CHECK(values_of(logits) == recurrence_after({0, 2, 1, 2}));
  int64_t count = 0;
  REQUIRE(seqrun_decoder_token_count(decoder, a, &count) == SEQRUN_OK);
  CHECK(count == 4);

  // Sequence b, token by token, is untouched by a and equals a prefill of the same tokens.
  for (int32_t t : prompt) REQUIRE(seqrun_decoder_step(decoder, b, t, &logits) == SEQRUN_OK);
  CHECK(values_of(logits) == recurrence_after(prompt));
  REQUIRE(seqrun_decoder_step(decoder, a, 0, nullptr) == SEQRUN_OK);  // logits not wanted
  REQUIRE(seqrun_decoder_token_count(decoder, a, &count) == SEQRUN_OK);
  CHECK(count == 5);

  REQUIRE(seqrun_decoder_reset(decoder, a) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_token_count(decoder, a, &count) == SEQRUN_OK);
  CHECK(count == 0);
  REQUIRE(seqrun_decoder_prefill(decoder, a, prompt.data(), 1, &logits) == SEQRUN_OK);
  CHECK(values_of(logits) == recurrence_after({0}));

  REQUIRE(seqrun_decoder_remove_sequence(decoder, b) == SEQRUN_OK);
  CHECK(seqrun_decoder_remove_sequence(decoder, b) == SEQRUN_ERROR_NOT_FOUND);
  CHECK(contains(last_error(), "seqrun_decoder_remove_sequence: sequence 1 does not exist"));

  seqrun_tensor_free(logits);
  seqrun_decoder_free(decoder);
  seqrun_decoder_free(nullptr);
}

TEST_CASE("c api decode: snapshots roll a sequence back, into itself or another sequence") {
  seqrun_model_t* model = recurrence_model();
  seqrun_decoder_t* decoder = make_decoder(model);
  int a = -1, b = -1;
  REQUIRE(seqrun_decoder_add_sequence(decoder, &a) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_add_sequence(decoder, &b) == SEQRUN_OK);
  const std::vector<int32_t> prompt = {1, 1, 2};
  REQUIRE(seqrun_decoder_prefill(decoder, a, prompt.data(), prompt.size(), nullptr) == SEQRUN_OK);
  seqrun_snapshot_t* snapshot = nullptr;
  REQUIRE(seqrun_decoder_snapshot(decoder, a, &snapshot) == SEQRUN_OK);
  CHECK(seqrun_snapshot_token_count(snapshot) == 3);

  seqrun_tensor_t* first = nullptr;
  REQUIRE(seqrun_decoder_step(decoder, a, 0, &first) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_step(decoder, a, 2, &first) == SEQRUN_OK);
  CHECK(values_of(first) == recurrence_after({1, 1, 2, 0, 2}));

  // Back to the snapshot: the same steps give the same bits.
  REQUIRE(seqrun_decoder_restore(decoder, a, snapshot) == SEQRUN_OK);
  int64_t count = 0;
  REQUIRE(seqrun_decoder_token_count(decoder, a, &count) == SEQRUN_OK);
  CHECK(count == 3);
  seqrun_tensor_t* again = nullptr;
  REQUIRE(seqrun_decoder_step(decoder, a, 0, &again) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_step(decoder, a, 2, &again) == SEQRUN_OK);
  CHECK(std::memcmp(seqrun_tensor_data(first), seqrun_tensor_data(again), 12) == 0);

  // Into another sequence (and a second decoder over the same model).
  REQUIRE(seqrun_decoder_restore(decoder, b, snapshot) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_step(decoder, b, 1, &again) == SEQRUN_OK);
  CHECK(values_of(again) == recurrence_after({1, 1, 2, 1}));
  seqrun_decoder_t* other = make_decoder(model);
  int c = -1;
  REQUIRE(seqrun_decoder_add_sequence(other, &c) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_restore(other, c, snapshot) == SEQRUN_OK);
  REQUIRE(seqrun_decoder_step(other, c, 1, &again) == SEQRUN_OK);
  CHECK(values_of(again) == recurrence_after({1, 1, 2, 1}));

  SECTION("errors") {
    seqrun_snapshot_t* none = reinterpret_cast<seqrun_snapshot_t*>(&count);  // must become NULL
    CHECK(seqrun_decoder_snapshot(decoder, 9, &none) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(none == nullptr);
    CHECK(contains(last_error(), "seqrun_decoder_snapshot: sequence 9 does not exist (the sequences: 0, 1)"));
    CHECK(seqrun_decoder_snapshot(decoder, a, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_decoder_snapshot: out is NULL");
    CHECK(seqrun_decoder_snapshot(nullptr, a, &none) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_decoder_snapshot: decoder is NULL");
    CHECK(seqrun_decoder_restore(decoder, a, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_decoder_restore: snapshot is NULL");
    CHECK(seqrun_decoder_restore(decoder, 9, snapshot) == SEQRUN_ERROR_NOT_FOUND);
    CHECK(seqrun_decoder_restore(nullptr, a, snapshot) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(seqrun_snapshot_token_count(nullptr) == 0);
    seqrun_snapshot_free(nullptr);

    // A snapshot of another model does not fit: its state has other shapes.
    seqrun_model_t* rwkv = load_bytes(rwkv_bytes(false));
    seqrun_decoder_t* rwkv_decoder = make_decoder(rwkv);
    int r = -1;
    REQUIRE(seqrun_decoder_add_sequence(rwkv_decoder, &r) == SEQRUN_OK);
    CHECK(seqrun_decoder_restore(rwkv_decoder, r, snapshot) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "seqrun_decoder_restore: sequence 0: restore: "));
    seqrun_decoder_free(rwkv_decoder);
    seqrun_model_free(rwkv);
  }

  seqrun_tensor_free(first);
  seqrun_tensor_free(again);
  seqrun_snapshot_free(snapshot);
  seqrun_decoder_free(decoder);
  seqrun_decoder_free(other);
  seqrun_model_free(model);
}

TEST_CASE("c api decode: errors name the sequence, the token or the argument") {
  seqrun_model_t* model = recurrence_model();
  seqrun_decoder_options options;
  seqrun_decoder_options_init(&options);
  CHECK(options.max_context == 0);
  CHECK(options.prefill_chunk == 0);
  options.max_context = 4;
  seqrun_decoder_t* decoder = make_decoder(model, &options);
  int a = -1;
  REQUIRE(seqrun_decoder_add_sequence(decoder, &a) == SEQRUN_OK);
  const int32_t tokens[5] = {0, 1, 2, 0, 1};
  seqrun_tensor_t* logits = nullptr;

  CHECK(seqrun_decoder_prefill(decoder, 5, tokens, 2, &logits) == SEQRUN_ERROR_NOT_FOUND);
  CHECK(last_error() == "seqrun_decoder_prefill: sequence 5 does not exist (the sequences: 0)");
  CHECK(seqrun_decoder_step(decoder, 5, 0, &logits) == SEQRUN_ERROR_NOT_FOUND);
  CHECK(seqrun_decoder_reset(decoder, 5) == SEQRUN_ERROR_NOT_FOUND);
  int64_t count = 0;
  CHECK(seqrun_decoder_token_count(decoder, 5, &count) == SEQRUN_ERROR_NOT_FOUND);
  CHECK(seqrun_decoder_token_count(decoder, a, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_decoder_token_count: count is NULL");
  CHECK(seqrun_decoder_prefill(decoder, a, nullptr, 2, &logits) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_decoder_prefill: tokens is NULL");
  CHECK(seqrun_decoder_prefill(decoder, a, tokens, 0, &logits) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_decoder_prefill: count is 0 (a prefill needs at least one token)");
  CHECK(seqrun_decoder_prefill(nullptr, a, tokens, 1, &logits) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_decoder_prefill: decoder is NULL");
  CHECK(seqrun_decoder_step(nullptr, a, 0, &logits) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_decoder_step: decoder is NULL");
  CHECK(seqrun_decoder_add_sequence(decoder, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(seqrun_decoder_add_sequence(nullptr, &a) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(seqrun_decoder_remove_sequence(nullptr, a) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(seqrun_decoder_reset(nullptr, a) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(seqrun_decoder_vocab_size(nullptr) == -1);
  CHECK(seqrun_decoder_is_stateful(nullptr) == 0);

  // Token 3 is outside the vocabulary [0, 3); five tokens exceed max_context 4. Neither changes the sequence.
  const int32_t bad[2] = {1, 3};
  CHECK(seqrun_decoder_prefill(decoder, a, bad, 2, &logits) == SEQRUN_ERROR_RUN);
  CHECK(contains(last_error(),
                 "seqrun_decoder_prefill: sequence 0: token #1 (id 3) is outside the vocabulary"));
  CHECK(seqrun_decoder_prefill(decoder, a, tokens, 5, &logits) == SEQRUN_ERROR_RUN);
  CHECK(contains(last_error(), "exceeds --max-context 4"));
  CHECK(logits == nullptr);
  REQUIRE(seqrun_decoder_token_count(decoder, a, &count) == SEQRUN_OK);
  CHECK(count == 0);

  // Decoder creation: NULLs, and a model that takes no token ids.
  seqrun_session_t* session = nullptr;
  REQUIRE(seqrun_session_create(model, nullptr, &session) == SEQRUN_OK);
  seqrun_decoder_t* none = reinterpret_cast<seqrun_decoder_t*>(&count);
  CHECK(seqrun_decoder_create(nullptr, nullptr, &none) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(none == nullptr);
  CHECK(last_error() == "seqrun_decoder_create: session is NULL");
  CHECK(seqrun_decoder_create(session, nullptr, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(last_error() == "seqrun_decoder_create: out is NULL");
  options.max_context = -1;
  CHECK(seqrun_decoder_create(session, &options, &none) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "max_context -1 is negative"));
  seqrun_session_free(session);

  auto g = std::make_unique<Graph>("floats");
  Value* x = g->add_input("x", TensorType(DType::f32, {Dim::symbol("batch"), Dim(4)}));
  Node* relu = g->add_node("Relu", {x}, 1, {}, {"y"});
  g->set_outputs({relu->output(0)});
  seqrun_model_t* floats = load_bytes(serialize_model(*g));
  REQUIRE(seqrun_session_create(floats, nullptr, &session) == SEQRUN_OK);
  CHECK(seqrun_decoder_create(session, nullptr, &none) == SEQRUN_ERROR_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "seqrun_decoder_create: "));
  CHECK(contains(last_error(), "'x'"));
  seqrun_session_free(session);
  seqrun_model_free(floats);

  seqrun_decoder_free(decoder);
  seqrun_model_free(model);
}

TEST_CASE("c api decode: samplers") {
  seqrun_sampling_options options;
  seqrun_sampling_options_init(&options);
  CHECK(options.temperature == 1.0);
  CHECK(options.top_k == 0);
  CHECK(options.top_p == 1.0);
  CHECK(options.seed == 0);

  const std::vector<float> values = {0.5f, 3.0f, -1.0f, 2.75f};
  const int64_t shape[1] = {4};
  seqrun_tensor_t* logits = nullptr;
  REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, 1, values.data(), 16, &logits) == SEQRUN_OK);

  options.temperature = 0;  // greedy: the argmax
  seqrun_sampler_t* greedy = nullptr;
  REQUIRE(seqrun_sampler_create(&options, &greedy) == SEQRUN_OK);
  int32_t token = -1;
  REQUIRE(seqrun_sampler_sample(greedy, logits, &token) == SEQRUN_OK);
  CHECK(token == 1);

  // top_k = 2 keeps tokens 1 and 3; the same seed draws the same tokens.
  options.temperature = 1;
  options.top_k = 2;
  options.seed = 42;
  seqrun_sampler_t* s1 = nullptr;
  seqrun_sampler_t* s2 = nullptr;
  REQUIRE(seqrun_sampler_create(&options, &s1) == SEQRUN_OK);
  REQUIRE(seqrun_sampler_create(&options, &s2) == SEQRUN_OK);
  for (int i = 0; i < 50; ++i) {
    int32_t t1 = -1, t2 = -2;
    REQUIRE(seqrun_sampler_sample(s1, logits, &t1) == SEQRUN_OK);
    REQUIRE(seqrun_sampler_sample(s2, logits, &t2) == SEQRUN_OK);
    CHECK(t1 == t2);
    CHECK((t1 == 1 || t1 == 3));
  }
  seqrun_sampler_t* defaults = nullptr;
  REQUIRE(seqrun_sampler_create(nullptr, &defaults) == SEQRUN_OK);
  REQUIRE(seqrun_sampler_sample(defaults, logits, &token) == SEQRUN_OK);
  CHECK((token >= 0 && token < 4));

  SECTION("errors") {
    seqrun_sampler_t* none = reinterpret_cast<seqrun_sampler_t*>(&token);
    options.top_p = 0;
    CHECK(seqrun_sampler_create(&options, &none) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(none == nullptr);
    CHECK(contains(last_error(), "seqrun_sampler_create: "));
    CHECK(contains(last_error(), "top_p"));
    CHECK(seqrun_sampler_create(nullptr, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_sampler_create: out is NULL");
    CHECK(seqrun_sampler_sample(nullptr, logits, &token) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_sampler_sample: sampler is NULL");
    CHECK(seqrun_sampler_sample(greedy, nullptr, &token) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_sampler_sample: logits is NULL");
    CHECK(seqrun_sampler_sample(greedy, logits, nullptr) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_sampler_sample: token is NULL");
    seqrun_tensor_t* ints = nullptr;
    REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_I32, shape, 1, nullptr, 0, &ints) == SEQRUN_OK);
    CHECK(seqrun_sampler_sample(greedy, ints, &token) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_sampler_sample: logits are i32, expected f32");
    seqrun_tensor_free(ints);
    const std::vector<float> nan_values = {0.0f, std::nanf(""), 1.0f, 2.0f};
    seqrun_tensor_t* nan_logits = nullptr;
    REQUIRE(seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, 1, nan_values.data(), 16, &nan_logits) ==
            SEQRUN_OK);
    CHECK(seqrun_sampler_sample(greedy, nan_logits, &token) == SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "seqrun_sampler_sample: "));
    seqrun_tensor_free(nan_logits);
    seqrun_sampler_free(nullptr);
  }

  seqrun_sampler_free(greedy);
  seqrun_sampler_free(s1);
  seqrun_sampler_free(s2);
  seqrun_sampler_free(defaults);
  seqrun_tensor_free(logits);
}

TEST_CASE("c api decode: the tiny RWKV through the C API matches rwkv.cpp; generate streams greedy text") {
  seqrun_model_t* model = load_bytes(rwkv_bytes(true));
  seqrun_decoder_t* decoder = make_decoder(model);
  CHECK(seqrun_decoder_vocab_size(decoder) == 256);

  // rwkv.cpp's logits after the bytes of '"in' (its own test protocol: within about 1e-5).
  int seq = -1;
  REQUIRE(seqrun_decoder_add_sequence(decoder, &seq) == SEQRUN_OK);
  const std::vector<int32_t> prompt = {'"', 'i', 'n'};
  seqrun_tensor_t* logits = nullptr;
  REQUIRE(seqrun_decoder_prefill(decoder, seq, prompt.data(), prompt.size(), &logits) == SEQRUN_OK);
  const std::vector<float> want = rwkv_expected_logits();
  const std::vector<float> got = values_of(logits);
  REQUIRE(got.size() == 256);
  double worst = 0;
  for (int v = 0; v < 256; ++v) worst = std::max(worst, std::fabs(static_cast<double>(got[v]) - want[v]));
  CHECK(worst <= 1e-4);

  // Greedy continuation by hand: argmax, step, twelve times.
  std::string by_hand;
  std::vector<float> current = got;
  for (int i = 0; i < 12; ++i) {
    const int next = argmax(current);
    by_hand += static_cast<char>(next);
    REQUIRE(seqrun_decoder_step(decoder, seq, next, &logits) == SEQRUN_OK);
    current = values_of(logits);
  }
  REQUIRE(seqrun_decoder_remove_sequence(decoder, seq) == SEQRUN_OK);

  // seqrun_generate, greedy, gives the same text through the callback.
  seqrun_generate_options options;
  seqrun_generate_options_init(&options);
  CHECK(options.max_tokens == 100);
  CHECK(options.stop_at_eos == 1);
  CHECK(options.num_stop == 0);
  options.max_tokens = 12;
  options.sampling.temperature = 0;
  Collected collected;
  seqrun_generate_stats stats;
  REQUIRE(seqrun_generate(decoder, "\"in", &options, collect, &collected, &stats) == SEQRUN_OK);
  CHECK(collected.text == by_hand);
  CHECK(collected.pieces >= 1);
  CHECK(stats.prompt_tokens == 3);
  CHECK(stats.generated_tokens == 12);
  CHECK(std::string(stats.finish_reason) == "length");
  CHECK(stats.prompt_seconds > 0);
  CHECK(stats.generation_seconds > 0);

  SECTION("the callback ends generation by returning 0") {
    Collected stopping;
    stopping.stop_after = 1;
    REQUIRE(seqrun_generate(decoder, "\"in", &options, collect, &stopping, &stats) == SEQRUN_OK);
    CHECK(stopping.pieces == 1);
    CHECK(std::string(stats.finish_reason) == "callback");
    CHECK(by_hand.compare(0, stopping.text.size(), stopping.text) == 0);
  }

  SECTION("a stop string cuts the text before it") {
    REQUIRE(by_hand.size() > 4);
    const std::string stop = by_hand.substr(3, 2);
    const char* stops[1] = {stop.c_str()};
    options.stop = stops;
    options.num_stop = 1;
    Collected cut;
    REQUIRE(seqrun_generate(decoder, "\"in", &options, collect, &cut, &stats) == SEQRUN_OK);
    CHECK(std::string(stats.finish_reason) == "stop");
    CHECK(cut.text == by_hand.substr(0, by_hand.find(stop)));
  }

  SECTION("no callback, no stats") {
    REQUIRE(seqrun_generate(decoder, "\"in", &options, nullptr, nullptr, nullptr) == SEQRUN_OK);
  }

  SECTION("errors") {
    CHECK(seqrun_generate(nullptr, "x", &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_generate: decoder is NULL");
    CHECK(seqrun_generate(decoder, nullptr, &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_generate: prompt is NULL");
    options.num_stop = 2;
    CHECK(seqrun_generate(decoder, "x", &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_generate: stop is NULL but num_stop is 2");
    const char* null_stop[1] = {nullptr};
    options.stop = null_stop;
    options.num_stop = 1;
    CHECK(seqrun_generate(decoder, "x", &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_generate: stop[0] is NULL");
    options.num_stop = 0;
    options.max_tokens = -1;
    CHECK(seqrun_generate(decoder, "x", &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(last_error() == "seqrun_generate: max_tokens -1 must be >= 0");
    options.max_tokens = 4;
    options.sampling.temperature = -1;
    CHECK(seqrun_generate(decoder, "x", &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "temperature"));
    options.sampling.temperature = 0;
    CHECK(seqrun_generate(decoder, "", &options, collect, &collected, &stats) == SEQRUN_ERROR_RUN);
    CHECK(contains(last_error(), "the prompt is empty"));

    // A model without a tokenizer.
    seqrun_model_t* bare = load_bytes(rwkv_bytes(false));
    seqrun_decoder_t* bare_decoder = make_decoder(bare);
    CHECK(seqrun_generate(bare_decoder, "x", &options, collect, &collected, &stats) ==
          SEQRUN_ERROR_NOT_FOUND);
    CHECK(last_error() ==
          "seqrun_generate: the model has no tokenizer (export it with seqrun-export ... --tokenizer)");
    seqrun_decoder_free(bare_decoder);
    seqrun_model_free(bare);
  }

  seqrun_tensor_free(logits);
  seqrun_decoder_free(decoder);
  seqrun_model_free(model);
}
