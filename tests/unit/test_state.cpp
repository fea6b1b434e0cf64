// Stateful sessions and generation (runtime/state.h, runtime/generate.h): the state convention; prefill +
// steps equal the sequence graph on the whole text (the four tiny RWKV models of tests/data/rwkv-tiny, and a
// small recurrence checked against a loop written here); snapshot/restore rolls back bitwise; interleaved
// sequences equal each one alone; state stays in its persistent buffers; --max-context errors; generate()
// against a greedy loop over the plain graph and rwkv.cpp's expected logits, with stop strings, eos and its
// stats.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "ir/serialize.h"
#include "ir/text.h"
#include "models/rwkv/rwkv_builder.h"
#include "models/rwkv/rwkv_file.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "runtime/state.h"
#include "runtime/tokenizer.h"

using namespace seqrun;
using namespace seqrun::runtime;
using namespace seqrun::models::rwkv;

namespace {

const std::string kDataDir = std::string(SEQRUN_TEST_DATA) + "/rwkv-tiny/";
const char* kVersions[] = {"4v0-660K", "5v1-730K", "5v2-730K", "7v0-834K"};

struct RwkvModel {
  std::unique_ptr<Session> session;
  RwkvModelInfo info;
};

RwkvModel load_rwkv(const std::string& version) {
  auto file = read_rwkv_file(kDataDir + "tiny-rwkv-" + version + "-FP32.bin");
  REQUIRE(file.is_ok());
  auto built = build_rwkv_graph(file.value());
  REQUIRE(built.is_ok());
  const RwkvModelInfo info = built.value().info;
  auto session = Session::from_graph(std::move(built.value().graph));
  INFO((session ? std::string("session") : session.status().message()));
  REQUIRE(session.is_ok());
  return {std::move(session).value(), info};
}

std::vector<float> expected_logits(const std::string& version) {
  std::ifstream in(kDataDir + "expected-logits-" + version + ".bin", std::ios::binary);
  REQUIRE(in.good());
  std::vector<float> logits(256);
  in.read(reinterpret_cast<char*>(logits.data()), 256 * sizeof(float));
  REQUIRE(in.gcount() == 256 * static_cast<std::streamsize>(sizeof(float)));
  return logits;
}

// The plain sequence graph on all of `tokens` from the zero state: logits f32[1, T, 256].
Tensor full_sequence_logits(const RwkvModel& m, const std::vector<int32_t>& tokens) {
  std::vector<int64_t> ids(tokens.begin(), tokens.end());
  std::vector<Tensor> inputs = {Tensor::from_vector<int64_t>({1, static_cast<int64_t>(ids.size())}, ids)};
  for (const Tensor& s : rwkv_initial_states(m.info, 1)) inputs.push_back(s);
  auto out = m.session->run(inputs);
  INFO((out ? std::string("ran") : out.status().message()));
  REQUIRE(out.is_ok());
  return out.value()[0];
}

double max_abs_row_diff(const Tensor& logits, int64_t t, const Tensor& row) {
  const int64_t V = logits.dim(-1);
  REQUIRE(row.numel() == V);
  double worst = 0;
  for (int64_t v = 0; v < V; ++v) {
    worst = std::max(worst,
                     std::fabs(static_cast<double>(logits.data<float>()[t * V + v]) - row.data<float>()[v]));
  }
  return worst;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::unique_ptr<StatefulSession> make_stateful(const Session& session, const StatefulOptions& options = {}) {
  auto created = StatefulSession::create(session, options);
  INFO((created ? std::string("created") : created.status().message()));
  REQUIRE(created.is_ok());
  return std::move(created).value();
}

Tensor require_logits(Result<Tensor> r) {
  INFO((r ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return r.value().clone();
}

std::vector<int32_t> bytes_of(const std::string& text) {
  std::vector<int32_t> ids;
  for (char c : text) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

// A small recurrence with one state h f32[batch, 3]: per token t, h = decay[t] * h + emb[t] (elementwise),
// and the logits of each position are h itself (vocab 3). The state output comes first, so positions and
// indices differ between inputs and outputs. {IN}/{OUT} are the state's names.
const char* kRecurrence = R"(
graph recurrence(%ids: i64[batch, seq], %{IN}: f32[batch, 3]) {
  %decay = const f32[3, 3] [0.5, 1, 0.25, 0.875, 0.125, 1, 0.75, 0.5, 0.625]
  %emb = const f32[3, 3] [1, 2, 3, 4, 5, 6, 7, 8, 9]
  %a = Gather(%decay, %ids) {axis = 0} : f32[batch, seq, 3]
  %b = Gather(%emb, %ids) {axis = 0} : f32[batch, seq, 3]
  %logits, %{OUT} = LinearRecurrence(%a, %b, %{IN}) {axis = 1} : f32[batch, seq, 3], f32[batch, 3]
  return %{OUT}, %logits
}
)";
const float kDecay[3][3] = {{0.5f, 1, 0.25f}, {0.875f, 0.125f, 1}, {0.75f, 0.5f, 0.625f}};
const float kEmb[3][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};

std::string recurrence_text(const std::string& in, const std::string& out) {
  std::string text = kRecurrence;
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"{IN}", in}, {"{OUT}", out}}) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key))
      text.replace(at, key.size(), value);
  }
  return text;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::unique_ptr<Graph> parse(const std::string& text) {
  auto g = parse_graph(text);
  INFO((g ? std::string("parsed") : g.status().message()));
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

// The recurrence's logits after each token, by the loop above.
std::vector<std::vector<float>> recurrence_reference(const std::vector<int32_t>& tokens) {
  std::vector<std::vector<float>> rows;
  std::vector<float> h(3, 0.0f);
  for (int32_t t : tokens) {
    for (int c = 0; c < 3; ++c) h[c] = kDecay[t][c] * h[c] + kEmb[t][c];
    rows.push_back(h);
  }
  return rows;
}

// A .seqrun file in the temp folder, removed at scope exit.
struct TempModel {
  std::string path;
  TempModel(const Graph& g, const std::map<std::string, std::string>& metadata, const std::string& tag) {
    path = (std::filesystem::temp_directory_path() /
            ("seqrun_test_state_" + tag + "_" + std::to_string(::getpid()) + ".seqrun"))
               .string();
    SaveOptions save;
    save.metadata = metadata;
    REQUIRE(save_model(g, path, save).is_ok());
  }
  ~TempModel() { std::filesystem::remove(path); }
};

}  // namespace

// ---- the state convention -----------------------------------------------------------------------------

TEST_CASE("state: the RWKV graphs declare their state by name") {
  RwkvModel m = load_rwkv("5v2-730K");
  auto sig = find_state_signature(m.session->graph(), {});
  REQUIRE(sig.is_ok());
  CHECK(sig->token_input == 0);
  CHECK(sig->token_input_name == "tokens");
  CHECK(sig->token_dtype == DType::i64);
  CHECK(sig->logits_output == 0);
  CHECK(sig->logits_per_position);
  CHECK(sig->vocab_size == 256);
  REQUIRE(sig->states.size() == 3 * 12);
  const std::vector<Tensor> zero = rwkv_initial_states(m.info, 1);
  for (size_t i = 0; i < sig->states.size(); ++i) {
    const StateSlot& s = sig->states[i];
    const std::string key = std::to_string(i / 3) + "." +
                            (i % 3 == 0   ? "att_shift"
                             : i % 3 == 1 ? "wkv"
                                          : "ffn_shift");
    CHECK(s.input_name == "state." + key);
    CHECK(s.output_name == "new_state." + key);
    CHECK(s.input_index == static_cast<int>(i) + 1);
    CHECK(s.output_index == static_cast<int>(i) + 1);
    CHECK(s.dtype == DType::f32);
    CHECK(s.shape == zero[i].shape());
  }
  // 12 layers x (64 + 8*8*8 + 64) floats.
  CHECK(sig->state_bytes() == 12 * (64 + 512 + 64) * 4);
}

TEST_CASE("state: metadata pairs state inputs and outputs; bad declarations are errors naming the value") {
  SECTION("metadata") {
    auto g = parse(recurrence_text("h", "h_next"));
    auto sig = find_state_signature(*g, {{kStateInputsKey, " h "}, {kStateOutputsKey, "h_next"}});
    INFO((sig ? std::string("ok") : sig.status().message()));
    REQUIRE(sig.is_ok());
    REQUIRE(sig->states.size() == 1);
    CHECK(sig->states[0].input_index == 1);
    CHECK(sig->states[0].output_index == 0);
    CHECK(sig->states[0].shape == Shape{1, 3});
    CHECK(sig->logits_output == 1);
    CHECK(sig->vocab_size == 3);
    // Without the metadata, "h" is just another input.
    auto plain = find_state_signature(*g, {});
    REQUIRE_FALSE(plain.is_ok());
    CHECK(plain.status().message() ==
          "the graph has 2 inputs besides its state and position ('ids', 'h'); a sequence graph takes "
          "exactly one, the "
          "token "
          "ids [batch, seq]");
  }
  SECTION("names") {
    auto g = parse(recurrence_text("\"state.h\"", "\"new_state.h\""));
    auto sig = find_state_signature(*g, {});
    REQUIRE(sig.is_ok());
    REQUIRE(sig->states.size() == 1);
    CHECK(sig->states[0].output_index == 0);
  }
  SECTION("errors") {
    auto unpaired = parse(recurrence_text("\"state.h\"", "\"new_state.x\""));
    auto r = find_state_signature(*unpaired, {});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message() ==
          "state input 'state.h' has no paired output 'new_state.h' (the outputs: 'new_state.x', 'logits')");
    auto g = parse(recurrence_text("h", "h_next"));
    r = find_state_signature(*g, {{kStateInputsKey, "h"}, {kStateOutputsKey, "nope"}});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message() ==
          "metadata 'seqrun.state_outputs': 'nope' is not a graph output (the outputs: 'h_next', 'logits')");
    r = find_state_signature(*g, {{kStateInputsKey, "h"}});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("'seqrun.state_outputs'") != std::string::npos);
    // One symbolic non-batch dim is a growing state (a KV cache's capacity axis); its output must match it,
    // and two symbolic dims are refused, saying why.
    const std::string growing =
        replaced(recurrence_text("h", "h_next"), "%h: f32[batch, 3]", "%h: f32[batch, past]");
    auto gg = parse_graph(growing);
    REQUIRE(gg.is_ok());
    r = find_state_signature(*gg.value(), {{kStateInputsKey, "h"}, {kStateOutputsKey, "h_next"}});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message() ==
          "state output 'h_next' has type f32[batch, 3] but its input 'h' has f32[batch, past]");
    auto kv = parse(R"(graph g(%ids: i64[batch, seq], %kv: f32[batch, 2, cap, 4]) {
  %emb = const f32[2, 3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
  %logits = Gather(%emb, %ids) {axis = 0} : f32[batch, seq, 3]
  %kv_next = Identity(%kv) : f32[batch, 2, cap, 4]
  return %logits, %kv_next
})");
    r = find_state_signature(*kv, {{kStateInputsKey, "kv"}, {kStateOutputsKey, "kv_next"}});
    INFO(r.status().message());
    REQUIRE(r.is_ok());
    REQUIRE(r.value().states.size() == 1);
    CHECK(r.value().states[0].grow_axis == 2);
    CHECK(r.value().states[0].shape == Shape({1, 2, 0, 4}));
    const std::string two =
        replaced(recurrence_text("h", "h_next"), "%h: f32[batch, 3]", "%h: f32[batch, past, more]");
    auto g2 = parse_graph(two);
    REQUIRE(g2.is_ok());
    r = find_state_signature(*g2.value(), {{kStateInputsKey, "h"}, {kStateOutputsKey, "h_next"}});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("state input 'h'") != std::string::npos);
    CHECK(r.status().message().find("one symbolic dim") != std::string::npos);
  }
}

// ---- prefill / step against the sequence graph --------------------------------------------------------

TEST_CASE("state: prefill(n) then k steps equals the sequence graph on n + k tokens (RWKV)") {
  const std::vector<int32_t> text = bytes_of("\"in the beginning");
  const size_t n = 5;
  for (const char* version : kVersions) {
    for (int64_t chunk : {0, 2}) {
      SECTION(std::string(version) + " chunk " + std::to_string(chunk)) {
        RwkvModel m = load_rwkv(version);
        const Tensor full = full_sequence_logits(m, text);
        StatefulOptions options;
        options.prefill_chunk = chunk;
        auto ss = make_stateful(*m.session, options);
        const int seq = ss->add_sequence();
        Tensor logits =
            require_logits(ss->prefill(seq, std::vector<int32_t>(text.begin(), text.begin() + n)));
        CHECK(max_abs_row_diff(full, n - 1, logits) <= 1e-4);
        for (size_t t = n; t < text.size(); ++t) {
          logits = require_logits(ss->step(seq, text[t]));
          INFO("token " << t);
          CHECK(max_abs_row_diff(full, t, logits) <= 1e-4);
        }
        CHECK(ss->token_count(seq).value() == static_cast<int64_t>(text.size()));
      }
    }
  }
}

TEST_CASE("state: the prompt '\"in' reproduces rwkv.cpp's logits through prefill and through steps") {
  for (const char* version : kVersions) {
    SECTION(version) {
      RwkvModel m = load_rwkv(version);
      const std::vector<float> want = expected_logits(version);
      auto ss = make_stateful(*m.session);
      const int a = ss->add_sequence(), b = ss->add_sequence();
      Tensor prefilled = require_logits(ss->prefill(a, bytes_of("\"in")));
      Tensor stepped;
      for (int32_t t : bytes_of("\"in")) stepped = require_logits(ss->step(b, t));
      double worst_prefill = 0, worst_step = 0;
      for (int v = 0; v < 256; ++v) {
        worst_prefill =
            std::max(worst_prefill, std::fabs(static_cast<double>(prefilled.data<float>()[v]) - want[v]));
        worst_step = std::max(worst_step, std::fabs(static_cast<double>(stepped.data<float>()[v]) - want[v]));
      }
      CHECK(worst_prefill <= 1e-4);
      CHECK(worst_step <= 1e-4);
    }
  }
}

TEST_CASE("state: a recurrence declared by metadata, run from a .seqrun file, matches a loop") {
  auto g = parse(recurrence_text("h", "h_next"));
  TempModel file(*g, {{kStateInputsKey, "h"}, {kStateOutputsKey, "h_next"}}, "recurrence");
  auto session = Session::load(file.path);
  INFO((session ? std::string("loaded") : session.status().message()));
  REQUIRE(session.is_ok());
  for (int64_t chunk : {0, 1, 2}) {
    StatefulOptions options;
    options.prefill_chunk = chunk;
    auto ss = make_stateful(*session.value(), options);
    const std::vector<int32_t> tokens = {2, 0, 1, 1, 2, 0, 2};
    const auto want = recurrence_reference(tokens);
    const int seq = ss->add_sequence();
    Tensor logits = require_logits(ss->prefill(seq, {2, 0, 1, 1}));
    for (size_t t = 3;; ++t) {
      INFO("chunk " << chunk << ", token " << t);
      for (int c = 0; c < 3; ++c) CHECK(logits.data<float>()[c] == Approx(want[t][c]).epsilon(1e-6));
      if (t + 1 == tokens.size()) break;
      logits = require_logits(ss->step(seq, tokens[t + 1]));
    }
    // The state is h itself.
    auto states = ss->states(seq);
    REQUIRE(states.is_ok());
    for (int c = 0; c < 3; ++c)
      CHECK(states.value()[0].data<float>()[c] == Approx(want.back()[c]).epsilon(1e-6));
  }
}

TEST_CASE("state: a graph without state reruns the whole history and matches a loop") {
  // The recurrence with its initial state as a constant zero instead of an input: no state declared.
  const std::string text =
      replaced(replaced(recurrence_text("h", "h_next"), ", %h: f32[batch, 3]", ""), "%b, %h)", "%b)");
  auto session = Session::from_graph(parse(text));
  INFO((session ? std::string("session") : session.status().message()));
  REQUIRE(session.is_ok());
  auto ss = make_stateful(*session.value());
  CHECK_FALSE(ss->signature().stateful());
  const std::vector<int32_t> tokens = {1, 2, 2, 0, 1};
  const auto want = recurrence_reference(tokens);
  const int seq = ss->add_sequence();
  Tensor logits = require_logits(ss->prefill(seq, {1, 2}));
  auto snap = ss->snapshot(seq);
  REQUIRE(snap.is_ok());
  CHECK(snap->history == std::vector<int32_t>{1, 2});
  for (size_t t = 1;; ++t) {
    INFO("token " << t);
    for (int c = 0; c < 3; ++c) CHECK(logits.data<float>()[c] == Approx(want[t][c]).epsilon(1e-6));
    if (t + 1 == tokens.size()) break;
    logits = require_logits(ss->step(seq, tokens[t + 1]));
  }
  REQUIRE(ss->restore(seq, snap.value()).is_ok());
  CHECK(ss->token_count(seq).value() == 2);
  logits = require_logits(ss->step(seq, 2));
  for (int c = 0; c < 3; ++c) CHECK(logits.data<float>()[c] == Approx(want[2][c]).epsilon(1e-6));
}

// ---- snapshot / restore, several sequences, zero-copy --------------------------------------------------

TEST_CASE("state: snapshot/restore rolls a sequence back exactly") {
  for (const char* version : {"5v2-730K", "7v0-834K", "4v0-660K"}) {
    SECTION(version) {
      RwkvModel m = load_rwkv(version);
      auto ss = make_stateful(*m.session);
      const int seq = ss->add_sequence();
      const Tensor after_prompt = require_logits(ss->prefill(seq, bytes_of("Once upon")));
      auto snap = ss->snapshot(seq);
      REQUIRE(snap.is_ok());
      CHECK(snap->token_count == 9);
      CHECK(same_bytes(snap->logits, after_prompt));
      // The snapshot is a copy: running on changes the sequence, not the snapshot.
      const std::vector<Tensor> saved_states = [&] {
        std::vector<Tensor> copies;
        for (const Tensor& t : snap->states) copies.push_back(t.clone());
        return copies;
      }();
      std::vector<Tensor> first;
      for (int32_t t : bytes_of(" a time")) first.push_back(require_logits(ss->step(seq, t)));
      for (size_t i = 0; i < saved_states.size(); ++i) CHECK(same_bytes(snap->states[i], saved_states[i]));

      REQUIRE(ss->restore(seq, snap.value()).is_ok());
      CHECK(ss->token_count(seq).value() == 9);
      CHECK(same_bytes(ss->last_logits(seq).value(), after_prompt));
      auto states = ss->states(seq);
      REQUIRE(states.is_ok());
      for (size_t i = 0; i < saved_states.size(); ++i) CHECK(same_bytes(states.value()[i], saved_states[i]));
      // Speculative rollback: a different continuation, then back again and the first one replays bitwise.
      for (int32_t t : bytes_of(" the end")) require_logits(ss->step(seq, t));
      REQUIRE(ss->restore(seq, snap.value()).is_ok());
      size_t k = 0;
      for (int32_t t : bytes_of(" a time")) CHECK(same_bytes(require_logits(ss->step(seq, t)), first[k++]));

      // Restoring into another sequence (prefix caching) continues identically there.
      const int other = ss->add_sequence();
      REQUIRE(ss->restore(other, snap.value()).is_ok());
      k = 0;
      for (int32_t t : bytes_of(" a time")) CHECK(same_bytes(require_logits(ss->step(other, t)), first[k++]));
    }
  }
}

TEST_CASE("state: interleaved sequences give the same results as each one alone") {
  for (const char* version : {"5v1-730K", "7v0-834K"}) {
    SECTION(version) {
      RwkvModel m = load_rwkv(version);
      const std::vector<int32_t> text_a = bytes_of("The quick brown fox");
      const std::vector<int32_t> text_b = bytes_of("jumps over the lazy dog!");
      auto alone = [&](const std::vector<int32_t>& text) {
        auto ss = make_stateful(*m.session);
        const int seq = ss->add_sequence();
        std::vector<Tensor> out = {require_logits(ss->prefill(seq, {text.begin(), text.begin() + 4}))};
        for (size_t t = 4; t < text.size(); ++t) out.push_back(require_logits(ss->step(seq, text[t])));
        return out;
      };
      const std::vector<Tensor> want_a = alone(text_a), want_b = alone(text_b);

      auto ss = make_stateful(*m.session);
      const int a = ss->add_sequence();
      const int b = ss->add_sequence();
      CHECK(a != b);
      CHECK(same_bytes(require_logits(ss->prefill(b, {text_b.begin(), text_b.begin() + 4})), want_b[0]));
      CHECK(same_bytes(require_logits(ss->prefill(a, {text_a.begin(), text_a.begin() + 4})), want_a[0]));
      for (size_t t = 4; t < text_b.size(); ++t) {
        INFO("token " << t);
        if (t < text_a.size()) CHECK(same_bytes(require_logits(ss->step(a, text_a[t])), want_a[t - 3]));
        CHECK(same_bytes(require_logits(ss->step(b, text_b[t])), want_b[t - 3]));
      }
      REQUIRE(ss->remove_sequence(a).is_ok());
      CHECK(ss->sequence_ids() == std::vector<int>{b});
      CHECK(ss->add_sequence() == 2);  // ids are never reused
    }
  }
}

TEST_CASE("state: state stays in the sequence's persistent buffers (written in place, no new allocations)") {
  RwkvModel m = load_rwkv("5v2-730K");
  auto ss = make_stateful(*m.session);
  const int seq = ss->add_sequence();
  require_logits(ss->prefill(seq, bytes_of("abc")));
  std::set<const void*> seen;
  const void* logits_buffer = ss->last_logits(seq).value().raw();
  for (int i = 0; i < 6; ++i) {
    auto states = ss->states(seq);
    REQUIRE(states.is_ok());
    for (const Tensor& t : states.value()) seen.insert(t.raw());
    Tensor logits = ss->step(seq, 'x').value();
    CHECK(logits.raw() == logits_buffer);
  }
  // Two sets (current and next) of 36 state tensors, alternating, and the executor wrote every new state
  // straight into them.
  CHECK(seen.size() == 2 * 36);
  CHECK(ss->copied_state_outputs() == 0);
  for (const void* p : seen) CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
}

// ---- bounds and errors ---------------------------------------------------------------------------------

TEST_CASE("state: --max-context bounds a sequence with a clear error that leaves it unchanged") {
  RwkvModel m = load_rwkv("5v2-730K");
  StatefulOptions options;
  options.max_context = 8;
  auto ss = make_stateful(*m.session, options);
  const int seq = ss->add_sequence();
  auto too_long = ss->prefill(seq, bytes_of("0123456789"));
  REQUIRE_FALSE(too_long.is_ok());
  CHECK(too_long.status().message() == "sequence 0: context of 10 tokens exceeds --max-context 8");
  CHECK(ss->token_count(seq).value() == 0);
  const Tensor logits = require_logits(ss->prefill(seq, bytes_of("012345")));
  require_logits(ss->step(seq, '6'));
  require_logits(ss->step(seq, '7'));
  auto over = ss->step(seq, '8');
  REQUIRE_FALSE(over.is_ok());
  CHECK(over.status().message() == "sequence 0: context of 9 tokens exceeds --max-context 8");
  CHECK(ss->token_count(seq).value() == 8);
  // After a reset the sequence starts over.
  REQUIRE(ss->reset(seq).is_ok());
  CHECK(ss->token_count(seq).value() == 0);
  CHECK_FALSE(ss->last_logits(seq).value().defined());
  CHECK(same_bytes(require_logits(ss->prefill(seq, bytes_of("012345"))), logits));
}

TEST_CASE("state: bad calls are errors naming the sequence") {
  RwkvModel m = load_rwkv("5v2-730K");
  auto ss = make_stateful(*m.session);
  const int seq = ss->add_sequence();
  auto missing = ss->step(7, 'a');
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().message() == "sequence 7 does not exist (the sequences: 0)");
  auto bad_token = ss->prefill(seq, {'a', 256});
  REQUIRE_FALSE(bad_token.is_ok());
  CHECK(bad_token.status().message() == "sequence 0: token #1 (id 256) is outside the vocabulary [0, 256)");
  auto negative = ss->step(seq, -1);
  REQUIRE_FALSE(negative.is_ok());
  auto empty = ss->prefill(seq, {});
  REQUIRE_FALSE(empty.is_ok());
  CHECK(empty.status().message() == "sequence 0: prefill needs at least one token");
  SequenceState wrong;
  wrong.states.push_back(Tensor::zeros(DType::f32, {1, 3}));
  Status st = ss->restore(seq, wrong);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message() == "sequence 0: restore: the snapshot holds 1 state tensors, the graph has 36");
  auto snap = ss->snapshot(seq);
  REQUIRE(snap.is_ok());
  snap->states[1] = Tensor::zeros(DType::f32, {1, 8, 8, 4});
  st = ss->restore(seq, snap.value());
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message() ==
        "sequence 0: restore: state 'state.0.wkv' is f32[1, 8, 8, 4], expected f32[1, 8, 8, 8]");
  CHECK_FALSE(ss->remove_sequence(3).is_ok());
  StatefulOptions negative_options;
  negative_options.max_context = -1;
  CHECK_FALSE(StatefulSession::create(*m.session, negative_options).is_ok());
}

// ---- generate -------------------------------------------------------------------------------------------

namespace {

std::unique_ptr<Tokenizer> byte_tokenizer(std::map<std::string, std::string> extra = {}) {
  extra["tokenizer.type"] = "bytes";
  auto tok = tokenizer_from_metadata(extra);
  REQUIRE(tok.is_ok());
  return std::move(tok).value();
}

GenerateStats require_generate(StatefulSession& ss, const Tokenizer& tok, const std::string& prompt,
                               const GenerateOptions& options, std::vector<std::string>* pieces = nullptr) {
  auto r = generate(ss, tok, prompt, options, [&](std::string_view piece) {
    if (pieces != nullptr) pieces->emplace_back(piece);
    return true;
  });
  INFO((r ? std::string("generated") : r.status().message()));
  REQUIRE(r.is_ok());
  return r.value();
}

int argmax(const float* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

}  // namespace

TEST_CASE("generate: greedy text equals argmax decoding of the plain sequence graph") {
  RwkvModel m = load_rwkv("5v2-730K");
  auto tok = byte_tokenizer();
  auto ss = make_stateful(*m.session);
  GenerateOptions options;
  options.sampling.temperature = 0;
  options.max_tokens = 12;
  std::vector<std::string> pieces;
  const GenerateStats stats = require_generate(*ss, *tok, "\"in", options, &pieces);

  // The first token: the argmax of rwkv.cpp's own logits after '"in'.
  const std::vector<float> want = expected_logits("5v2-730K");
  REQUIRE(!stats.text.empty());
  CHECK(static_cast<uint8_t>(stats.text[0]) == argmax(want.data(), 256));
  // All of them: rerun the whole graph on the growing text and take the argmax each time.
  std::vector<int32_t> ids = bytes_of("\"in");
  std::string reference;
  for (int i = 0; i < 12; ++i) {
    const Tensor logits = full_sequence_logits(m, ids);
    const int next = argmax(logits.data<float>() + (ids.size() - 1) * 256, 256);
    reference += static_cast<char>(next);
    ids.push_back(next);
  }
  CHECK(stats.text == reference);
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  CHECK(joined == stats.text);
  CHECK(stats.prompt_tokens == 3);
  CHECK(stats.generated_tokens == 12);
  CHECK(stats.finish_reason == "length");
  CHECK(stats.prompt_tokens_per_second() > 0);
  CHECK(stats.generation_tokens_per_second() > 0);
  CHECK(ss->sequence_ids().empty());  // generate removed its sequence
}

TEST_CASE("generate: the same seed gives the same text, stop strings cut it, eos ends it") {
  RwkvModel m = load_rwkv("5v2-730K");
  auto tok = byte_tokenizer();
  auto ss = make_stateful(*m.session);
  GenerateOptions options;
  options.max_tokens = 40;
  options.sampling.seed = 7;
  options.sampling.top_k = 20;
  const std::string a = require_generate(*ss, *tok, "Hello", options).text;
  const std::string b = require_generate(*ss, *tok, "Hello", options).text;
  CHECK(a == b);
  options.sampling.seed = 8;
  CHECK(require_generate(*ss, *tok, "Hello", options).text != a);

  SECTION("stop strings") {
    // Take a 2-byte string from the middle of the seed-7 text: generation must end right before its first
    // occurrence, whichever stop string comes first, and never pass on any byte of it.
    REQUIRE(a.size() == 40);
    options.sampling.seed = 7;
    const std::string stop = a.substr(20, 2);
    const size_t first = a.find(stop);
    options.stop = {"this never appears in forty bytes", stop};
    std::vector<std::string> pieces;
    const GenerateStats stats = require_generate(*ss, *tok, "Hello", options, &pieces);
    CHECK(stats.finish_reason == "stop");
    CHECK(stats.text == a.substr(0, first));
    CHECK(stats.generated_tokens == static_cast<int64_t>(first + 2));
    std::string joined;
    for (const std::string& p : pieces) joined += p;
    CHECK(joined == a.substr(0, first));
  }
  SECTION("eos") {
    options.sampling.temperature = 0;
    options.max_tokens = 5;
    const std::string greedy = require_generate(*ss, *tok, "Hello", options).text;
    REQUIRE(greedy.size() == 5);
    // Make the third greedy byte the eos id: generation stops before printing it.
    auto with_eos = byte_tokenizer({{"tokenizer.eos_id", std::to_string(static_cast<uint8_t>(greedy[2]))}});
    const size_t first = greedy.find(greedy[2]);
    const GenerateStats stats = require_generate(*ss, *with_eos, "Hello", options);
    CHECK(stats.finish_reason == "eos");
    CHECK(stats.text == greedy.substr(0, first));
    CHECK(stats.generated_tokens == static_cast<int64_t>(first + 1));
  }
  SECTION("callback stops") {
    options.sampling.seed = 7;
    int calls = 0;
    auto r = generate(*ss, *tok, "Hello", options, [&](std::string_view) { return ++calls < 3; });
    REQUIRE(r.is_ok());
    CHECK(calls == 3);
    CHECK(r->finish_reason == "callback");
    CHECK(r->text.size() >= 3);
    CHECK(a.compare(0, r->text.size(), r->text) == 0);
  }
}

TEST_CASE("generate: the context bound and bad options are errors") {
  RwkvModel m = load_rwkv("5v2-730K");
  auto tok = byte_tokenizer();
  StatefulOptions bounded;
  bounded.max_context = 6;
  auto ss = make_stateful(*m.session, bounded);
  GenerateOptions options;
  options.max_tokens = 10;
  options.sampling.seed = 1;
  std::string streamed;
  auto r = generate(*ss, *tok, "abc", options, [&](std::string_view p) {
    streamed += p;
    return true;
  });
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "sequence 0: context of 7 tokens exceeds --max-context 6");
  CHECK(streamed.size() == 4);  // the tokens sampled after 3 prompt tokens + 3 steps (6 tokens held)

  options.max_tokens = 0;
  auto none = generate(*ss, *tok, "abc", options, nullptr);
  REQUIRE(none.is_ok());
  CHECK(none->text.empty());
  CHECK(none->generated_tokens == 0);

  auto empty = generate(*ss, *tok, "", options, nullptr);
  REQUIRE_FALSE(empty.is_ok());
  CHECK(empty.status().message() == "the prompt is empty: give some text to continue");
  options.stop = {""};
  CHECK_FALSE(generate(*ss, *tok, "abc", options, nullptr).is_ok());
  options.stop.clear();
  options.sampling.top_p = 0;
  auto bad = generate(*ss, *tok, "abc", options, nullptr);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message() == "top_p 0 must be in (0, 1] (1 = no limit)");

  // The convenience overload needs a tokenizer in the model's metadata.
  auto no_tokenizer = generate(*m.session, "abc", GenerateOptions{}, nullptr);
  REQUIRE_FALSE(no_tokenizer.is_ok());
  CHECK(no_tokenizer.status().message().find("the model has no tokenizer") != std::string::npos);
}
