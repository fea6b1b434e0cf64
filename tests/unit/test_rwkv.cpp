// RWKV from rwkv.cpp files (models/rwkv): the four tiny test models of rwkv.cpp reproduce its expected
// logits after the prompt `"in` (tests/data/rwkv-tiny, computed by rwkv.cpp), as one sequence and token by
// token with carried state, at -O0 and -O1, batched; truncated and hostile files are errors naming the file.
#include <catch2/catch.hpp>

#include <cstdlib>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "ir/serialize.h"
#include "models/rwkv/rwkv_builder.h"
#include "models/rwkv/rwkv_file.h"
#include "runtime/session.h"

using namespace seqrun;
using namespace seqrun::models::rwkv;
using seqrun::runtime::Session;
using seqrun::runtime::SessionOptions;

namespace {

// SEQRUN_TEST_DATA in the environment overrides the build-time path (the GPU check runs these binaries
// from another checkout).
const std::string kDataDir =
    std::string(std::getenv("SEQRUN_TEST_DATA") != nullptr ? std::getenv("SEQRUN_TEST_DATA")
                                                           : SEQRUN_TEST_DATA) +
    "/rwkv-tiny/";
const char* kVersions[] = {"4v0-660K", "5v1-730K", "5v2-730K", "7v0-834K"};
const std::vector<int64_t> kPrompt = {'"', 'i', 'n'};
constexpr double kTolerance = 1e-4;

std::string model_path(const std::string& version) {
  return kDataDir + "tiny-rwkv-" + version + "-FP32.bin";
}

std::vector<float> expected_logits(const std::string& version) {
  std::ifstream in(kDataDir + "expected-logits-" + version + ".bin", std::ios::binary);
  REQUIRE(in.good());
  std::vector<float> logits(256);
  in.read(reinterpret_cast<char*>(logits.data()), 256 * sizeof(float));
  REQUIRE(in.gcount() == 256 * static_cast<std::streamsize>(sizeof(float)));
  return logits;
}

struct Model {
  std::unique_ptr<Session> session;
  RwkvModelInfo info;
};

Model load_model(const std::string& version, int opt_level, std::vector<backends::Backend*> placement = {}) {
  auto file = read_rwkv_file(model_path(version));
  INFO((file ? std::string("read") : file.status().message()));
  REQUIRE(file.is_ok());
  auto built = build_rwkv_graph(file.value());
  INFO((built ? std::string("built") : built.status().message()));
  REQUIRE(built.is_ok());
  SessionOptions options;
  options.opt_level = opt_level;
  options.backends = std::move(placement);
  const RwkvModelInfo info = built.value().info;
  auto session = Session::from_graph(std::move(built.value().graph), options);
  INFO((session ? std::string("session") : session.status().message()));
  REQUIRE(session.is_ok());
  return {std::move(session).value(), info};
}

// Runs tokens [batch, T] from `states`; returns logits then the new states.
std::vector<Tensor> run(const Model& m, const std::vector<int64_t>& tokens, int64_t batch,
                        const std::vector<Tensor>& states) {
  std::vector<Tensor> inputs = {
      Tensor::from_vector<int64_t>({batch, static_cast<int64_t>(tokens.size()) / batch}, tokens)};
  inputs.insert(inputs.end(), states.begin(), states.end());
  auto out = m.session->run(inputs);
  INFO((out ? std::string("ran") : out.status().message()));
  REQUIRE(out.is_ok());
  REQUIRE(out->size() == states.size() + 1);
  return std::move(out).value();
}

// Max |logits[b, t, :] - expected|.
double max_abs_error(const Tensor& logits, int64_t b, int64_t t, const std::vector<float>& expected) {
  REQUIRE(logits.rank() == 3);
  REQUIRE(logits.dim(2) == static_cast<int64_t>(expected.size()));
  const float* row = logits.data<float>() + (b * logits.dim(1) + t) * logits.dim(2);
  double worst = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(row[i]) - expected[i]));
  }
  return worst;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a.get_f64(i) - b.get_f64(i)));
  return worst;
}

std::vector<Tensor> new_states(const std::vector<Tensor>& outputs) {
  return std::vector<Tensor>(outputs.begin() + 1, outputs.end());
}

}  // namespace

TEST_CASE("rwkv: detects the architecture and sizes of each tiny model") {
  struct Want {
    const char* version;
    RwkvArch arch;
    int64_t embed, layers, heads, head_size;
  };
  const Want wants[] = {{"4v0-660K", RwkvArch::v4, 128, 4, 0, 0},
                        {"5v1-730K", RwkvArch::v5_1, 64, 12, 8, 8},
                        {"5v2-730K", RwkvArch::v5_2, 64, 12, 8, 8},
                        {"7v0-834K", RwkvArch::v7, 64, 12, 1, 64}};
  for (const Want& w : wants) {
    auto file = read_rwkv_file(model_path(w.version));
    REQUIRE(file.is_ok());
    auto info = detect_rwkv_model(file.value());
    REQUIRE(info.is_ok());
    CHECK(info->arch == w.arch);
    CHECK(info->n_vocab == 256);
    CHECK(info->n_embed == w.embed);
    CHECK(info->n_layer == w.layers);
    CHECK(info->head_count == w.heads);
    CHECK(info->head_size == w.head_size);
  }
}

TEST_CASE("rwkv: tiny models reproduce rwkv.cpp's logits, as a sequence and token by token") {
  for (const char* version : kVersions) {
    SECTION(version) {
      const std::vector<float> expected = expected_logits(version);
      Model m = load_model(version, 1);
      const std::vector<Tensor> zero = rwkv_initial_states(m.info, 1);

      // (1) Sequence form: the prompt as one [1, 3] input.
      std::vector<Tensor> seq = run(m, kPrompt, 1, zero);
      const double seq_error = max_abs_error(seq[0], 0, 2, expected);

      // (2) Step form: three [1, 1] runs, feeding the states back.
      std::vector<Tensor> states = zero;
      std::vector<Tensor> step;
      for (int64_t token : kPrompt) {
        step = run(m, {token}, 1, states);
        states = new_states(step);
      }
      const double step_error = max_abs_error(step[0], 0, 0, expected);
      std::printf("rwkv %s: max abs logit error: sequence %.3g, step %.3g\n", version, seq_error, step_error);
      CHECK(seq_error <= kTolerance);
      CHECK(step_error <= kTolerance);

      // Both forms end in the same state.
      for (size_t i = 1; i < seq.size(); ++i) {
        INFO("state output " << i);
        CHECK(max_abs_diff(seq[i], step[i]) <= 1e-4);
      }
    }
  }
}

TEST_CASE("rwkv: -O0 and -O1 give the same logits and states") {
  for (const char* version : kVersions) {
    SECTION(version) {
      Model o0 = load_model(version, 0);
      Model o1 = load_model(version, 1);
      const std::vector<Tensor> zero = rwkv_initial_states(o0.info, 1);
      std::vector<Tensor> a = run(o0, kPrompt, 1, zero);
      std::vector<Tensor> b = run(o1, kPrompt, 1, zero);
      const double error = max_abs_error(a[0], 0, 2, expected_logits(version));
      std::printf("rwkv %s: -O0 sequence max abs logit error %.3g\n", version, error);
      CHECK(error <= kTolerance);
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("output " << i);
        CHECK(max_abs_diff(a[i], b[i]) <= 1e-5);
      }
    }
  }
}

TEST_CASE("rwkv: a batch of two sequences matches each run alone") {
  for (const char* version : kVersions) {
    SECTION(version) {
      Model m = load_model(version, 1);
      const std::vector<int64_t> other = {'a', 'b', 'c'};
      std::vector<int64_t> both = kPrompt;
      both.insert(both.end(), other.begin(), other.end());
      std::vector<Tensor> batched = run(m, both, 2, rwkv_initial_states(m.info, 2));
      CHECK(max_abs_error(batched[0], 0, 2, expected_logits(version)) <= kTolerance);
      std::vector<Tensor> alone = run(m, other, 1, rwkv_initial_states(m.info, 1));
      std::vector<float> alone_last(256);
      for (int i = 0; i < 256; ++i) alone_last[i] = alone[0].data<float>()[2 * 256 + i];
      CHECK(max_abs_error(batched[0], 1, 2, alone_last) <= 1e-5);
    }
  }
}

TEST_CASE("rwkv: the graph saved as .seqrun and loaded back gives the same logits") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("seqrun_test_rwkv_roundtrip_" + std::to_string(::getpid()) + ".seqrun"))
                               .string();
  for (const char* version : kVersions) {
    SECTION(version) {
      auto file = read_rwkv_file(model_path(version));
      REQUIRE(file.is_ok());
      auto built = build_rwkv_graph(file.value());
      REQUIRE(built.is_ok());
      const Status saved = save_model(*built.value().graph, path);
      INFO(saved.message());
      REQUIRE(saved.is_ok());
      auto session = Session::load(path);
      INFO((session ? std::string("loaded") : session.status().message()));
      REQUIRE(session.is_ok());
      Model m{std::move(session).value(), built.value().info};
      std::vector<Tensor> out = run(m, kPrompt, 1, rwkv_initial_states(m.info, 1));
      CHECK(max_abs_error(out[0], 0, 2, expected_logits(version)) <= kTolerance);
      std::remove(path.c_str());
    }
  }
}

TEST_CASE("rwkv: on the CUDA backend (CPU fallback per node) the logits match too; skipped without a GPU") {
  auto placement = backends::backend_list_by_name("cuda");
  if (!placement.is_ok()) {
    WARN("skipped: " << placement.status().message());
    return;
  }
  for (const char* version : kVersions) {
    SECTION(version) {
      const std::vector<float> expected = expected_logits(version);
      Model m = load_model(version, 1, placement.value());
      const std::vector<Tensor> zero = rwkv_initial_states(m.info, 1);
      std::vector<Tensor> seq = run(m, kPrompt, 1, zero);
      std::vector<Tensor> states = zero, step;
      for (int64_t token : kPrompt) {
        step = run(m, {token}, 1, states);
        states = new_states(step);
      }
      const double seq_error = max_abs_error(seq[0], 0, 2, expected);
      const double step_error = max_abs_error(step[0], 0, 0, expected);
      std::printf("rwkv %s on cuda: max abs logit error: sequence %.3g, step %.3g\n", version, seq_error,
                  step_error);
      CHECK(seq_error <= kTolerance);
      CHECK(step_error <= kTolerance);
    }
  }
}

// ---- hostile files ----

namespace {

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("seqrun_test_rwkv_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::vector<char>& bytes) const {
    const std::string p = (path_ / name).string();
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  std::filesystem::path path_;
};

void put_u32(std::vector<char>& bytes, size_t offset, uint32_t value) {
  if (bytes.size() < 4 || offset > bytes.size() - 4) FAIL("put_u32 past the end");
  const char le[4] = {static_cast<char>(value & 0xff), static_cast<char>((value >> 8) & 0xff),
                      static_cast<char>((value >> 16) & 0xff), static_cast<char>((value >> 24) & 0xff)};
  std::memcpy(bytes.data() + offset, le, 4);
}

// Reads and builds `bytes` written to a file; the result must be an error naming the file and `part`.
void expect_rejected(const TempDir& dir, const std::string& name, const std::vector<char>& bytes,
                     const std::string& part) {
  const std::string path = dir.write(name, bytes);
  auto file = read_rwkv_file(path);
  std::string message;
  if (file.is_ok()) {
    auto built = build_rwkv_graph(file.value());
    REQUIRE_FALSE(built.is_ok());
    message = built.status().message();
  } else {
    message = file.status().message();
  }
  INFO(name << ": " << message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find(part) != std::string::npos);
}

}  // namespace

TEST_CASE("rwkv: truncated and hostile files are errors naming the file") {
  const TempDir dir;
  const std::vector<char> good = file_bytes(model_path("5v2-730K"));
  REQUIRE(good.size() > 1000);
  // The first tensor record starts at 24: dim_count, key_length, data_type, dims, key "emb.weight", data.
  const size_t first_key = 24 + 12 + 8;

  SECTION("truncated at several points") {
    const size_t cuts[] = {
        0, 3, 23, 24, 30, 40, first_key + 4, first_key + 10 + 100, good.size() / 2, good.size() - 1};
    const char* parts[] = {"truncated header",
                           "truncated header",
                           "truncated header",
                           "no tensors",
                           "truncated tensor header",
                           "truncated dims",
                           "past the end of the file",
                           "past the end of the file",
                           "",
                           "past the end of the file"};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); ++i) {
      std::vector<char> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cuts[i]));
      expect_rejected(dir, "cut" + std::to_string(cuts[i]) + ".bin", cut, parts[i]);
    }
  }
  SECTION("bad magic") {
    std::vector<char> bad = good;
    put_u32(bad, 0, 0x67676a74);  // 'ggjt'
    expect_rejected(dir, "magic.bin", bad, "bad magic");
  }
  SECTION("wrong version") {
    std::vector<char> bad = good;
    put_u32(bad, 4, 99);
    expect_rejected(dir, "version99.bin", bad, "unsupported rwkv.cpp file version 99");
    put_u32(bad, 4, 102);
    expect_rejected(dir, "version102.bin", bad, "unsupported rwkv.cpp file version 102");
  }
  SECTION("absurd header sizes") {
    std::vector<char> bad = good;
    put_u32(bad, 12, 0xffffffffu);  // n_embed
    expect_rejected(dir, "embed.bin", bad, "n_embed");
    bad = good;
    put_u32(bad, 16, 0);  // n_layer
    expect_rejected(dir, "layers.bin", bad, "n_layer");
    bad = good;
    put_u32(bad, 20, 9);  // Q8_0 file
    expect_rejected(dir, "quantized.bin", bad, "Q8_0");
  }
  SECTION("absurd tensor records") {
    std::vector<char> bad = good;
    put_u32(bad, 24, 4);  // dim_count
    expect_rejected(dir, "dimcount.bin", bad, "dim count 4");
    bad = good;
    put_u32(bad, 36, 0x7fffffff);  // first dim of emb.weight
    expect_rejected(dir, "hugedim.bin", bad, "past the end of the file");
    bad = good;
    put_u32(bad, 36, 0xffffffffu);  // -1
    expect_rejected(dir, "negdim.bin", bad, "dim 0 is -1");
    bad = good;
    put_u32(bad, 32, 5);  // Q4_2 data type
    expect_rejected(dir, "dtype.bin", bad, "Q4_2");
  }
  SECTION("key length past the end") {
    std::vector<char> bad(good.begin(), good.begin() + 200);
    put_u32(bad, 28, 1000);  // key length of the first record
    expect_rejected(dir, "keylen.bin", bad, "key length 1000 runs past the end");
    bad = good;
    put_u32(bad, 28, 100000);
    expect_rejected(dir, "keylen_huge.bin", bad, "key length 100000 is out of range");
  }
  SECTION("a renamed tensor is missing to the builder, and its new name unexpected") {
    std::vector<char> bad = good;
    REQUIRE(std::memcmp(bad.data() + first_key, "emb.weight", 10) == 0);
    bad[first_key] = 'x';  // "xmb.weight"
    expect_rejected(dir, "renamed.bin", bad, "missing tensor 'emb.weight'");
  }
  SECTION("a decay factor outside [0, 1]") {
    // Find blocks.0.att.time_decay's data and put 2.0 in it.
    std::vector<char> bad = good;
    const std::string key = "blocks.0.att.time_decay";
    auto it = std::search(bad.begin(), bad.end(), key.begin(), key.end());
    REQUIRE(it != bad.end());
    const size_t data = static_cast<size_t>(it - bad.begin()) + key.size();
    const float two = 2.0f;
    std::memcpy(bad.data() + data, &two, 4);
    expect_rejected(dir, "decay.bin", bad, "not a decay factor");
  }
  SECTION("an FP16 file reads as the f32 values rounded to f16") {
    auto original = read_rwkv_file(model_path("5v2-730K"));
    REQUIRE(original.is_ok());
    // Rewrite every record with data type 1 (FP16) and half-precision data.
    std::vector<char> fp16(good.begin(), good.begin() + 24);
    put_u32(fp16, 20, 1);
    auto append_u32 = [&](uint32_t v) {
      fp16.resize(fp16.size() + 4);
      put_u32(fp16, fp16.size() - 4, v);
    };
    for (const RwkvTensor& t : original->tensors) {
      append_u32(static_cast<uint32_t>(t.value.rank()));
      append_u32(static_cast<uint32_t>(t.name.size()));
      append_u32(1);
      for (int d = t.value.rank() - 1; d >= 0; --d) append_u32(static_cast<uint32_t>(t.value.dim(d)));
      fp16.insert(fp16.end(), t.name.begin(), t.name.end());
      for (int64_t i = 0; i < t.value.numel(); ++i) {
        const uint16_t h = f32_to_f16(t.value.data<float>()[i]);
        fp16.push_back(static_cast<char>(h & 0xff));
        fp16.push_back(static_cast<char>(h >> 8));
      }
    }
    const std::string path = dir.write("fp16.bin", fp16);
    auto half = read_rwkv_file(path);
    INFO((half ? std::string("read") : half.status().message()));
    REQUIRE(half.is_ok());
    REQUIRE(half->tensors.size() == original->tensors.size());
    size_t mismatches = 0;
    for (size_t k = 0; k < half->tensors.size(); ++k) {
      const Tensor& a = half->tensors[k].value;
      const Tensor& b = original->tensors[k].value;
      REQUIRE(a.shape() == b.shape());
      for (int64_t i = 0; i < a.numel(); ++i) {
        if (a.data<float>()[i] != f16_to_f32(f32_to_f16(b.data<float>()[i]))) ++mismatches;
      }
    }
    CHECK(mismatches == 0);
    CHECK(build_rwkv_graph(half.value()).is_ok());
  }
  SECTION("a missing file") {
    auto file = read_rwkv_file(kDataDir + "no-such-file.bin");
    REQUIRE_FALSE(file.is_ok());
    CHECK(file.status().message().find("no-such-file.bin") != std::string::npos);
  }
}
